"""`make bench` / `python -m bench`: every benchmark in turn, each in its own process (fresh RSS).

    python -m bench [ingest model pipeline demo_data_learnability recipe faces]
"""
import subprocess
import sys

BENCHMARKS = ("ingest", "model", "pipeline", "demo_data_learnability", "recipe", "faces")


def main(names):
    for name in names or BENCHMARKS:
        print(f"\n=== bench.{name} ===", flush=True)
        subprocess.run([sys.executable, "-m", f"bench.{name}"], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
