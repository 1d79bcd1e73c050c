"""Is the synthetic demo data learnable, but not trivially? And how fast is it drawn?

`make demo` trains Deep-Emotion for a few minutes on 2 CPU cores on ~3,000 FER2013-style faces
and must reach >= 90% test accuracy; a linear model on raw pixels should do clearly worse, or
the data teaches nothing about what a spatial transformer is for. This writes fer2013.csv with
the demo generator, reads it back, trains on the Training rows for a fixed wall-clock budget and
reports accuracy on the PublicTest + PrivateTest rows for:
  linear        softmax regression on z-scored pixels (tf_keras Dense)
  cnn           a small 3-conv-layer CNN (~100k parameters)
  deep_emotion  trainer.model.build_model("paper"), the demo profile's hyperparameters
                (Adam lr 0.005, batch 64), when the trainer package imports.

    TF_USE_LEGACY_KERAS=1 python -m bench.demo_data_learnability [--n 3000] [--seconds 150]
"""
from contract.runtime import quiet_tensorflow

quiet_tensorflow()

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from contract.data import EMOTIONS, IMAGE_SIZE  # noqa: E402
from deep_emotion.demo_data import generate, render_faces  # noqa: E402

MODELS = ("linear", "cnn", "deep_emotion")


def render_speed(faces=5_000, size=IMAGE_SIZE) -> float:
    """Faces per second that render_faces draws on this process's one core."""
    labels = np.arange(faces) % len(EMOTIONS)
    render_faces(labels[:200], seed=1, size=size)  # warm-up
    start = time.perf_counter()
    render_faces(labels, seed=2, size=size)
    return faces / (time.perf_counter() - start)


def load_fer2013(path):
    """(pixels uint8 [n, 48, 48], labels, usages) from a fer2013.csv."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    pixels = np.array([np.array(r["pixels"].split(), dtype=np.uint8) for r in rows])
    return (pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), np.array([int(r["emotion"]) for r in rows]),
            np.array([r["Usage"] for r in rows]))


def time_budget(tf_keras, seconds):
    """A callback that stops training once the wall-clock budget is spent (checked every batch)."""
    start = time.perf_counter()

    def check(batch, logs=None):
        if time.perf_counter() - start > seconds:
            callback.model.stop_training = True

    callback = tf_keras.callbacks.LambdaCallback(on_train_batch_end=check)
    return callback


def build(name, tf_keras):
    layers = tf_keras.layers
    if name == "linear":
        model = tf_keras.Sequential([layers.Input((IMAGE_SIZE, IMAGE_SIZE, 1)), layers.Flatten(),
                                     layers.Dense(len(EMOTIONS), activation="softmax",
                                                  kernel_regularizer=tf_keras.regularizers.L2(1e-4))])
        return model, 1e-3, 64
    if name == "cnn":
        model = tf_keras.Sequential([
            layers.Input((IMAGE_SIZE, IMAGE_SIZE, 1)),
            layers.Conv2D(32, 3, activation="relu", padding="same"), layers.MaxPool2D(),
            layers.Conv2D(64, 3, activation="relu", padding="same"), layers.MaxPool2D(),
            layers.Conv2D(128, 3, activation="relu", padding="same"), layers.GlobalMaxPool2D(),
            layers.Dropout(0.3), layers.Dense(len(EMOTIONS), activation="softmax")])
        return model, 1e-3, 64
    from trainer.model import build_model  # the product's model; the demo profile's settings
    return build_model("paper", seed=0), 0.005, 64


def train_and_test(name, x_train, y_train, x_test, y_test, seconds, max_epochs):
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model, learning_rate, batch_size = build(name, tf_keras)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=max_epochs, verbose=0,
                        callbacks=[time_budget(tf_keras, seconds)])
    elapsed = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, batch_size=512, verbose=0)
    predicted = np.argmax(model.predict(x_test, batch_size=512, verbose=0), axis=1)
    per_class = {EMOTIONS[c]: float(np.mean(predicted[y_test == c] == c))
                 for c in range(len(EMOTIONS)) if np.any(y_test == c)}
    return {"accuracy": accuracy, "train_accuracy": history.history["accuracy"][-1],
            "epochs": len(history.history["loss"]), "seconds": elapsed,
            "parameters": model.count_params(), "per_class": per_class}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=3_000, help="fer2013.csv rows (80%% train)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=150, help="training budget per model")
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)

    print(f"render_faces: {render_speed():,.0f} faces/s at 48x48 (one process, numpy)")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = generate(tmp, n=args.n, seed=args.seed, formats=("fer2013",))
        print(f"generate(n={args.n}, formats=fer2013): {time.perf_counter() - start:.1f} s")
        faces, labels, usages = load_fer2013(Path(summary["datasets"]["fer2013"]["path"]))
    train = usages == "Training"
    x = faces.astype(np.float32)[..., None]
    mean, std = x[train].mean(), x[train].std()  # Transform's global z-score
    x = (x - mean) / std
    print(f"train {train.sum()} rows, test {(~train).sum()} rows (PublicTest + PrivateTest); "
          f"majority class {np.bincount(labels[~train]).max() / (~train).sum():.1%} of test")
    for name in args.models.split(","):
        try:
            result = train_and_test(name, x[train], labels[train], x[~train], labels[~train],
                                    args.seconds, args.max_epochs)
        except ImportError as error:
            print(f"{name}: skipped ({error})")
            continue
        print(f"{name:>12}: test accuracy {result['accuracy']:.3f} (train {result['train_accuracy']:.3f}), "
              f"{result['epochs']} epochs in {result['seconds']:.0f} s, {result['parameters']:,} parameters")
        print(" " * 14 + "per class: " + ", ".join(f"{k} {v:.2f}" for k, v in result["per_class"].items()))
    print("command: TF_USE_LEGACY_KERAS=1 python -m bench.demo_data_learnability " + " ".join(
        sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
