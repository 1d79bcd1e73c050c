"""Training profiles compared on the same data, several seeds each: accuracy, Disgust recall, ECE
before and after temperature scaling, collapses caught (and restarted) by the guard.

    TF_USE_LEGACY_KERAS=1 python -m bench.recipe [--n 3000] [--seeds 0 1 2] [--profiles paper real-data]
        [--recipes reference] [--precisions auto float32] [--epochs N] [--work-dir DIR]

The data is what the pipeline trains on: a demo data root of --n FER2013 rows (+ CK+48, JAFFE,
FERG as `make demo` writes it) ingested by the ExampleGen executor, z-scored with the train split's
mean and standard deviation as Transform does. Each run is the Trainer's own code path:
trainer.train.train() with the profile's hyperparameters (pipeline/configs.py PROFILES), then
trainer.calibration on eval; accuracy and per-class recall are on the test split, with the
temperature applied; the model trains in each of --precisions (auto: what the Trainer picks on
this machine) and is evaluated, as the Trainer exports it, in float32. `--recipes reference` adds the PyTorch reference's own recipe (reference
layout, Adam 0.005, batch 128, 10 epochs, no augmentation) with the guard on.
"""
from contract.runtime import one_thread_per_op, quiet_tensorflow

quiet_tensorflow()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from contract import data as dc  # noqa: E402

RECIPES = {  # besides the pipeline's profiles: (layout, hyperparameters)
    "reference": ("reference", {"learning_rate": 0.005, "batch_size": 128, "epochs": 10, "augment": False,
                                "early_stopping_patience": 10}),
}


def load_splits(work_dir: str, n: int, seed: int):
    """{split: (images float32 [N, 48, 48, 1] z-scored with train's statistics, labels int64 [N])}."""
    from components.example_gen.standalone import run_executor
    from deep_emotion.demo_data.generate import generate

    root, out = os.path.join(work_dir, f"data-{n}-{seed}"), os.path.join(work_dir, f"examples-{n}-{seed}")
    if not os.path.exists(os.path.join(out, "ingest_summary.json")):
        generate(root, n=n, seed=seed)
        os.makedirs(out, exist_ok=True)
        run_executor(root, out)
    spec = {dc.PIXELS: tf.io.FixedLenFeature([dc.NUM_PIXELS], tf.int64), dc.LABEL: tf.io.FixedLenFeature([], tf.int64)}
    splits = {}
    for split in dc.SPLITS:
        files = tf.io.gfile.glob(os.path.join(out, f"Split-{split}", "*.gz"))
        pixels, labels = [], []
        for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096):
            parsed = tf.io.parse_example(batch, spec)
            pixels.append(parsed[dc.PIXELS].numpy())
            labels.append(parsed[dc.LABEL].numpy())
        splits[split] = (np.concatenate(pixels).astype(np.float32), np.concatenate(labels))
    mean, std = splits["train"][0].mean(), splits["train"][0].std()
    return {s: (((x - mean) / std).reshape(-1, dc.IMAGE_SIZE, dc.IMAGE_SIZE, 1), y) for s, (x, y) in splits.items()}


def run(layout, hparams, splits, log):
    """One training: test accuracy, per-class recall, ECE before/after, attempts, seconds."""
    from trainer import calibration
    from trainer.model import build_model, float32_copy, logits_model, training_precision
    from trainer.train import TrainingCollapsed, TrainingDidNotLearn, train

    dataset = lambda split: tf.data.Dataset.from_tensor_slices(splits[split])  # noqa: E731
    model = build_model(layout, seed=hparams.seed, mixed_precision=training_precision(hparams.precision))
    started = time.perf_counter()
    try:
        history = train(model, dataset("train"), dataset("eval"), hparams, log=log)
    except (TrainingCollapsed, TrainingDidNotLearn) as error:
        return {"failed": f"{type(error).__name__}: {error}", "seconds": time.perf_counter() - started}
    seconds = time.perf_counter() - started
    logits = logits_model(float32_copy(model))
    eval_logits = logits.predict(splits["eval"][0], batch_size=512, verbose=0)
    test_logits = logits.predict(splits["test"][0], batch_size=512, verbose=0)
    fitted = calibration.summary(eval_logits, splits["eval"][1], hparams.abstain_precision)
    labels = splits["test"][1]
    before = calibration.softmax(test_logits)
    after = calibration.softmax(test_logits, fitted["temperature"])
    predicted = after.argmax(axis=1)
    mirrored = calibration.softmax(logits.predict(splits["test"][0][:, :, ::-1], batch_size=512, verbose=0),
                                   fitted["temperature"])
    tta_accuracy = float(np.mean(((after + mirrored) / 2).argmax(axis=1) == labels))
    recall = {dc.EMOTIONS[c]: float(np.mean(predicted[labels == c] == c)) if np.any(labels == c) else None
              for c in range(dc.NUM_CLASSES)}
    return {"test_accuracy": float(np.mean(predicted == labels)), "tta_flip_accuracy": tta_accuracy,
            "latency_ms": _latency(logits, splits["test"][0]), "recall": recall,
            "macro_recall": float(np.mean([r for r in recall.values() if r is not None])),
            "ece_before": calibration.expected_calibration_error(before, labels),
            "ece_after": calibration.expected_calibration_error(after, labels),
            "temperature": fitted["temperature"], "attempts": history.attempts,
            "epochs": sum(a["epochs"] for a in history.attempts), "seconds": seconds}


def _latency(logits_model, images):
    """Median ms of the served computation (trainer.export.served_probabilities) without and with
    flip TTA, at batch 1 and 128."""
    from trainer.export import served_probabilities

    figures = {}
    for tta in ("none", "flip"):
        served = tf.function(lambda x, tta=tta: served_probabilities(
            lambda y: logits_model(y, training=False), x, 1.0, tta))
        for batch in (1, 128):
            x = tf.constant(images[:batch])
            served(x)
            times = []
            for _ in range(100 if batch == 1 else 20):
                started = time.perf_counter()
                served(x).numpy()
                times.append(1e3 * (time.perf_counter() - started))
            figures[f"{tta} b{batch}"] = statistics.median(times)
    return figures


def main():
    from pipeline import configs
    from trainer.train import HParams

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="FER2013 rows of the demo data root (make demo: 3000)")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profiles", nargs="*", default=["paper", configs.PROFILE])
    parser.add_argument("--recipes", nargs="*", default=[], choices=sorted(RECIPES))
    parser.add_argument("--precisions", nargs="+", default=["auto"],
                        help="training precisions (trainer/model.py PRECISIONS); auto: the Trainer's choice here")
    parser.add_argument("--epochs", type=int, default=None, help="cap every profile's epochs (a quick look)")
    parser.add_argument("--layout", default=configs.MODEL_LAYOUT)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--json", default=None, help="also write every run's figures here")
    args = parser.parse_args()
    print(f"TensorFlow threads: {one_thread_per_op()} (as the Trainer's process sets them)", flush=True)

    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench-recipe-")
    splits = load_splits(work_dir, args.n, args.data_seed)
    print(f"data: {', '.join(f'{s} {len(splits[s][1])}' for s in dc.SPLITS)} faces (demo data, n={args.n}); "
          f"{os.cpu_count()} cores", flush=True)
    plans = [(name, args.layout, configs.PROFILES[name]["hparams"]) for name in dict.fromkeys(args.profiles)]
    plans += [(f"{name} recipe", *RECIPES[name]) for name in args.recipes]
    if len(args.precisions) > 1:
        plans = [(f"{name} {precision}", layout, {**values, "precision": precision})
                 for name, layout, values in plans for precision in args.precisions]
    results = []
    for name, layout, profile in plans:
        for seed in args.seeds:
            values = {**profile, "seed": seed, **({"epochs": min(profile["epochs"], args.epochs)} if args.epochs else {})}
            hparams = HParams.from_dict(values)
            print(f"{name} ({layout}), seed {seed} ...", flush=True)
            outcome = run(layout, hparams, splits, log=lambda line: None)
            outcome.update(profile=name, layout=layout, seed=seed, hparams=dataclasses.asdict(hparams))
            results.append(outcome)
            print("  " + (outcome.get("failed") or f"test accuracy {outcome['test_accuracy']:.4f}, disgust recall "
                  f"{outcome['recall']['disgust']}, ECE {outcome['ece_before']:.4f} -> {outcome['ece_after']:.4f}, "
                  f"restarts {len(outcome['attempts']) - 1}, {outcome['epochs']} epochs, {outcome['seconds']:.0f} s"),
                  flush=True)

    print(f"\n{'profile':<18}{'seeds':>6}{'test acc (median, min-max)':>30}{'flip TTA':>9}{'disgust recall':>16}"
          f"{'macro recall':>14}{'ECE before':>11}{'ECE after':>10}{'collapses':>10}{'failed':>7}{'s/run':>7}")
    for name, layout, _ in plans:
        rows = [r for r in results if r["profile"] == name]
        ok = [r for r in rows if "failed" not in r]
        med = lambda key: statistics.median(r[key] for r in ok) if ok else float("nan")  # noqa: E731
        accuracy = [r["test_accuracy"] for r in ok]
        disgust = [r["recall"]["disgust"] for r in ok if r["recall"]["disgust"] is not None]
        collapses = sum(1 for r in ok for a in r["attempts"] if a["collapsed"])
        print(f"{name:<18}{len(rows):>6}{med('test_accuracy'):>12.4f} ({min(accuracy, default=float('nan')):.4f}-"
              f"{max(accuracy, default=float('nan')):.4f}){'':>4}{med('tta_flip_accuracy'):>9.4f}"
              f"{statistics.median(disgust) if disgust else float('nan'):>16.2f}"
              f"{med('macro_recall'):>14.4f}{med('ece_before'):>11.4f}{med('ece_after'):>10.4f}{collapses:>10}"
              f"{len(rows) - len(ok):>7}{med('seconds'):>7.0f}")
    print("collapses: attempts the guard stopped and restarted; failed: runs that ended in TrainingCollapsed or "
          "TrainingDidNotLearn. Disgust recall over the test split's disgust faces.")
    ok = [r for r in results if "failed" not in r]
    if ok:
        print("served computation, median ms (flip TTA runs the model twice): " + ", ".join(
            f"{k} {statistics.median(r['latency_ms'][k] for r in ok):.2f}" for k in ok[0]["latency_ms"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"figures: {args.json}")
    print(f"command: TF_USE_LEGACY_KERAS=1 python -m bench.recipe {shlex.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
