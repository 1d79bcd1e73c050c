"""Training entry the pipeline's run_fn calls: `train(model, train_ds, eval_ds, hparams)`.

Adam on cross-entropy (hard labels, or FER+ vote shares), early stopping on the eval loss with the
best weights restored, class weights, augmentation (small shifts, rotations, mirror images: the
spatial transformer should learn to undo them; optionally random resized crops and erasing), a
learning-rate schedule, and two guards that end a hopeless run early:

- Collapse. Adam's first steps move every weight by about the learning rate; the localisation
  head starts at zero, so theta can leave the image within tens of steps. The sampler then reads
  only padding, theta's gradient is exactly zero and the classifier sees a constant input: every
  face gets the majority class, for good. CollapseGuard recognises that state (one class for
  nearly every face AND outputs that no longer depend on the input, or theta far outside the
  image) in the first epochs and the run restarts from a new initialisation at half the learning
  rate; after `collapse_restarts` restarts it fails with TrainingCollapsed. (Measured in
  bench/recipe.py; a one-class histogram alone also fires on healthy slow starters.)
- Chance level. If the eval accuracy has not risen above the majority class's share after
  `chance_patience` epochs, the run fails with TrainingDidNotLearn instead of training for hours.
"""
import dataclasses
import math
import os
import time

import numpy as np
import tensorflow as tf
import tf_keras

from contract.data import IMAGE_SIZE
from contract.runtime import cpu_cores
from trainer.cpu_warp import warp_images
from trainer.model import LOGITS, PRECISIONS, THETA
from trainer.stn import pixel_affine


CLASS_WEIGHTS = (None, "balanced", "sqrt_balanced")
LR_SCHEDULES = ("constant", "warmup_cosine")


class TrainingCollapsed(RuntimeError):
    """Every attempt ended in the absorbing one-class state (see the module docstring)."""


class TrainingDidNotLearn(RuntimeError):
    """The eval accuracy stayed at chance level for `chance_patience` epochs."""


@dataclasses.dataclass
class HParams:
    """Training settings; `from_dict`/`to_dict` carry them through the pipeline as JSON. The
    defaults are the paper's published setting; pipeline/configs.py's profiles override them."""

    learning_rate: float = 0.005           # peak learning rate under warmup_cosine
    batch_size: int = 32
    epochs: int = 500
    early_stopping_patience: int = 50      # epochs without a better eval loss before stopping
    class_weights: object = None           # None | "balanced" | "sqrt_balanced" | {class id: weight}
    lr_schedule: str = "constant"          # or "warmup_cosine": linear warm-up, then cosine decay to 0
    warmup_epochs: float = 1.0             # warmup_cosine: warm-up length, capped at warmup_max_steps
    warmup_max_steps: int = 500
    augment: bool = True
    max_shift_pixels: float = 3.0          # uniform in [-max, max], each axis
    max_rotation_degrees: float = 10.0     # uniform in [-max, max]
    horizontal_flip: bool = True           # mirror half of the images
    random_crop_min_area: float = 1.0      # < 1: random resized crops keeping at least this share of the face
    random_erasing: float = 0.0            # probability of erasing one random box of each face
    soft_labels: bool = False              # train on the emotion_votes distribution (FER+), not the hard label
    seed: int = 0
    collapse_restarts: int = 2             # restarts after a collapse (0: fail at the first)
    collapse_check_epochs: int = 3         # the first epochs at whose end CollapseGuard looks
    chance_patience: int = 8               # epochs allowed at chance level (0: no check)
    calibrate: bool = True                 # fit a temperature on eval; the export applies it
    abstain_precision: object = 0.9        # answers below the confidence reaching this eval precision are
                                           # flagged uncertain; None: never flag
    tta: str = "none"                      # "flip": the served model averages face and mirror image
    shuffle_buffer: int = 30_000           # FER2013's whole training split fits
    cache: bool = True                     # read the training split's files once (a local cache file), and keep
    cache_memory_mb: int = 256             # it in memory too up to this many MB (memory flat in the data)
    precision: str = "auto"                # "auto": mixed_float16 on GPU, mixed_bfloat16 on a CPU with
                                           # AVX512_BF16/AMX (~1.4x faster than float32), else float32
                                           # (trainer/model.py); served in float32 always
    jit_compile: bool = False              # XLA: a train step ran ~7x slower on these CPUs; try on GPU
    steps_per_execution: int = 8           # train steps per tf.function call (fewer Python round trips;
                                           # batch-level callbacks then see every 8th step)
    cpu_towers: int = 0                    # CPU: each batch split into this many slices, one per core, each
                                           # augmented and trained on its own (data_parallel_train_step);
                                           # 0: one per core where TensorFlow runs an op per thread, 1: off
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
        elif weights not in CLASS_WEIGHTS:
            raise ValueError(f"HParams: class_weights must be one of {CLASS_WEIGHTS} or a dict, got {weights!r}")
        if values.get("precision", "auto") not in PRECISIONS:
            raise ValueError(f"HParams: precision must be one of {PRECISIONS}, got {values['precision']!r}")
        if values.get("lr_schedule", "constant") not in LR_SCHEDULES:
            raise ValueError(f"HParams: lr_schedule must be one of {LR_SCHEDULES}, got {values['lr_schedule']!r}")
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


def warp_for_augmentation(images, theta):
    """images [B, H, W, C] warped by the affine theta (B, 6) exactly as trainer.stn.spatial_transform
    warps them (its convention and arithmetic: pixel centres, zeros outside), through the compiled
    CPU kernel trainer.cpu_warp (one call a batch, without the GIL; why: its docstring). No
    gradient: for augmentation (augment_batch), not inside the model. Returns float32."""
    matrices = tf.reshape(pixel_affine(theta, tuple(images.shape[1:3])), [-1, 2, 3])
    warped = tf.numpy_function(warp_images, [tf.cast(images, tf.float32), matrices], tf.float32, stateful=False)
    return tf.ensure_shape(warped, images.shape)


def random_resized_crops(images, seed, min_area):
    """Each face cropped to a random box of at least min_area of it (aspect 3:4 to 4:3) and resized
    back to 48x48 (batched, stateless in `seed`)."""
    batch = tf.shape(images)[0]
    area_seed, ratio_seed, place_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    area = tf.random.stateless_uniform([batch], area_seed, min_area, 1.0)
    ratio = tf.exp(tf.random.stateless_uniform([batch], ratio_seed, math.log(3 / 4), math.log(4 / 3)))
    height, width = tf.minimum(tf.sqrt(area / ratio), 1.0), tf.minimum(tf.sqrt(area * ratio), 1.0)
    corner = tf.random.stateless_uniform([batch, 2], place_seed)
    top, left = corner[:, 0] * (1 - height), corner[:, 1] * (1 - width)
    boxes = tf.stack([top, left, top + height, left + width], axis=1)
    cropped = tf.image.crop_and_resize(images, boxes, tf.range(batch), images.shape[1:3])
    return tf.ensure_shape(cropped, [None, *images.shape[1:]])  # the spatial transformer needs static H, W


def random_erasing(images, seed, probability, area=(0.02, 0.2)):
    """With `probability`, one random box of each face (2-20% of it) filled with one random level."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    area_seed, ratio_seed, place_seed, apply_seed, value_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 5))
    box_area = tf.random.stateless_uniform([batch], area_seed, *area)
    ratio = tf.exp(tf.random.stateless_uniform([batch], ratio_seed, math.log(0.3), math.log(3.3)))
    box_h, box_w = tf.minimum(tf.sqrt(box_area * ratio), 1.0), tf.minimum(tf.sqrt(box_area / ratio), 1.0)
    corner = tf.random.stateless_uniform([batch, 2], place_seed)
    top, left = corner[:, 0] * (1 - box_h), corner[:, 1] * (1 - box_w)
    rows = (tf.cast(tf.range(height), tf.float32) + 0.5) / tf.cast(height, tf.float32)
    columns = (tf.cast(tf.range(width), tf.float32) + 0.5) / tf.cast(width, tf.float32)
    in_rows = (rows[None] >= top[:, None]) & (rows[None] < (top + box_h)[:, None])
    in_columns = (columns[None] >= left[:, None]) & (columns[None] < (left + box_w)[:, None])
    erase = tf.random.stateless_uniform([batch], apply_seed) < probability
    mask = in_rows[:, :, None] & in_columns[:, None, :] & erase[:, None, None]
    return tf.where(mask[..., None], tf.random.stateless_normal([batch, 1, 1, 1], value_seed, dtype=images.dtype),
                    images)


def augment_batch(images, seed, hparams):
    """A batch of faces augmented as hparams say: warped (shift, rotation, mirror), then optionally
    cropped and erased; stateless in `seed` (shape [2]). The input pipeline runs it batch by batch,
    or data_parallel_train_step slice by slice inside the train step."""
    warp_seed, crop_seed, erase_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    images = warp_for_augmentation(images, random_affine_thetas(tf.shape(images)[0], warp_seed, hparams))
    if hparams.random_crop_min_area < 1.0:
        images = random_resized_crops(images, crop_seed, hparams.random_crop_min_area)
    if hparams.random_erasing > 0.0:
        images = random_erasing(images, erase_seed, hparams.random_erasing)
    return images


def _check_examples(dataset, name, raw=False):
    """The dataset as (image, target) pairs, or an error that shows what it holds: images float32,
    or with raw=True uint8 pixels that a `preprocess` function normalises batch by batch. The target
    is an int64 class id, or float32 [classes] label shares (FER+ votes) for soft-label training."""
    spec = dataset.element_spec
    image_spec, label_spec = spec if isinstance(spec, tuple) and len(spec) == 2 else (None, None)
    hard = label_spec is not None and label_spec.dtype.is_integer and label_spec.shape.rank == 0
    soft = label_spec is not None and label_spec.dtype.is_floating and label_spec.shape.rank == 1
    image_ok = image_spec is not None and image_spec.shape.as_list() == [IMAGE_SIZE, IMAGE_SIZE, 1] and (
        image_spec.dtype == tf.uint8 if raw else image_spec.dtype.is_floating)
    if not image_ok or not (hard or soft):
        kind = "uint8 (raw pixels)" if raw else "float32"
        raise ValueError(
            f"train(): {name} must hold unbatched (image {kind} [{IMAGE_SIZE}, {IMAGE_SIZE}, 1], integer label "
            f"or float label shares [classes]) pairs; got {spec}")
    target_dtype = tf.int64 if hard else tf.float32
    image_dtype = tf.uint8 if raw else tf.float32
    if (image_spec.dtype, label_spec.dtype) == (image_dtype, target_dtype):
        return dataset
    return dataset.map(lambda image, label: (tf.cast(image, image_dtype), tf.cast(label, target_dtype)))


class _ReadOnce:
    """The training split read from its files once: the class-count pass writes it to a cache file on
    local disk, and every epoch (of every restart) reads that instead. Small splits are then also kept
    in memory (up to hparams.cache_memory_mb); larger ones stay in the file, so the Trainer's memory
    does not grow with the data (FER2013's 28,709 raw faces are 66 MB; ten times that spills).
    The cache folder is removed on exit."""

    def __init__(self, hparams):
        self.hparams, self.folder = hparams, None

    def __enter__(self):
        import tempfile  # pylint: disable=import-outside-toplevel

        if self.hparams.cache:
            self.folder = tempfile.mkdtemp(prefix="deep-emotion-cache-")
        return self

    def __exit__(self, *exc_info):
        if self.folder:
            import shutil  # pylint: disable=import-outside-toplevel

            shutil.rmtree(self.folder, ignore_errors=True)

    def on_disk(self, dataset):
        return dataset.cache(os.path.join(self.folder, "train")) if self.folder else dataset

    def in_memory_when_small(self, dataset, examples: int, bytes_per_example: int):
        small = examples * bytes_per_example <= self.hparams.cache_memory_mb * 2 ** 20
        return dataset.cache() if self.folder and small else dataset


def _class_ids(dataset):
    """The hard class id of each (image, target) element: the label, or the largest vote share."""
    return dataset.map(lambda image, target: target if target.shape.rank == 0 else tf.argmax(target))


def without_autotune(dataset):
    """tf.data's autotuner makes every iterator's teardown (each epoch, train and eval) stall
    for up to a second here; these pipelines are simple enough to size by hand."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def training_batches(train_ds, hparams, preprocess=None, examples=0, in_step=False):
    """Shuffle -> batch -> preprocess (raw pixels: Transform's graph, batch by batch) -> augment
    (whole batches, augment_batch) -> prefetch; with in_step, the train step preprocesses and augments
    each slice (data_parallel_train_step) and the batches stay as read. train() caches train_ds before."""
    dataset = _check_examples(train_ds, "train_ds", raw=preprocess is not None)
    if examples:  # a TFRecord split's size is unknown to tf.data; Keras needs it with steps_per_execution > 1
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(examples))
    dataset = dataset.shuffle(hparams.shuffle_buffer, seed=hparams.seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(hparams.batch_size)
    if in_step:
        return without_autotune(dataset.prefetch(2))
    if preprocess is not None:
        dataset = dataset.map(lambda images, labels: (preprocess(images), labels),
                              num_parallel_calls=os.cpu_count() or 2)
    if hparams.augment:
        seeds = tf.data.Dataset.random(seed=hparams.seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda batch, seed: (augment_batch(batch[0], seed, hparams), batch[1]),
            num_parallel_calls=os.cpu_count() or 2)
    return without_autotune(dataset.prefetch(2))


def class_counts(dataset, num_classes):
    """Examples per class (int64 [num_classes]) of an (image, target) dataset: one pass over it,
    counted 4,096 at a time (one reduce step per element took longer than reading FER2013's train
    split: 2.0-2.6 -> 1.0-1.3 s for that pass here, the file cache filled in both)."""
    ids = _class_ids(dataset).batch(4096)
    return ids.reduce(tf.zeros([num_classes], tf.int64), lambda total, batch: total + tf.math.bincount(
        batch, minlength=num_classes, maxlength=num_classes, dtype=tf.int64)).numpy()


def class_weights_from_counts(counts, kind):
    """"balanced": n / (classes * count_c), as scikit-learn's; "sqrt_balanced": its square root
    (rare classes count more, without the accuracy cost of full balancing); absent classes get 1."""
    total, classes = counts.sum(), len(counts)
    weights = {c: float(total / (classes * n)) if n else 1.0 for c, n in enumerate(counts)}
    if kind == "sqrt_balanced":
        weights = {c: math.sqrt(w) for c, w in weights.items()}
    return weights


def balanced_class_weights(train_ds, num_classes):
    """n / (num_classes * count_c), as scikit-learn's "balanced"; absent classes get 1."""
    return class_weights_from_counts(class_counts(_check_examples(train_ds, "train_ds"), num_classes), "balanced")


class WarmupCosine(tf_keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then cosine decay to 0 at `total_steps`.

    The warm-up keeps Adam's first, sign-like steps small while the localisation head leaves the
    identity (module docstring); the decay lets the last epochs settle.
    """

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak, self.warmup_steps, self.total_steps = float(peak), int(warmup_steps), int(total_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        warm = float(max(self.warmup_steps, 1))
        progress = tf.clip_by_value((step - warm) / float(max(self.total_steps - self.warmup_steps, 1)), 0.0, 1.0)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
        return self.peak * tf.where(step <= warm, step / warm, cosine)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def learning_rate(hparams, steps_per_epoch, peak=None):
    """The optimiser's learning rate: a float, or the warm-up + cosine schedule."""
    peak = hparams.learning_rate if peak is None else peak
    if hparams.lr_schedule == "constant":
        return peak
    warmup = min(int(round(hparams.warmup_epochs * steps_per_epoch)), hparams.warmup_max_steps)
    return WarmupCosine(peak, warmup, steps_per_epoch * hparams.epochs)


class EpochLog(tf_keras.callbacks.Callback):
    """One readable line per epoch: metrics, seconds, the training pass's images/s (validation
    excluded; the first epoch also fills the cache), and whether it is the best so far."""

    def __init__(self, epochs, monitor, log=print, examples=0):
        super().__init__()
        self.epochs, self.monitor, self.log, self.examples = epochs, monitor, log, examples
        self.best = math.inf

    def on_epoch_begin(self, epoch, logs=None):
        self.started = self.trained = time.perf_counter()

    def on_test_begin(self, logs=None):  # fit's validation pass: the training pass is over
        self.trained = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
        current = logs.get(self.monitor, math.inf)
        best = current < self.best
        self.best = min(self.best, current)
        ended = time.perf_counter()
        train_seconds = (self.trained if self.trained > self.started else ended) - self.started
        speed = f"  (train {train_seconds:.1f} s, {self.examples / train_seconds:,.0f} img/s)" \
            if self.examples and train_seconds > 0 else ""
        self.log(f"epoch {epoch + 1}/{self.epochs}  {metrics}  {ended - self.started:.1f} s{speed}"
                 + ("  (best)" if best else ""))


class CollapseGuard(tf_keras.callbacks.Callback):
    """Stops training when the model is in the absorbing one-class state (module docstring).

    At the end of each of the first `epochs` epochs it runs the model on a fixed sample: collapsed
    when more than `max_share` of the sample gets one class AND the logits no longer depend on the
    input (mean std across the sample below `min_spread`) or theta has left the image
    (max |theta| above `max_theta`; the identity is 1).
    """

    def __init__(self, images, epochs=3, max_share=0.9, min_spread=0.05, max_theta=3.0):
        super().__init__()
        self.images, self.epochs = images, epochs
        self.max_share, self.min_spread, self.max_theta = max_share, min_spread, max_theta
        self.collapsed, self.finding = False, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.epochs or self.collapsed:
            return
        tap = tf_keras.Model(self.model.input, [self.model.get_layer(LOGITS).output, self.model.get_layer(THETA).output])
        logits, theta = (np.asarray(t, np.float64) for t in tap.predict(self.images, batch_size=512, verbose=0))
        share = np.bincount(logits.argmax(axis=1)).max() / len(logits)
        spread, theta_max = float(logits.std(axis=0).mean()), float(np.abs(theta).max())
        if share > self.max_share and (spread < self.min_spread or theta_max > self.max_theta):
            self.collapsed, self.model.stop_training = True, True
            self.finding = (f"after epoch {epoch + 1}, {share:.0%} of the sample gets class "
                            f"{int(np.bincount(logits.argmax(axis=1)).argmax())}, logit spread {spread:.3f}, "
                            f"max |theta| {theta_max:.2f}")


class ChanceGuard(tf_keras.callbacks.Callback):
    """Stops training when `monitor` (an accuracy) has not exceeded `chance` + `margin` by epoch `patience`."""

    def __init__(self, monitor, chance, patience, margin=0.02):
        super().__init__()
        self.monitor, self.chance, self.patience, self.margin = monitor, chance, patience, margin
        self.best, self.failed = 0.0, False

    def on_epoch_end(self, epoch, logs=None):
        self.best = max(self.best, (logs or {}).get(self.monitor, 0.0))
        if self.patience and epoch + 1 >= self.patience and self.best <= self.chance + self.margin:
            self.failed, self.model.stop_training = True, True


MIN_TOWER_BATCH = 16  # smaller slices cost more in per-op overhead than a core gains


def training_towers(hparams, strategy=None) -> int:
    """How many slices ("towers") train steps split each batch into: `hparams.cpu_towers`, or for 0
    one per core (at least MIN_TOWER_BATCH images each) when training on the CPU alone with one
    thread per op (contract.runtime.one_thread_per_op); otherwise 1. With TensorFlow's default
    threads the slices' ops fight over the cores; a GPU or a multi-replica strategy parallelises
    the batch itself."""
    if hparams.cpu_towers < 0:
        raise ValueError(f"HParams: cpu_towers must be >= 0, got {hparams.cpu_towers}")
    if hparams.cpu_towers:
        return hparams.cpu_towers
    strategy = strategy or tf.distribute.get_strategy()
    if (tf.config.list_physical_devices("GPU") or strategy.num_replicas_in_sync > 1
            or tf.config.threading.get_intra_op_parallelism_threads() != 1):
        return 1
    return max(1, min(cpu_cores(), hparams.batch_size // MIN_TOWER_BATCH))


def train_step_plan(hparams, strategy=None):
    """(towers, in_step): how train() runs its steps here. Slices preprocess and augment their own
    faces inside the step (data_parallel_train_step); a single tower leaves both to the input
    pipeline, where a GPU's step does not wait for them."""
    towers = training_towers(hparams, strategy)
    return towers, towers > 1


def data_parallel_train_step(model, towers, augment_hparams=None, preprocess=None):
    """A Keras train step that splits each batch into `towers` near-equal slices, runs forward and
    backward on each slice separately and applies the summed gradients once; each slice is first
    normalised by `preprocess` (raw pixels: Transform's graph) and augmented with `augment_hparams`
    (augment_batch), where given, inside the step.

    Why: the model's ops are too small to share across cores. Run whole on one core each (one
    thread per op, `contract.runtime.one_thread_per_op`), the slices keep both cores busy, and a
    slice's preprocessing and augmentation run on its own core just before its forward pass instead
    of in the input pipeline's threads beside the training ops, which they slowed by about twice
    their own CPU time (figures in docs/design.md). The mathematics is Keras's own step: each slice's
    mean loss (with the L2 penalty) is weighted by its share of the batch, so the summed gradient is
    the whole batch's up to float rounding; a mixed_float16 model's loss scale is applied per slice
    (the optimizer's compute_gradients); the loss and metrics Keras reports are computed once, on
    the whole batch. The augmentation is stateless in (the seed, the optimizer's step, the slice).
    A batch smaller than `towers` (an epoch's last) gives the slices it cannot fill a copy of one
    face at weight 0: oneDNN's kernels fail on empty batches.
    """
    def train_step(data):
        x, y, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
        size = tf.shape(x)[0]
        sizes = (size + tf.range(towers)) // towers  # near-equal, summing to size
        starts = tf.cumsum(sizes, exclusive=True)
        if augment_hparams is not None:
            step_seed = tf.stack([tf.constant(augment_hparams.seed, tf.int64),
                                  tf.cast(model.optimizer.iterations, tf.int64)])
            slice_seeds = tf.random.experimental.stateless_split(step_seed, towers)
        variables, total, predictions = model.trainable_variables, None, []
        for tower in range(towers):
            rows = tf.minimum(starts[tower] + tf.range(tf.maximum(sizes[tower], 1)), size - 1)
            x_part, y_part = tf.gather(x, rows), tf.gather(y, rows)
            if preprocess is not None:
                x_part = preprocess(x_part)
            if augment_hparams is not None:
                x_part = augment_batch(x_part, slice_seeds[tower], augment_hparams)
            weight_part = None if sample_weight is None else tf.gather(sample_weight, rows)
            share = tf.cast(sizes[tower], tf.float32) / tf.cast(size, tf.float32)
            with tf.GradientTape() as tape:
                y_pred = model(x_part, training=True)
                loss = (model.loss(y_part, y_pred, sample_weight=weight_part) + tf.add_n(model.losses or [0.0])) * share
            grads = [g for g, _ in model.optimizer.compute_gradients(loss, variables, tape=tape)]
            total = grads if total is None else [a + b for a, b in zip(total, grads)]
            predictions.append(y_pred[:sizes[tower]])
        y_pred = tf.concat(predictions, 0)
        model.compute_loss(x, y, y_pred, sample_weight)  # Keras's loss tracker: the batch's loss, as reported
        model.optimizer.apply_gradients(zip(total, variables))
        return model.compute_metrics(x, y, y_pred, sample_weight)

    return train_step


def compile_for_training(model, hparams, learning_rate_value=None, towers=1, in_step=False, preprocess=None):
    """Adam and cross-entropy on the probabilities (sparse for class ids, dense for FER+ vote
    shares), with an accuracy metric. Under a mixed-precision model tf_keras wraps Adam in its
    dynamic LossScaleOptimizer. towers > 1 (or in_step): the model's train step is
    data_parallel_train_step (set on the model object; Keras's own step otherwise); with in_step
    it preprocesses (`preprocess`, raw pixels) and augments (hparams) each slice itself."""
    rate = hparams.learning_rate if learning_rate_value is None else learning_rate_value
    if hparams.soft_labels:
        loss = tf_keras.losses.CategoricalCrossentropy()
        accuracy = tf_keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss = tf_keras.losses.SparseCategoricalCrossentropy()
        accuracy = tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=tf_keras.optimizers.Adam(rate), loss=loss, metrics=[accuracy],
                  jit_compile=hparams.jit_compile, steps_per_execution=hparams.steps_per_execution)
    if towers > 1 or in_step:
        model.train_step = data_parallel_train_step(model, towers, hparams if in_step and hparams.augment else None,
                                                    preprocess if in_step else None)
    else:
        vars(model).pop("train_step", None)  # back to the class's step


def reinitialise(model, seed):
    """Fresh draws from every initialiser of the model, in place (same object, same strategy)."""
    tf_keras.utils.set_random_seed(seed)
    with model.distribute_strategy.scope():
        model.set_weights(tf_keras.models.clone_model(model).get_weights())


def _sample(dataset, preprocess=None, n=1024):
    images = [image for image, _ in dataset.take(n).batch(n)]
    if not images:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 1), np.float32)
    return (preprocess(images[0]) if preprocess is not None else images[0]).numpy()


def train(model, train_ds, eval_ds=None, hparams=None, callbacks=(), log=print, preprocess=None):
    """Compile and fit `model`; returns the Keras History and leaves the best weights in the model.

    train_ds, eval_ds: tf.data.Datasets of unbatched (image [48, 48, 1] float32, label int64) pairs
        (or float label shares with soft_labels), already normalised; train() batches, shuffles,
        augments and prefetches. Without eval_ds, early stopping watches the training loss.
    preprocess: images uint8 [B, 48, 48, 1] -> the model's input; then the datasets hold raw uint8
        pixels (what the Trainer reads when Transform does not materialise its output) and are
        cached raw, four times smaller than normalised floats.
    callbacks: extra Keras callbacks (the run_fn adds TensorBoard).
    log: where the per-epoch line goes.
    The History carries `attempts`: one entry per initialisation tried (seed, learning rate,
    epochs, and what the collapse guard found), the list the Trainer records.
    Raises TrainingCollapsed or TrainingDidNotLearn, saying what was seen and what to try.
    """
    hparams = hparams or HParams()
    with _ReadOnce(hparams) as read_once:
        return _train(model, train_ds, eval_ds, hparams, callbacks, log, preprocess, read_once)


def _train(model, train_ds, eval_ds, hparams, callbacks, log, preprocess, read_once):
    num_classes = model.output_shape[-1]
    raw = preprocess is not None
    train_ds = read_once.on_disk(_check_examples(train_ds, "train_ds", raw=raw))
    counts = class_counts(train_ds, num_classes)  # the one pass over the files
    if not counts.sum():
        raise ValueError("train(): train_ds is empty")
    train_ds = read_once.in_memory_when_small(train_ds, int(counts.sum()), IMAGE_SIZE * IMAGE_SIZE * (1 if raw else 4))
    class_weight = hparams.class_weights
    if class_weight in ("balanced", "sqrt_balanced"):
        class_weight = class_weights_from_counts(counts, class_weight)
        log(f"class weights ({hparams.class_weights}): { {c: round(w, 3) for c, w in class_weight.items()} }")
    elif class_weight is not None:
        class_weight = {c: float(class_weight.get(c, 1.0)) for c in range(num_classes)}

    validation, chance, monitor_accuracy = None, counts.max() / counts.sum(), "accuracy"
    if eval_ds is not None:
        eval_ds = _check_examples(eval_ds, "eval_ds", raw=raw)
        eval_counts = class_counts(eval_ds, num_classes)
        if eval_counts.sum():  # always predicting the train split's majority class would score this
            chance, monitor_accuracy = eval_counts[counts.argmax()] / eval_counts.sum(), "val_accuracy"
            batches = eval_ds.apply(tf.data.experimental.assert_cardinality(int(eval_counts.sum())))
            batches = batches.cache().batch(hparams.eval_batch_size)
            if raw:
                batches = batches.map(lambda images, labels: (preprocess(images), labels))
            validation = without_autotune(batches.prefetch(2))
    monitor = "val_loss" if validation is not None else "loss"
    probe = _sample(eval_ds if eval_ds is not None else train_ds, preprocess)
    steps_per_epoch = int(math.ceil(counts.sum() / hparams.batch_size))
    towers, in_step = train_step_plan(hparams, model.distribute_strategy)

    attempts, peak = [], hparams.learning_rate
    for attempt in range(hparams.collapse_restarts + 1):
        seed = hparams.seed + 1000 * attempt
        if attempt:
            reinitialise(model, seed)
        tf_keras.utils.set_random_seed(seed)  # dropout and anything else Keras draws
        attempt_hparams = dataclasses.replace(hparams, seed=seed)
        compile_for_training(model, attempt_hparams, learning_rate(hparams, steps_per_epoch, peak), towers,
                             in_step, preprocess)
        guard = CollapseGuard(probe, hparams.collapse_check_epochs)
        chance_guard = ChanceGuard(monitor_accuracy, chance, hparams.chance_patience)
        early_stopping = tf_keras.callbacks.EarlyStopping(
            monitor=monitor, patience=hparams.early_stopping_patience, restore_best_weights=True)
        history = model.fit(
            training_batches(train_ds, attempt_hparams, preprocess, int(counts.sum()), in_step),
            validation_data=validation,
            epochs=hparams.epochs, class_weight=class_weight, verbose=0,
            # the guards last: they have the final word on stop_training
            callbacks=[*callbacks, early_stopping, EpochLog(hparams.epochs, monitor, log, int(counts.sum())),
                       guard, chance_guard])
        attempts.append({"seed": seed, "learning_rate": peak, "epochs": len(history.history["loss"]),
                         "collapsed": guard.finding})
        history.attempts = attempts
        if guard.collapsed:
            log(f"collapse: {guard.finding}; the model answers one class whatever the face. "
                + (f"Restarting with seed {seed + 1000} at learning rate {peak / 2:g}."
                   if attempt < hparams.collapse_restarts else "No restarts left."))
            peak /= 2
            continue
        if chance_guard.failed:
            raise TrainingDidNotLearn(
                f"after {len(history.history['loss'])} epochs the best {monitor_accuracy} is {chance_guard.best:.4f}, "
                f"no better than always answering the most common class ({chance:.4f}): the model is not learning. "
                f"Check the labels and images (deep-emotion report), or lower the learning rate "
                f"(DEEP_EMOTION_HPARAMS='{{\"learning_rate\": {hparams.learning_rate / 5:g}}}').")
        best = int(np.argmin(history.history[monitor]))
        log(f"best epoch {best + 1}: {monitor} {history.history[monitor][best]:.4f}; weights restored")
        return history
    raise TrainingCollapsed(
        f"training collapsed in all {len(attempts)} attempts ({'; '.join(a['collapsed'] for a in attempts)}). "
        f"Try a lower learning rate (now {hparams.learning_rate:g}) or hparams lr_schedule 'warmup_cosine'.")
