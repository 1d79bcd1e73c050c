"""The whole pipeline over a FER2013-size synthetic data root: wall time and peak RSS per component.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m bench.pipeline [--n 35887] [--epochs 1] [--work-dir DIR]

Runs the same pipeline as `tfx run create --engine beam` (BeamDagRunner, in this process, so one
sampler sees every component's memory) on a fresh pipeline root. The Trainer runs `--epochs` epochs
(default 1) so that "everything but the Trainer's epochs" can be read off: the Trainer line shows
its wall time and the per-epoch time it logged. Target (issue 4): all components except the
Trainer's epochs together under 5 minutes on 2 cores.
"""
import argparse
import json
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path


class _Timeline(logging.Handler):
    """Records TFX's `node X is running/finished` log lines and the Trainer's epoch lines."""

    _NODE = re.compile(r"node (\S+) is (running|finished)\.")
    _EPOCH = re.compile(r"epoch \d+/\d+ .* ([\d.]+) s")

    def __init__(self):
        super().__init__(logging.INFO)
        self.events, self.epoch_seconds = [], []

    def emit(self, record):
        message = record.getMessage()
        node = self._NODE.match(message)
        if node:
            self.events.append((time.time(), node.group(1), node.group(2)))
        epoch = self._EPOCH.search(message)
        if epoch and message.startswith("epoch"):
            self.epoch_seconds.append(float(epoch.group(1)))


class _RssSampler(threading.Thread):
    """Samples this process tree's resident memory every 0.2 s."""

    def __init__(self):
        super().__init__(daemon=True)
        import psutil

        self.process, self.samples, self.stop = psutil.Process(), [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                rss = self.process.memory_info().rss + sum(
                    c.memory_info().rss for c in self.process.children(recursive=True))
            except Exception:  # a child ended between listing and reading
                continue
            self.samples.append((time.time(), rss))
            time.sleep(0.2)

    def peak(self, start, end):
        values = [rss for t, rss in self.samples if start <= t <= end]
        before = [rss for t, rss in self.samples if t < start]
        return max(values) if values else (before[-1] if before else 0)  # a node shorter than one sample


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=35_887, help="fer2013.csv rows (FER2013 has 35,887)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--work-dir", default=None, help="reuse generated data here (default: a temp dir)")
    args = parser.parse_args()

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    data_root = work / f"data-{args.n}"
    run_root = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    os.environ.update({
        "DEEP_EMOTION_DATA_ROOT": str(data_root), "DEEP_EMOTION_OUTPUT_ROOT": str(run_root),
        "DEEP_EMOTION_PROFILE": "demo", "DEEP_EMOTION_ACCURACY_FLOOR": "0",
        "DEEP_EMOTION_HPARAMS": json.dumps({"epochs": args.epochs}),
    })
    from contract.runtime import pipeline_progress_logging, quiet_tensorflow

    quiet_tensorflow()
    if not data_root.exists():
        from deep_emotion.demo_data.generate import generate

        print(f"Generating a {args.n}-row synthetic data root in {data_root} ...", flush=True)
        generate(str(data_root), n=args.n, seed=0)

    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    from pipeline import local

    pipeline_progress_logging()
    timeline = _Timeline()
    logging.getLogger().addHandler(timeline)
    sampler = _RssSampler()
    sampler.start()
    started = time.time()
    BeamDagRunner().run(local.build())
    total = time.time() - started
    sampler.stop.set()

    running = {}
    rows = []
    for t, node, state in timeline.events:
        if state == "running":
            running[node] = t
        elif node in running:
            rows.append((node, t - running[node], sampler.peak(running[node], t)))
    epochs = sum(timeline.epoch_seconds)
    print(f"\nPipeline over {args.n} FER2013 rows + CK+/JAFFE/FERG (data root {data_root}), {os.cpu_count()} cores")
    print(f"{'component':32s} {'wall s':>8s} {'peak RSS MB':>12s}")
    for node, seconds, peak in rows:
        print(f"{node:32s} {seconds:8.1f} {peak / 2**20:12.0f}")
    print(f"{'total (runner, wall)':32s} {total:8.1f} {max(r for _, r in sampler.samples) / 2**20:12.0f}")
    print(f"Trainer epochs ({len(timeline.epoch_seconds)}): {epochs:.1f} s; "
          f"everything else: {total - epochs:.1f} s (target < 300 s)")
    print("Reproduce: TF_USE_LEGACY_KERAS=1 .venv/bin/python -m bench.pipeline "
          f"--n {args.n} --epochs {args.epochs}" + (f" --work-dir {args.work_dir}" if args.work_dir else ""))


if __name__ == "__main__":
    main()
