"""Training entry the pipeline's run_fn calls: `train(model, train_ds, eval_ds, hparams)`.

Adam on sparse categorical cross-entropy with the paper's defaults (lr 0.005, batch 32, 500
epochs), early stopping on the eval loss with the best weights restored, optional class
weights and light augmentation (small shifts, rotations, mirror images: the spatial
transformer should learn to undo them).
"""
import dataclasses
import math
import os
import time

import numpy as np
import tensorflow as tf
import tf_keras

from contract.data import IMAGE_SIZE
from trainer.stn import fast_warp


@dataclasses.dataclass
class HParams:
    """Training settings; `from_dict`/`to_dict` carry them through the pipeline as JSON."""

    learning_rate: float = 0.005
    batch_size: int = 32
    epochs: int = 500
    early_stopping_patience: int = 50      # epochs without a better eval loss before stopping
    class_weights: object = None           # None | "balanced" | {class id: weight}
    augment: bool = True
    max_shift_pixels: float = 3.0          # uniform in [-max, max], each axis
    max_rotation_degrees: float = 10.0     # uniform in [-max, max]
    horizontal_flip: bool = True           # mirror half of the images
    seed: int = 0
    shuffle_buffer: int = 30_000           # FER2013's whole training split fits
    cache: bool = True                     # keep the (unbatched) examples in memory after epoch 1
    jit_compile: bool = False              # XLA: a train step ran ~7x slower on these CPUs; try on GPU
    eval_batch_size: int = 256

    @classmethod
    def from_dict(cls, values):
        """From a JSON-style dict; unknown keys are an error (a typo must not pass silently)."""
        values = dict(values or {})
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"HParams: unknown keys {unknown}; known: {[f.name for f in dataclasses.fields(cls)]}")
        weights = values.get("class_weights")
        if isinstance(weights, dict):  # JSON object keys are strings
            values["class_weights"] = {int(k): float(v) for k, v in weights.items()}
        elif weights not in (None, "balanced"):
            raise ValueError(f"HParams: class_weights must be None, 'balanced' or a dict, got {weights!r}")
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)


def random_affine_thetas(batch_size, seed, hparams):
    """Per-image augmentation transforms (B, 6) in the sampler's normalised coordinates.

    Stateless in `seed` (shape [2]) so a run is reproducible whatever the pipeline's threading.
    """
    angle_seed, shift_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    max_angle = math.radians(hparams.max_rotation_degrees)
    angle = tf.random.stateless_uniform([batch_size], angle_seed, -max_angle, max_angle)
    max_shift = 2.0 * hparams.max_shift_pixels / IMAGE_SIZE  # pixels -> normalised units
    shift = tf.random.stateless_uniform([batch_size, 2], shift_seed, -max_shift, max_shift)
    flip = tf.ones([batch_size])
    if hparams.horizontal_flip:
        flip = tf.where(tf.random.stateless_uniform([batch_size], flip_seed) < 0.5, -1.0, 1.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # rotation @ mirror(x): [[cos, -sin], [sin, cos]] @ [[flip, 0], [0, 1]], then the shift.
    return tf.stack([cos * flip, -sin, shift[:, 0], sin * flip, cos, shift[:, 1]], axis=1)


def _check_examples(dataset, name):
    """The dataset as (float32 image, int64 label) pairs, or an error that shows what it holds."""
    spec = dataset.element_spec
    image_spec, label_spec = spec if isinstance(spec, tuple) and len(spec) == 2 else (None, None)
    if image_spec is None or image_spec.shape.as_list() != [IMAGE_SIZE, IMAGE_SIZE, 1] \
            or not image_spec.dtype.is_floating or not label_spec.dtype.is_integer or label_spec.shape.rank != 0:
        raise ValueError(
            f"train(): {name} must hold unbatched (image float32 [{IMAGE_SIZE}, {IMAGE_SIZE}, 1], integer label) "
            f"pairs; got {spec}")
    if (image_spec.dtype, label_spec.dtype) == (tf.float32, tf.int64):
        return dataset
    return dataset.map(lambda image, label: (tf.cast(image, tf.float32), tf.cast(label, tf.int64)))


def without_autotune(dataset):
    """tf.data's autotuner makes every iterator's teardown (each epoch, train and eval) stall
    for up to a second here; these pipelines are simple enough to size by hand."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def training_batches(train_ds, hparams):
    """Cache -> shuffle -> batch -> augment (whole batches, fused warp kernel) -> prefetch."""
    dataset = _check_examples(train_ds, "train_ds")
    if hparams.cache:
        dataset = dataset.cache()
    dataset = dataset.shuffle(hparams.shuffle_buffer, seed=hparams.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(hparams.batch_size)
    if hparams.augment:
        seeds = tf.data.Dataset.random(seed=hparams.seed, rerandomize_each_iteration=True).batch(2)

        def augment(batch, seed):
            (images, labels) = batch
            return fast_warp(images, random_affine_thetas(tf.shape(images)[0], seed, hparams)), labels

        dataset = tf.data.Dataset.zip((dataset, seeds)).map(augment, num_parallel_calls=os.cpu_count() or 2)
    return without_autotune(dataset.prefetch(2))


def balanced_class_weights(train_ds, num_classes):
    """n / (num_classes * count_c), as scikit-learn's "balanced"; absent classes get 1."""
    labels = _check_examples(train_ds, "train_ds").map(lambda image, label: label)
    counts = labels.reduce(tf.zeros([num_classes], tf.int64),
                           lambda total, label: total + tf.one_hot(label, num_classes, dtype=tf.int64)).numpy()
    return {c: float(counts.sum() / (num_classes * n)) if n else 1.0 for c, n in enumerate(counts)}


class EpochLog(tf_keras.callbacks.Callback):
    """One readable line per epoch: metrics, seconds, and whether it is the best so far."""

    def __init__(self, epochs, monitor, log=print):
        super().__init__()
        self.epochs, self.monitor, self.log = epochs, monitor, log
        self.best = math.inf

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
        current = logs.get(self.monitor, math.inf)
        best = current < self.best
        self.best = min(self.best, current)
        self.log(f"epoch {epoch + 1}/{self.epochs}  {metrics}  {time.perf_counter() - self.started:.1f} s"
                 + ("  (best)" if best else ""))


def compile_for_training(model, hparams):
    """Adam and sparse categorical cross-entropy on the probabilities, with an accuracy metric.

    Under a mixed-precision model tf_keras wraps Adam in its dynamic LossScaleOptimizer.
    """
    model.compile(
        optimizer=tf_keras.optimizers.Adam(hparams.learning_rate),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=hparams.jit_compile)


def train(model, train_ds, eval_ds=None, hparams=None, callbacks=(), log=print):
    """Compile and fit `model`; returns the Keras History and leaves the best weights in the model.

    train_ds, eval_ds: tf.data.Datasets of unbatched (image [48, 48, 1] float32, label int64)
        pairs, already normalised; train() batches, shuffles, augments and prefetches. Without
        eval_ds, early stopping watches the training loss.
    callbacks: extra Keras callbacks (the run_fn adds TensorBoard).
    log: where the per-epoch line goes.
    """
    hparams = hparams or HParams()
    tf_keras.utils.set_random_seed(hparams.seed)  # dropout and anything else Keras draws
    num_classes = model.output_shape[-1]
    class_weight = hparams.class_weights
    if class_weight == "balanced":
        class_weight = balanced_class_weights(train_ds, num_classes)
        log(f"class weights (balanced): { {c: round(w, 3) for c, w in class_weight.items()} }")
    elif class_weight is not None:
        class_weight = {c: float(class_weight.get(c, 1.0)) for c in range(num_classes)}

    validation = None
    if eval_ds is not None:
        validation = without_autotune(
            _check_examples(eval_ds, "eval_ds").batch(hparams.eval_batch_size).cache().prefetch(2))
    monitor = "val_loss" if validation is not None else "loss"

    compile_for_training(model, hparams)
    early_stopping = tf_keras.callbacks.EarlyStopping(
        monitor=monitor, patience=hparams.early_stopping_patience, restore_best_weights=True)
    history = model.fit(
        training_batches(train_ds, hparams), validation_data=validation, epochs=hparams.epochs,
        class_weight=class_weight, verbose=0,
        callbacks=[early_stopping, EpochLog(hparams.epochs, monitor, log), *callbacks])
    best = int(np.argmin(history.history[monitor]))
    log(f"best epoch {best + 1}: {monitor} {history.history[monitor][best]:.4f}; weights restored")
    return history
