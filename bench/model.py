"""Deep-Emotion speed on this machine: training images/s and inference latency/throughput.

    TF_ENABLE_ONEDNN_OPTS=1 python -m bench.model [--layouts paper reference] [--runs 7]
        [--train-steps 40] [--threads INTRA,INTER] [--precisions float32 mixed_bfloat16] [--skip-training]

Training: Adam steps of `model.fit` on cached, pre-batched random images (the model alone), and
fed and stepped as the Trainer feeds and steps it under the real-data profile (raw faces cached,
shuffled and batched; normalised and augmented in the step; class weights; the learning-rate
schedule), and their ratio run by run: issue 14 asks the Trainer's within 10% of the model's own.
Training is measured in each of --precisions (Keras policies; "auto" is what the Trainer picks by
default: on a CPU mixed_bfloat16 where it is native, else float32; trainer/model.py), all fits
interleaved run by run so that a drift of the machine's speed hits all of them. Inference, batch 1 latency p50/p99 over 300 calls and
images/s at batch 128 and 256, through two
runtimes: the model's concrete function (what a SavedModel signature runs), and the TFLite copy
the Trainer exports beside it (trainer/lite.py, XNNPACK), with 1 thread and with one per core.
Every figure is the median of
--runs runs (these machines are shared and noisy); the spread is printed beside it, and for
training also images per CPU-second of this process, which other load disturbs less (on an
idle 2-core machine wall-clock images/s can approach twice that).

Roofline, after each layout's batch-128 training: the floating-point work of one training step
per image (TensorFlow's own op statistics over the Keras train step's graph), the float32
matmul rate of this machine (the most its cores give to any TF op), and what share of that rate
the measured model-only training and a 10,000 images/s target would take.
"""
from contract.runtime import cpu_cores, one_thread_per_op, quiet_tensorflow

quiet_tensorflow()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from pipeline.configs import PROFILES  # noqa: E402
from trainer import lite  # noqa: E402
from trainer.model import build_model, training_precision  # noqa: E402
from trainer.train import (HParams, class_weights_from_counts, compile_for_training, learning_rate,  # noqa: E402
                           train_step_plan, training_batches, without_autotune)

TRAIN_BATCHES = (32, 128)
INFER_BATCHES = (128, 256)
ROOFLINE_BATCH = 128
TARGET_IMAGES_PER_SECOND = 10_000  # issue 14's training target for the paper layout at batch 128


def images(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 48, 48, 1)).astype(np.float32)


FEEDS = {"model": "model only", "trainer": "Trainer's input and step",
         "unaugmented": "the same, augmentation off"}
# FER2013's training split by class (angry, disgust, fear, happy, sad, surprise, neutral): the
# "trainer" feed's labels follow it, so its class weights are the ones a FER2013 run uses.
FER2013_TRAIN_CLASSES = (3995, 436, 4097, 7215, 4830, 3171, 4965)


def _feed(feed, layout, batch_size, steps, precision):
    """(model compiled as the Trainer compiles it, batches, fit keyword arguments) for one feed.

    "model": pre-normalised float32 batches cached in memory, Keras's step as the Trainer slices it
        here (train_step_plan), nothing to augment: the model's own speed.
    "trainer": what the Trainer's run_fn feeds under the real-data profile: raw uint8 faces cached in
        memory, shuffled and batched by training_batches; each slice normalised (a z-score, as
        Transform's graph) and augmented inside the step where the Trainer does that, else in the
        input pipeline; square-root-balanced class weights; the warm-up + cosine learning rate.
    "unaugmented": "trainer" with the augmentation off: what the augmentation costs, against it.
    """
    n = batch_size * steps
    rng = np.random.default_rng(1)
    hparams = HParams(**{**PROFILES["real-data"]["hparams"], "batch_size": batch_size, "augment": feed != "unaugmented"})
    towers, in_step = train_step_plan(hparams)  # as the Trainer runs its steps here
    model = build_model(layout, seed=0, mixed_precision=training_precision(precision))
    if feed == "model":
        x, y = images(n), rng.integers(0, 7, n)
        batches = without_autotune(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().prefetch(2))
        compile_for_training(model, hparams, hparams.learning_rate, towers)
        return model, batches, {}
    raw = rng.integers(0, 256, (n, 48, 48, 1), dtype=np.uint8)
    y = rng.choice(7, n, p=np.array(FER2013_TRAIN_CLASSES) / sum(FER2013_TRAIN_CLASSES))
    mean, std = float(raw.mean()), float(raw.std())
    preprocess = lambda pixels: (tf.cast(pixels, tf.float32) - mean) / std  # noqa: E731
    batches = training_batches(tf.data.Dataset.from_tensor_slices((raw, y)).cache(), hparams, preprocess, n, in_step)
    compile_for_training(model, hparams, learning_rate(hparams, steps), towers, in_step, preprocess)
    counts = np.bincount(y, minlength=7)
    return model, batches, {"class_weight": class_weights_from_counts(counts, hparams.class_weights)}


def train_throughput(layout, batch_size, steps, runs, feeds=("model",), precisions=("auto",)):
    """{(feed, precision): (images/s, images per CPU-second)} of `runs` fits of `steps` steps each
    (FEEDS, _feed), after one warm-up fit per model. Every fit takes its turn in each run, so a
    drift of this shared machine's speed hits all of them alike and the runs pair them: the
    ratio of two feeds is best read run by run (paired_ratios)."""
    n = batch_size * steps
    fits = {(feed, precision): _feed(feed, layout, batch_size, steps, precision)
            for feed in feeds for precision in precisions}
    for model, batches, kwargs in fits.values():
        model.fit(batches, epochs=1, verbose=0, **kwargs)
    rates = {key: ([], []) for key in fits}
    for _ in range(runs):
        for key, (model, batches, kwargs) in fits.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            model.fit(batches, epochs=1, verbose=0, **kwargs)
            rates[key][0].append(n / (time.perf_counter() - started))
            rates[key][1].append(n / (time.process_time() - cpu_started))
    return rates


def paired_ratios(rates, feed, base="model"):
    """{precision: [feed's images/s / base's, run by run]} from train_throughput's figures."""
    return {precision: [a / b for a, b in zip(values[0], rates[(base, precision)][0])]
            for (name, precision), values in rates.items() if name == feed}


def training_mflop_per_image(layout, batch_size=ROOFLINE_BATCH):
    """MFLOP of one Keras train step (forward, loss, gradients, Adam, metrics) per image, as
    TensorFlow's op statistics count them in the step's graph (convolutions, their two
    gradients, matmuls and the elementwise ops that register a count)."""
    model = build_model(layout, seed=0)
    model.compile(tf_keras.optimizers.Adam(0.005), tf_keras.losses.SparseCategoricalCrossentropy())
    step = tf.function(model.train_step).get_concrete_function(
        (tf.TensorSpec([batch_size, 48, 48, 1], tf.float32), tf.TensorSpec([batch_size], tf.int64)))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(step.graph, options=options).total_float_ops / batch_size / 1e6


def matmul_gflops(size=2048, runs=5):
    """float32 GFLOP/s of size x size matmuls on this machine, median of `runs` after a warm-up:
    dense, well-blocked work, the most these cores give to any TensorFlow op. One matmul per core
    at once, so the figure is the machine's whatever the thread settings (one thread per op, as
    the Trainer runs: contract.runtime.one_thread_per_op)."""
    cores = cpu_cores()
    a, b = (tf.constant(np.random.default_rng(seed).standard_normal((size, size), dtype=np.float32))
            for seed in (0, 1))
    matmuls = tf.function(lambda a, b: [tf.matmul(a + i, b) for i in range(cores)])
    [product.numpy() for product in matmuls(a, b)]
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(5):
            products = matmuls(a, b)
        [product.numpy() for product in products]
        rates.append(5 * cores * 2 * size ** 3 / (time.perf_counter() - started) / 1e9)
    return float(np.median(rates))


def roofline_lines(layout, model_only_rates, peak_gflops):
    """What the measured model-only training (images/s by precision) and the target take of the
    machine's matmul rate."""
    mflop = training_mflop_per_image(layout)
    lines = [f"  roofline  a training step is {mflop:.2f} MFLOP an image (batch {ROOFLINE_BATCH}); float32 matmul "
             f"here: {peak_gflops:.0f} GFLOP/s"]
    for precision, rate in model_only_rates.items():
        lines.append(f"  roofline  {precision:14s} {rate:,.0f} images/s = {rate * mflop / 1e3:.0f} GFLOP/s, "
                     f"{rate * mflop / 1e3 / peak_gflops:.0%} of it")
    need = TARGET_IMAGES_PER_SECOND * mflop / 1e3
    lines.append(f"  roofline  {TARGET_IMAGES_PER_SECOND:,} images/s would take {need:.0f} GFLOP/s, "
                 f"{need / peak_gflops:.0%} of it")
    return lines


def runtimes(layout):
    """name -> (prepare numpy batch, call prepared batch -> numpy probabilities) for one model."""
    model = build_model(layout, seed=0)
    serve = tf.function(lambda image: model(image, training=False)).get_concrete_function(
        tf.TensorSpec([None, 48, 48, 1], tf.float32))
    flatbuffer = lite.convert(serve, model)
    found = {"SavedModel signature": (tf.constant, lambda batch: serve(batch).numpy())}
    for threads in sorted({1, os.cpu_count()}):
        found[f"TFLite, {threads} thread{'s' if threads > 1 else ''}"] = (
            np.asarray, lite.LiteModel(flatbuffer, num_threads=threads))
    return found


def inference(prepare, call, runs):
    """(p50 ms, p99 ms) at batch 1 per run, and images/s per run for each INFER_BATCHES size."""
    one = prepare(images(1))
    for _ in range(50):
        call(one)
    latencies, rates = [], {b: [] for b in INFER_BATCHES}
    for _ in range(runs):
        times = []
        for _ in range(300):
            started = time.perf_counter()
            call(one)
            times.append(time.perf_counter() - started)
        latencies.append((np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3))
    for batch_size in INFER_BATCHES:
        batch = prepare(images(batch_size))
        call(batch)
        for _ in range(runs):
            calls = max(1, 2048 // batch_size)
            started = time.perf_counter()
            for _ in range(calls):
                call(batch)
            rates[batch_size].append(calls * batch_size / (time.perf_counter() - started))
    return latencies, rates


def spread(values, fmt="{:,.0f}"):
    return f"{fmt.format(np.median(values))}  ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", nargs="+", default=["paper", "reference"], choices=["paper", "reference"])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--train-steps", type=int, default=40)
    parser.add_argument("--threads", default=None, metavar="INTRA,INTER",
                        help="TensorFlow's intra- and inter-op thread counts (default: the Trainer's, contract.runtime.one_thread_per_op)")
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                        help="training precisions (Keras policies, or auto: what the Trainer picks here)")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        intra, inter = (int(n) for n in args.threads.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
        threads = args.threads
    else:
        threads = one_thread_per_op()  # as the Trainer's process sets them

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, oneDNN "
          f"{'on' if os.environ.get('TF_ENABLE_ONEDNN_OPTS', '0') == '1' else 'off'} "
          f"(TF_ENABLE_ONEDNN_OPTS), threads: {threads}, "
          f"load average {os.getloadavg()[0]:.1f} at start; "
          f"median (min-max) of {args.runs} runs")
    peak_gflops = None if args.skip_training else matmul_gflops()
    for layout in args.layouts:
        print(f"\n{layout} layout")
        precisions = list(dict.fromkeys(training_precision(p) for p in args.precisions))
        for batch_size in TRAIN_BATCHES if not args.skip_training else ():
            measured = train_throughput(layout, batch_size, args.train_steps, args.runs, tuple(FEEDS), precisions)
            for (feed, precision), (rates, cpu_rates) in measured.items():
                print(f"  train  batch {batch_size:3d}  {FEEDS[feed]:28s} {precision:14s} {spread(rates)} images/s;  "
                      f"{np.median(cpu_rates):,.0f} per CPU-second", flush=True)
            for feed, target in (("trainer", "  (target >= 0.90)"), ("unaugmented", "")):
                for precision, ratios in paired_ratios(measured, feed).items():
                    print(f"  train  batch {batch_size:3d}  {feed.capitalize() + ' / model, paired':28s} "
                          f"{precision:14s} {spread(ratios, '{:.3f}')}x{target}", flush=True)
            if batch_size == ROOFLINE_BATCH:
                model_only = {precision: float(np.median(rates))
                              for (feed, precision), (rates, _) in measured.items() if feed == "model"}
        if not args.skip_training:
            print("\n".join(roofline_lines(layout, model_only, peak_gflops)), flush=True)
        for runtime, (prepare, call) in runtimes(layout).items():
            latencies, rates = inference(prepare, call, args.runs)
            print(f"  infer  batch   1  {runtime:28s} p50 {spread([p50 for p50, _ in latencies], '{:.2f}')} ms   "
                  f"p99 {spread([p99 for _, p99 in latencies], '{:.2f}')} ms", flush=True)
            for batch_size, values in rates.items():
                print(f"  infer  batch {batch_size:3d}  {runtime:28s} {spread(values)} images/s", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at end. Reproduce: "
          f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', '0')} "
          f"python -m bench.model {' '.join(sys.argv[1:] if argv is None else argv)}")


if __name__ == "__main__":
    main()
