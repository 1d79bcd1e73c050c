"""The whole pipeline at 1x, 2x and 4x FER2013's rows: wall time and peak RSS per component, how
they grow with the data, and training images/s through the pipeline beside the model alone.

    TF_USE_LEGACY_KERAS=1 .venv/bin/python -m bench.pipeline [--scales 1 2 4] [--n 35887]
        [--epochs 2] [--work-dir DIR] [--json FILE]

Each scale runs in its own process (a fresh RSS) the same pipeline as `tfx run create --engine
beam` (its runner, pipeline.local.BeamDagRunner, in that process, so one sampler sees every
component's memory), with the default `real-data` profile for `--epochs` epochs, on a fresh
pipeline root over a synthetic data root of n x scale FER2013 rows plus the CK+ (both layouts),
JAFFE and FERG folders. A component's
peak RSS is the process tree's during its run: what it added on top of what the components
before it left resident. Targets (issue 14): every component's peak at 4x within 15% of 1x;
everything but the Trainer's epochs under 60 s at 1x; training images/s through the pipeline
(the last epoch's training pass, logged by the Trainer) within 10% of the model alone fed from
memory (bench.model's figure at the same layout and batch, measured here in its own process), and
beside it the same comparison fit by fit in that process (the Trainer's feed and step against the
model alone, paired run by run), which this shared machine's drift does not move.
"""
import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LAYOUT, BATCH = "paper", 128


class _Timeline(logging.Handler):
    """Records TFX's `node X is running/finished` log lines and the Trainer's epoch lines."""

    _NODE = re.compile(r"node (\S+) is (running|finished)\.")
    _EPOCH = re.compile(r"^epoch \d+/\d+ .*  ([\d.]+) s(?:  \(train ([\d.]+) s, ([\d,]+) img/s\))?")

    def __init__(self):
        super().__init__(logging.INFO)
        self.events, self.epochs = [], []

    def emit(self, record):
        message = record.getMessage()
        node = self._NODE.match(message)
        if node:
            self.events.append((time.time(), node.group(1), node.group(2)))
        epoch = self._EPOCH.match(message)
        if epoch:
            self.epochs.append({"seconds": float(epoch.group(1)),
                                "train_seconds": float(epoch.group(2) or 0),
                                "images_per_second": float((epoch.group(3) or "0").replace(",", ""))})


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


def _data_root(data_root: Path, n: int, work: Path) -> None:
    """fer2013.csv of n rows plus the CK+ (both layouts), JAFFE and FERG folders. Those folders do not
    grow with n: once one data root has them, later ones hard-link its files (generating CK+'s
    original frames takes minutes and would only be the same again)."""
    from deep_emotion.demo_data.generate import DEFAULT_FORMATS, generate

    others = sorted(p for p in work.glob("data-*") if (p / "CK+").is_dir() and p != data_root)
    print(f"Generating a {n}-row synthetic data root in {data_root} ...", flush=True)
    if not others:
        generate(str(data_root), n=n, seed=0)
        return
    partial = data_root.with_name(data_root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    generate(str(partial), n=n, seed=0, formats=[f for f in DEFAULT_FORMATS if f.startswith("fer2013")])
    for item in others[0].iterdir():
        if not (partial / item.name).exists():
            (shutil.copytree(item, partial / item.name, copy_function=os.link) if item.is_dir()
             else os.link(item, partial / item.name))
    partial.rename(data_root)


def run_one(n: int, epochs: int, work: Path) -> dict:
    """One pipeline run over n FER2013 rows, in this process: its per-component figures."""
    data_root = work / f"data-{n}"
    run_root = Path(tempfile.mkdtemp(prefix=f"run-{n}-", dir=work))
    os.environ.update({
        "DEEP_EMOTION_DATA_ROOT": str(data_root), "DEEP_EMOTION_OUTPUT_ROOT": str(run_root),
        "DEEP_EMOTION_PROFILE": "real-data", "DEEP_EMOTION_MODEL_LAYOUT": LAYOUT,
        "DEEP_EMOTION_ACCURACY_FLOOR": "0",
        "DEEP_EMOTION_HPARAMS": json.dumps({"epochs": epochs, "batch_size": BATCH}),
    })
    from contract.runtime import pipeline_progress_logging, quiet_tensorflow

    quiet_tensorflow()
    if not data_root.exists():
        _data_root(data_root, n, work)

    from pipeline import local

    pipeline_progress_logging()
    timeline = _Timeline()
    logging.getLogger().addHandler(timeline)
    sampler = _RssSampler()
    sampler.start()
    started = time.time()
    local.BeamDagRunner().run(local.build())
    total = time.time() - started
    sampler.stop.set()

    running, components = {}, {}
    for t, node, state in timeline.events:
        if state == "running":
            running[node] = t
        elif node in running:
            components[node] = {"seconds": t - running[node], "peak_rss": sampler.peak(running[node], t)}
    return {"n": n, "components": components, "total_seconds": total,
            "peak_rss": max(r for _, r in sampler.samples), "epochs": timeline.epochs,
            "epoch_seconds": sum(e["seconds"] for e in timeline.epochs), "run_root": str(run_root)}


def model_alone_and_trainer_feed(runs: int = 7) -> dict:
    """bench.model's training figures for LAYOUT at BATCH in their own process (fits of 120 steps,
    half a FER2013 epoch, so that an epoch's start weighs as it does in the Trainer), with TensorFlow's
    threads as the pipeline's runner sets them (contract.runtime.one_thread_per_op): the model fed
    from memory (images/s, median), and the Trainer's own feed and step beside it, fit by fit, as
    the median (min, max) of the per-run ratios: on this shared machine a whole pipeline's epoch
    and a model-only figure taken minutes apart differ by the machine's drift as much as by what
    the pipeline costs; the paired ratio does not."""
    code = ("import json, statistics; from contract.runtime import one_thread_per_op; one_thread_per_op(); "
            "from bench.model import train_throughput, paired_ratios; "
            f"rates = train_throughput({LAYOUT!r}, {BATCH}, 120, {runs}, ('model', 'trainer')); "
            "[ratios] = paired_ratios(rates, 'trainer').values(); "
            "print('FIGURES', json.dumps({'model_only_images_per_second': statistics.median(rates[('model', 'auto')][0]), "
            "'trainer_over_model': [statistics.median(ratios), min(ratios), max(ratios)]}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(re.search(r"^FIGURES (.+)$", out, re.M).group(1))


def _table(results, model):
    base = results[0]
    scales = [r["n"] / base["n"] for r in results]
    nodes = list(base["components"])
    header = f"{'component':30s}" + "".join(f" {f'{s:g}x wall s':>11s} {f'{s:g}x RSS MB':>11s}" for s in scales)
    print(header + f" {'RSS ' + f'{scales[-1]:g}x/1x':>10s} {'wall ' + f'{scales[-1]:g}x/1x':>10s}")
    for node in nodes:
        cells = [r["components"].get(node, {"seconds": 0.0, "peak_rss": 0}) for r in results]
        line = f"{node:30s}" + "".join(f" {c['seconds']:11.1f} {c['peak_rss'] / 2**20:11.0f}" for c in cells)
        first, last = cells[0], cells[-1]
        rss_ratio = last["peak_rss"] / first["peak_rss"] if first["peak_rss"] else float("nan")
        wall_ratio = last["seconds"] / first["seconds"] if first["seconds"] else float("nan")
        print(line + f" {rss_ratio:10.2f} {wall_ratio:10.2f}")
    print(f"{'total (runner)':30s}" + "".join(f" {r['total_seconds']:11.1f} {r['peak_rss'] / 2**20:11.0f}"
                                                for r in results))
    for r in results:
        rest = r["total_seconds"] - r["epoch_seconds"]
        speeds = [e["images_per_second"] for e in r["epochs"][1:]]  # epoch 1 also fills the cache
        through = statistics.median(speeds) if speeds else float("nan")
        line = (f"{r['n']:>7,} rows: everything but the Trainer's epochs {rest:.1f} s (target < 60 s at 1x); "
                f"training through the pipeline {through:,.0f} img/s")
        if model:
            rate = model["model_only_images_per_second"]
            line += f" = {through / rate:.2f}x the model alone ({rate:,.0f} img/s, target >= 0.90x)"
        print(line)
    if model:
        ratio, low, high = model["trainer_over_model"]
        print(f"The Trainer's feed and step beside the model alone, fit by fit in one process (bench.model): "
              f"{ratio:.3f}x ({low:.3f}-{high:.3f}), target >= 0.90x")
    growth = [(round(results[-1]["components"][node]["peak_rss"] / base["components"][node]["peak_rss"], 2), node)
              for node in nodes if node in results[-1]["components"] and base["components"][node]["peak_rss"]]
    worst = max(growth, key=lambda g: g[0])  # the first node at that ratio: later ones only inherit its peak
    print(f"Largest peak-RSS growth {scales[0]:g}x -> {scales[-1]:g}x: {worst[1]} {worst[0]:.2f}x (target <= 1.15x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=35_887, help="fer2013.csv rows at 1x (FER2013 has 35,887)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 2, 4])
    parser.add_argument("--epochs", type=int, default=2, help="2: the second epoch shows the cached speed")
    parser.add_argument("--work-dir", default=None, help="reuse generated data here (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--skip-model-only", action="store_true")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # a child: one run, JSON out
    args = parser.parse_args()

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.one is not None:
        result = run_one(args.one, args.epochs, work)
        (work / f"result-{args.one}.json").write_text(json.dumps(result))
        return

    results = []
    for scale in args.scales:
        n = int(round(args.n * scale))
        print(f"\n--- {scale:g}x: {n:,} FER2013 rows ---", flush=True)
        result_file = work / f"result-{n}.json"
        result_file.unlink(missing_ok=True)
        child = subprocess.run([sys.executable, "-m", "bench.pipeline", "--one", str(n), "--epochs",
                                str(args.epochs), "--work-dir", str(work)], check=False)
        if child.returncode or not result_file.exists():
            sys.exit(f"bench.pipeline: the {scale:g}x run failed (exit {child.returncode}); its log is above")
        results.append(json.loads(result_file.read_text()))
        print(f"    done in {results[-1]['total_seconds']:.0f} s; outputs under {results[-1]['run_root']}", flush=True)
    model = None if args.skip_model_only else model_alone_and_trainer_feed()

    print(f"\nPipeline (profile real-data, layout {LAYOUT}, batch {BATCH}, {args.epochs} epochs) over n FER2013 "
          f"rows + CK+/JAFFE/FERG, {os.cpu_count()} cores; data under {work}")
    _table(results, model)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, **(model or {})},
                                              indent=1))
        print(f"Figures written to {args.json}")
    print("Reproduce: TF_USE_LEGACY_KERAS=1 .venv/bin/python -m bench.pipeline --n "
          f"{args.n} --scales {' '.join(f'{s:g}' for s in args.scales)} --epochs {args.epochs}"
          + (f" --work-dir {args.work_dir}" if args.work_dir else ""))


if __name__ == "__main__":
    main()
