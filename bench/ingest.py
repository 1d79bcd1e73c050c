"""How fast does DeepEmotionExampleGen's executor ingest a FER2013-size CSV, and in how much memory?

Writes a 35,887-row fer2013.csv with the demo generator (the real file's size and Usage split)
and a copy with every row twice (71,774 rows), then runs the executor on each, on Beam's
DirectRunner, each run in a fresh process so that its peak RSS is its own. Reports rows/s over
the executor's Do (wall clock, and per CPU-second, which is steadier on a shared machine), and
peak RSS. Targets: >= 2,000 rows/s on 2 cores; peak RSS under 3 GB and not growing with rows.

    TF_USE_LEGACY_KERAS=1 python -m bench.ingest [--rows 35887] [--compare-tfx-writer] [--images]

--compare-tfx-writer also runs the same executor with TFX's stock WriteSplit (Reshuffle, then
WriteToTFRecord at gzip level 6) in place of ours, to show why the executor does not use it.
--images also ingests the same rows as Kaggle's image download (one 48x48 JPEG a face, in class
folders: the demo generator's fer2013-images).
"""
from contract.runtime import quiet_tensorflow

quiet_tensorflow()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

FER2013_ROWS = 35_887
VARIANTS = ("ours", "tfx-writer")


def write_inputs(work_dir: str, rows: int) -> dict:
    """{rows: data root} for rows and 2 x rows (the second file repeats every row, streamed)."""
    from deep_emotion.demo_data import generate  # pylint: disable=import-outside-toplevel
    single, double = os.path.join(work_dir, "x1"), os.path.join(work_dir, "x2")
    csv_single, csv_double = os.path.join(single, "fer2013.csv"), os.path.join(double, "fer2013.csv")
    if not os.path.exists(csv_single):
        generate(single, n=rows, seed=0, formats=("fer2013",))
    if not os.path.exists(csv_double):
        os.makedirs(double, exist_ok=True)
        with open(csv_double + ".partial", "wb") as out:
            for copy in range(2):
                with open(csv_single, "rb") as f:
                    header = f.readline()
                    if copy == 0:
                        out.write(header)
                    for line in f:
                        out.write(line)
        os.replace(csv_double + ".partial", csv_double)
    return {rows: single, 2 * rows: double}


def write_images(work_dir: str, rows: int) -> str:
    """The data root of the same rows (seed 0) as Kaggle's image download."""
    from deep_emotion.demo_data import generate  # pylint: disable=import-outside-toplevel
    root = os.path.join(work_dir, "x1-images")
    if not os.path.exists(os.path.join(root, "fer2013-images")):
        generate(root, n=rows, seed=0, formats=("fer2013-images",))
    return root


def child(data_root: str, variant: str) -> None:
    """Runs in its own process: one ingestion, its timing as one JSON line on stdout."""
    import resource  # pylint: disable=import-outside-toplevel

    from components.example_gen import executor  # pylint: disable=import-outside-toplevel
    from components.example_gen.standalone import run_executor  # pylint: disable=import-outside-toplevel
    from components.example_gen.options import IngestOptions  # pylint: disable=import-outside-toplevel

    executor_class = executor.Executor
    if variant == "tfx-writer":
        from tfx.components.example_gen import write_split  # pylint: disable=import-outside-toplevel

        class TfxWriterExecutor(executor.Executor):
            def write_split(self, examples, split_uri):
                return examples | write_split.WriteSplit(split_uri, None)

        executor_class = TfxWriterExecutor
    with tempfile.TemporaryDirectory(dir=os.path.dirname(data_root)) as out:
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        summary = run_executor(data_root, out, IngestOptions(), executor_class=executor_class)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        output_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"rows": summary["examples"]["total"], "seconds": seconds, "cpu_seconds": cpu,
                      "output_mb": output_bytes / 2**20}))


def measure(data_root: str, variant: str) -> dict:
    """Runs child() in a fresh interpreter; adds its peak RSS (Linux reports ru_maxrss in KiB)."""
    process = subprocess.Popen([sys.executable, "-m", "bench.ingest", "--child", data_root, "--variant", variant],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    load_before = os.getloadavg()[0]
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"ingestion of {data_root} ({variant}) failed with status {status}:\n{stdout}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(peak_rss_mb=usage.ru_maxrss / 1024, variant=variant,
                  load=(load_before + os.getloadavg()[0]) / 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=FER2013_ROWS)
    parser.add_argument("--work-dir", help="where the CSVs are written (kept for reuse); default: a temp dir")
    parser.add_argument("--compare-tfx-writer", action="store_true")
    parser.add_argument("--images", action="store_true", help="also ingest the rows as Kaggle's image download")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, default="ours", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.variant)
        return

    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench-ingest-")
    os.makedirs(work_dir, exist_ok=True)
    print(f"writing inputs under {work_dir} ...", flush=True)
    inputs = write_inputs(work_dir, args.rows)
    variants = VARIANTS if args.compare_tfx_writer else VARIANTS[:1]
    results = []
    for variant in variants:
        for rows, root in inputs.items():
            print(f"ingesting {rows:,} rows ({variant}) ...", flush=True)
            results.append(dict(measure(root, variant), input="csv"))
    if args.images:
        root = write_images(work_dir, args.rows)
        print(f"ingesting {args.rows:,} rows as JPEG files ...", flush=True)
        results.append(dict(measure(root, "ours"), input="images"))

    print(f"\n{'writer':<11}{'input':<7}{'rows':>8}{'seconds':>9}{'rows/s':>8}{'cpu-s':>8}{'rows/cpu-s':>11}"
          f"{'peak RSS MB':>12}{'output MB':>10}{'load':>6}")
    for r in results:
        print(f"{r['variant']:<11}{r['input']:<7}{r['rows']:>8,}{r['seconds']:>9.1f}{r['rows'] / r['seconds']:>8,.0f}"
              f"{r['cpu_seconds']:>8.1f}{r['rows'] / r['cpu_seconds']:>11,.0f}{r['peak_rss_mb']:>12,.0f}"
              f"{r['output_mb']:>10,.0f}{r['load']:>6.1f}")
    ours = [r for r in results if r["variant"] == "ours" and r["input"] == "csv"]
    growth = ours[1]["peak_rss_mb"] - ours[0]["peak_rss_mb"]
    print(f"\nours: {ours[0]['rows'] / ours[0]['seconds']:,.0f} rows/s (target >= 2,000 on {os.cpu_count()} cores), "
          f"peak RSS {max(r['peak_rss_mb'] for r in ours):,.0f} MB (target < 3,072), "
          f"{growth:+,.0f} MB from {ours[0]['rows']:,} to {ours[1]['rows']:,} rows.")
    print("load = 1-minute load average during the run: above the core count, other work shared the CPUs.")
    print(f"command: TF_USE_LEGACY_KERAS=1 python -m bench.ingest {shlex.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
