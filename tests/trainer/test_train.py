"""train(): overfits a small set, is deterministic, restores the best weights, takes its settings as JSON."""
import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from trainer.model import build_model
from trainer.train import (HParams, class_counts, TrainingCollapsed, TrainingDidNotLearn, WarmupCosine, balanced_class_weights,
                           class_weights_from_counts, random_affine_thetas, train, training_batches,
                           warp_for_augmentation)
from trainer.stn import spatial_transform


def dataset(images, labels):
    return tf.data.Dataset.from_tensor_slices((images, labels))


class StopAtFullAccuracy(tf_keras.callbacks.Callback):
    """Stops at the first epoch that is both 100% accurate and the best so far (the one restored)."""

    best = np.inf

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = logs["val_accuracy"] == 1.0 and logs["val_loss"] < self.best
        self.best = min(self.best, logs["val_loss"])


@pytest.mark.parametrize("layout", ["paper", "reference"])
def test_overfits_64_synthetic_faces_to_full_accuracy(layout, faces):
    images, labels = faces
    model = build_model(layout, seed=0)
    lines = []
    history = train(model, dataset(images, labels), dataset(images, labels),
                    HParams(epochs=150, augment=False, seed=0), callbacks=[StopAtFullAccuracy()], log=lines.append)
    epochs_run = len(history.history["loss"])
    assert epochs_run < 150, "did not reach 100% on its own training set"
    assert (model.predict(images, verbose=0).argmax(axis=1) == labels).mean() == 1.0
    assert len(lines) == epochs_run + 1  # one line per epoch, then the restored best
    assert lines[0].startswith("epoch 1/150  loss ") and "val_accuracy" in lines[0]


def test_a_bfloat16_model_learns_64_faces_and_its_float32_copy_knows_them_too(faces):
    from trainer.model import float32_copy  # pylint: disable=import-outside-toplevel

    images, labels = faces
    model = build_model("paper", mixed_precision="mixed_bfloat16", seed=0)
    history = train(model, dataset(images, labels), dataset(images, labels),
                    HParams(epochs=150, augment=False, seed=0), callbacks=[StopAtFullAccuracy()], log=lambda _: None)
    assert len(history.history["loss"]) < 150, "did not reach 100% on its own training set"
    assert not isinstance(model.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)  # bfloat16 needs none
    assert (float32_copy(model).predict(images, verbose=0).argmax(axis=1) == labels).mean() == 1.0


def test_same_seed_same_weights_other_seed_other_weights(faces):
    images, labels = faces

    def weights_after(seed):
        model = build_model("paper", seed=seed)
        train(model, dataset(images, labels), None, HParams(epochs=2, augment=True, seed=seed), log=lambda _: None)
        return model.get_weights()

    first, second, other = weights_after(1), weights_after(1), weights_after(2)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, c) for a, c in zip(first, other))


def test_early_stopping_leaves_the_best_weights(faces):
    """Eval labels are the training labels shifted by one, so the eval loss gets worse as the model
    learns: the best epoch is an early one, and the model must end with its weights."""
    images, labels = faces
    model = build_model("paper", seed=0)
    history = train(model, dataset(images, labels), dataset(images, (labels + 1) % 7),
                    HParams(epochs=40, early_stopping_patience=4, augment=False), log=lambda _: None)
    val_loss = history.history["val_loss"]
    assert len(val_loss) < 40 and int(np.argmin(val_loss)) < len(val_loss) - 1
    final_loss, _ = model.evaluate(images, (labels + 1) % 7, batch_size=256, verbose=0)
    assert final_loss == pytest.approx(min(val_loss), rel=1e-5)


def test_mixed_precision_model_trains_with_loss_scaling_and_class_weights(faces):
    images, labels = faces
    model = build_model("paper", mixed_precision=True, seed=0)
    lines = []
    history = train(model, dataset(images, labels), None, HParams(epochs=2, class_weights="balanced"),
                    log=lines.append)
    assert isinstance(model.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    assert np.all(np.isfinite(history.history["loss"]))
    assert lines[0].startswith("class weights (balanced): {0: 0.914, 1: 1.016")  # 64 / (7 * 10), 64 / (7 * 9)


def test_xla_compiled_training_runs_and_matches_the_plain_forward_pass(faces):
    images, labels = faces
    model = build_model("paper", seed=0)
    history = train(model, dataset(images, labels), None, HParams(epochs=2, jit_compile=True), log=lambda _: None)
    assert np.all(np.isfinite(history.history["loss"]))
    compiled = tf.function(lambda x: model(x, training=False), jit_compile=True)
    np.testing.assert_allclose(compiled(images), model(images, training=False), atol=1e-5)


def test_batched_or_misshapen_input_is_refused_with_the_spec(faces):
    images, labels = faces
    with pytest.raises(ValueError, match=r"unbatched .*TensorSpec\(shape=\(None, 48, 48, 1\)"):
        train(build_model(), dataset(images, labels).batch(8), None, HParams(epochs=1))
    with pytest.raises(ValueError, match=r"eval_ds must hold unbatched"):
        train(build_model(), dataset(images, labels), dataset(images[:, :40], labels), HParams(epochs=1))


def test_balanced_class_weights_are_inverse_frequencies():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 3, np.int64)
    weights = balanced_class_weights(dataset(np.zeros((12, 48, 48, 1), np.float32), labels), num_classes=4)
    assert weights == {0: pytest.approx(0.5), 1: pytest.approx(1.0), 2: pytest.approx(1.0), 3: 1.0}


def test_hparams_travel_as_json_and_refuse_unknown_keys():
    hparams = HParams(learning_rate=0.001, batch_size=128, class_weights={0: 2.0, 3: 0.5}, augment=False)
    assert HParams.from_dict(json.loads(json.dumps(hparams.to_dict()))) == hparams
    assert HParams.from_dict({}) == HParams() and HParams().learning_rate == 0.005
    assert (HParams().batch_size, HParams().epochs) == (32, 500)
    with pytest.raises(ValueError, match=r"unknown keys \['learning_rte'\]"):
        HParams.from_dict({"learning_rte": 0.1})
    with pytest.raises(ValueError, match="class_weights must be"):
        HParams.from_dict({"class_weights": "inverse"})
    with pytest.raises(ValueError, match="precision must be one of"):
        HParams.from_dict({"precision": "bf16"})


def test_the_augmentation_warp_is_the_spatial_transformer_s_bit_for_bit(faces):
    images = tf.constant(faces[0][:32])
    thetas = random_affine_thetas(32, tf.constant([3, 4], tf.int64), HParams())  # rotations, shifts, mirrors
    warped, exact = warp_for_augmentation(images, thetas).numpy(), spatial_transform(images, thetas).numpy()
    assert warped.shape == exact.shape == images.shape and warped.dtype == np.float32
    assert np.ptp(warped) > 1.0 and not np.array_equal(warped, images.numpy())
    np.testing.assert_array_equal(warped, exact)
    # Whole-pixel moves and mirrors; what comes from outside is zero; a diverged theta (NaN, inf)
    # is sent outside as the sampler sends it.
    moves = tf.constant([[1.0, 0, 2 * 3 / 48, 0, 1, 0], [-1.0, 0, 0, 0, 1, -2 * 5 / 48], [1.0, 0, 1.0, 0, 1, 0],
                         [np.nan, 0, 0, 0, 1, 0], [1.0, np.inf, 0, 0, 1, 0], [0.5, 0.2, 0.1, -np.inf, 0.9, 0.3]])
    images = images[:6]
    np.testing.assert_array_equal(warp_for_augmentation(images, moves).numpy(), spatial_transform(images, moves).numpy())
    assert not warp_for_augmentation(images, moves).numpy()[2, :, 24:].any()  # half the width moved in from outside
    # Several channels, each warped alike; other input dtypes come back as float32.
    rgb = tf.concat([images, 2 * images, -images], axis=3)
    np.testing.assert_array_equal(warp_for_augmentation(rgb, moves).numpy(), spatial_transform(rgb, moves).numpy())
    assert warp_for_augmentation(tf.cast(images, tf.bfloat16), moves).dtype == tf.float32
    # In tf.data, batch by batch, as training_batches runs it.
    batches = tf.data.Dataset.from_tensor_slices(faces[0][:64]).batch(16).map(
        lambda batch: warp_for_augmentation(batch, random_affine_thetas(tf.shape(batch)[0], tf.constant([1, 2], tf.int64),
                                                                        HParams())), num_parallel_calls=2)
    assert [b.shape[0] for b in batches] == [16, 16, 16, 16]


def test_augmentation_stays_within_its_ranges_and_is_off_at_zero():
    hparams = HParams(max_shift_pixels=3.0, max_rotation_degrees=10.0, horizontal_flip=True)
    theta = random_affine_thetas(1000, tf.constant([4, 2], tf.int64), hparams).numpy()
    angle = np.arctan2(theta[:, 3], theta[:, 4])
    assert np.abs(angle).max() <= np.radians(10) + 1e-6 and np.abs(angle).max() > np.radians(9)
    assert np.abs(theta[:, [2, 5]]).max() <= 2 * 3 / 48 + 1e-6
    mirrored = np.mean(theta[:, 0] * theta[:, 4] < 0)  # a flip makes the determinant negative
    assert 0.4 < mirrored < 0.6

    still = HParams(max_shift_pixels=0, max_rotation_degrees=0, horizontal_flip=False, shuffle_buffer=1)
    images = np.random.default_rng(0).normal(size=(8, 48, 48, 1)).astype(np.float32)
    batch, _ = next(iter(training_batches(dataset(images, np.zeros(8, np.int64)), still)))
    np.testing.assert_array_equal(batch.numpy(), images)


def _collapsed(model):
    """Sends the localisation head's theta far outside the image: the sampler reads only padding,
    theta's gradient is exactly zero and the classifier sees a constant input (the absorbing state
    Adam's first steps can reach on their own, see trainer/train.py)."""
    theta = model.get_layer("theta")
    kernel, _ = theta.get_weights()
    theta.set_weights([kernel, np.array([1.0, 0.0, 9.0, 0.0, 1.0, 9.0], np.float32)])
    return model


def test_a_collapsed_start_is_caught_after_one_epoch_and_restarted_into_a_model_that_learns(faces):
    images, labels = faces
    model = _collapsed(build_model("paper", seed=0))
    lines = []
    history = train(model, dataset(images, labels), dataset(images, labels),
                    HParams(epochs=150, augment=False, seed=0), callbacks=[StopAtFullAccuracy()], log=lines.append)
    first, second = history.attempts
    assert first["collapsed"] and first["epochs"] == 1 and "max |theta| 9" in first["collapsed"]
    assert (second["seed"], second["learning_rate"], second["collapsed"]) == (1000, 0.0025, None)
    assert any(line.startswith("collapse: after epoch 1, 100% of the sample gets class") for line in lines)
    assert (model.predict(images, verbose=0).argmax(axis=1) == labels).mean() == 1.0


def test_a_collapse_with_no_restart_left_fails_at_once_saying_what_was_seen(faces):
    images, labels = faces
    with pytest.raises(TrainingCollapsed, match=r"collapsed in all 1 attempts \(after epoch 1, 100% of the sample"):
        train(_collapsed(build_model("paper", seed=0)), dataset(images, labels), dataset(images, labels),
              HParams(epochs=500, augment=False, collapse_restarts=0), log=lambda _: None)


def test_a_model_that_cannot_learn_fails_early_instead_of_training_for_its_epochs(faces):
    """Blank faces hold nothing to learn: the eval accuracy stays at the majority class's share. (The
    collapse check is off: an input-independent answer is what it would catch first.)"""
    _, labels = faces
    labels = np.where(np.arange(64) < 20, 0, labels)  # class 0 is the majority in train and in eval
    blank = np.zeros((64, 48, 48, 1), np.float32)
    with pytest.raises(TrainingDidNotLearn, match=r"after 6 epochs the best val_accuracy is 0\.\d+, no better than "
                                                  r"always answering the most common class \(0\.\d+\)"):
        train(build_model("paper", seed=0), dataset(blank, labels), dataset(blank, labels),
              HParams(epochs=500, augment=False, chance_patience=6, early_stopping_patience=100,
                      collapse_check_epochs=0), log=lambda _: None)


def test_warmup_cosine_rises_linearly_then_decays_to_zero():
    schedule = WarmupCosine(0.005, warmup_steps=10, total_steps=110)
    rates = [float(schedule(step)) for step in range(110)]
    assert rates[0] == pytest.approx(0.0005) and rates[9] == pytest.approx(0.005)
    assert rates[59] == pytest.approx(0.0025, rel=0.05) and rates[109] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))


def test_sqrt_balanced_weights_are_the_square_root_of_balanced():
    counts = np.array([600, 15, 300, 0])
    balanced = class_weights_from_counts(counts, "balanced")
    assert class_weights_from_counts(counts, "sqrt_balanced") == {
        c: pytest.approx(w ** 0.5) for c, w in balanced.items()}
    assert balanced[1] == pytest.approx(915 / (4 * 15)) and balanced[3] == 1.0


def test_soft_labels_train_on_the_vote_shares(faces):
    """FER+ mode: the target is a distribution; the model learns its most voted class."""
    images, labels = faces
    shares = 0.7 * np.eye(7, dtype=np.float32)[labels] + 0.3 / 7
    model = build_model("paper", seed=0)
    history = train(model, dataset(images, shares), dataset(images, shares),
                    HParams(epochs=150, augment=False, soft_labels=True), callbacks=[StopAtFullAccuracy()],
                    log=lambda _: None)
    assert len(history.history["loss"]) < 150
    assert isinstance(model.loss, tf_keras.losses.CategoricalCrossentropy)
    assert (model.predict(images, verbose=0).argmax(axis=1) == labels).mean() == 1.0


@pytest.mark.parametrize("layout", ["paper", "reference"])
def test_several_steps_per_execution_train_the_same_weights_as_one(layout, faces):
    """steps_per_execution only changes how often fit() returns to Python: on fixed weights and data
    (no dropout, no augmentation, no shuffle) 2 epochs of 5 batches give the same weights, to float noise, as
    one step per call, for both layouts."""
    from trainer.train import compile_for_training

    images, labels = faces
    batches = dataset(images[:40], labels[:40]).batch(8)
    trained = []
    for steps in (1, 4):  # 5 batches: one full execution of 4 and a partial one
        model = build_model(layout, dropout_rate=0.0, seed=0)
        compile_for_training(model, HParams(steps_per_execution=steps, learning_rate=0.001))
        model.fit(batches, epochs=2, verbose=0)
        trained.append(model.get_weights())
    for one, several in zip(*trained):
        np.testing.assert_allclose(several, one, rtol=1e-4, atol=1e-5)


def test_splits_of_unknown_size_train_with_several_steps_per_execution(faces):
    """TFRecord splits have no known size in tf.data (a filter here makes it so); with steps_per_execution
    > 1 Keras refuses such data unless train() states the sizes it counted: 2 epochs run, both splits."""
    images, labels = faces
    unknown = dataset(images, labels).filter(lambda image, label: True)
    assert unknown.cardinality() == tf.data.UNKNOWN_CARDINALITY
    model = build_model("paper", seed=0)
    history = train(model, unknown, unknown, HParams(epochs=2, augment=False, steps_per_execution=8, batch_size=16),
                    log=lambda _: None)
    assert len(history.history["loss"]) == len(history.history["val_loss"]) == 2


@pytest.mark.parametrize("cache_memory_mb", [256, 0])  # kept in memory too / the cache file only
def test_the_training_split_is_read_from_its_source_once_and_its_cache_file_removed(
        faces, tmp_path, monkeypatch, cache_memory_mb):
    """Counting the classes and every epoch after it read one pass of the source (the Trainer's
    gzipped TFRecords are the slowest part of an epoch to read); the cache is gone afterwards."""
    import tempfile  # pylint: disable=import-outside-toplevel

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    images, labels = faces
    reads = []

    def counted(image, label):
        def count(x):
            reads.append(1)
            return x
        return tf.ensure_shape(tf.py_function(count, [image], tf.float32), image.shape), label

    model = build_model("paper", seed=0)
    history = train(model, dataset(images, labels).map(counted), None,
                    HParams(epochs=3, augment=False, cache_memory_mb=cache_memory_mb, chance_patience=0),
                    log=lambda _: None)
    assert len(history.history["loss"]) == 3
    assert len(reads) == len(images)
    assert not list(tmp_path.glob("deep-emotion-cache-*"))


def test_class_counts_are_exact_across_batches_for_hard_and_soft_labels():
    labels = np.random.default_rng(0).integers(0, 7, 9_001)  # two full counting batches and a partial one
    expected = np.bincount(labels, minlength=7)
    images = tf.zeros([len(labels), 2], tf.uint8)
    hard = tf.data.Dataset.from_tensor_slices((images, labels))
    shares = np.eye(7, dtype=np.float32)[labels] * 0.6 + 0.4 / 7  # the labelled class has the largest share
    soft = tf.data.Dataset.from_tensor_slices((images, shares))
    np.testing.assert_array_equal(class_counts(hard, 7), expected)
    np.testing.assert_array_equal(class_counts(soft, 7), expected)


@pytest.mark.parametrize("precision,class_weights,soft", [("float32", "balanced", False),
                                                          ("mixed_float16", None, True)])
def test_the_batch_split_into_slices_trains_the_weights_and_reports_the_loss_of_the_whole_batch(
        precision, class_weights, soft, faces):
    """data_parallel_train_step is Keras's step computed in slices: on fixed weights and data (no dropout,
    no shuffle) 2 epochs of batches of 19, 19 and 2 faces give the same weights and the same reported loss
    and accuracy, to float noise, split in 1, 2 or 3 slices, with class weights, vote shares and loss scaling
    too. The last batch (2 faces) is smaller than 3 slices: it trains all the same."""
    from trainer.train import compile_for_training

    images, labels = faces
    targets = tf.one_hot(labels, 7).numpy() * 0.8 + 0.2 / 7 if soft else labels
    batches = dataset(images[:40], targets[:40]).batch(19)
    hparams = HParams(steps_per_execution=2, learning_rate=0.001, soft_labels=soft)
    weights = {c: 1.0 + c / 4 for c in range(7)} if class_weights else None
    trained = {}
    for towers in (1, 2, 3):
        model = build_model("paper", dropout_rate=0.0, seed=0, mixed_precision=precision)
        compile_for_training(model, hparams, towers=towers)
        history = model.fit(batches, epochs=2, verbose=0, class_weight=weights)
        trained[towers] = model.get_weights(), history.history
    one_weights, one_history = trained[1]
    initial = build_model("paper", dropout_rate=0.0, seed=0, mixed_precision=precision).get_weights()
    for towers in (2, 3):
        if precision == "mixed_float16":  # float16 rounds otherwise in slices, and Adam's first steps magnify it:
            moved = [np.concatenate([(w - s).ravel() for w, s in zip(ws, initial)])  # the same update, nearly
                     for ws in (one_weights, trained[towers][0])]
            assert np.dot(*moved) / np.linalg.norm(moved[0]) / np.linalg.norm(moved[1]) > 0.95
        else:
            for one, sliced in zip(one_weights, trained[towers][0]):
                np.testing.assert_allclose(sliced, one, rtol=1e-4, atol=1e-5)
        for key in ("loss", "accuracy"):
            np.testing.assert_allclose(trained[towers][1][key], one_history[key], rtol=1e-3)
    assert one_history["loss"][1] < one_history["loss"][0]  # it trained


def test_batches_are_split_one_slice_per_core_on_a_cpu_and_as_asked(monkeypatch):
    import trainer.train as train_module

    monkeypatch.setattr(train_module, "cpu_cores", lambda: 2)
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: 0)
    assert train_module.training_towers(HParams(batch_size=128)) == 1  # TensorFlow's default threads
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: 1)  # one per op
    assert train_module.training_towers(HParams(batch_size=128)) == 2
    assert train_module.training_towers(HParams(batch_size=16)) == 1  # slices of 8 are not worth it
    assert train_module.training_towers(HParams(batch_size=128, cpu_towers=1)) == 1
    assert train_module.training_towers(HParams(batch_size=128, cpu_towers=4)) == 4
    monkeypatch.setattr(train_module, "cpu_cores", lambda: 16)
    assert train_module.training_towers(HParams(batch_size=128)) == 8
    with pytest.raises(ValueError, match="cpu_towers must be >= 0"):
        train_module.training_towers(HParams(cpu_towers=-1))


def test_slices_that_preprocess_and_augment_inside_the_step_train_as_the_input_pipeline_would(faces):
    """With preprocessing and augmentation in the step (each slice normalises and augments its own faces):
    raw pixels normalised in the step train exactly as when the input pipeline normalises them, an
    augmentation that moves nothing trains exactly as none, and the real one is reproducible from the
    seed and trains other weights."""
    from trainer.train import compile_for_training

    images, labels = faces
    pixels = np.clip(np.rint(images[:40] * 40 + 128), 0, 255).astype(np.uint8)

    def preprocess(raw):
        return (tf.cast(raw, tf.float32) - 128.0) / 40.0

    still = HParams(steps_per_execution=2, learning_rate=0.001, max_shift_pixels=0, max_rotation_degrees=0,
                    horizontal_flip=False)

    def fit(hparams, in_step):
        batches = dataset(pixels, labels[:40]).batch(20)
        if not in_step:
            batches = batches.map(lambda raw, label: (preprocess(raw), label))
        model = build_model("paper", dropout_rate=0.0, seed=0)
        compile_for_training(model, hparams, towers=2, in_step=in_step, preprocess=preprocess)
        model.fit(batches, epochs=2, verbose=0)
        return np.concatenate([w.ravel() for w in model.get_weights()])

    plain = fit(still, False)
    np.testing.assert_allclose(fit(still, True), plain, rtol=1e-5, atol=1e-6)
    moving = HParams(**{**still.to_dict(), "max_shift_pixels": 3.0, "max_rotation_degrees": 10.0,
                        "horizontal_flip": True})
    augmented = fit(moving, True)
    np.testing.assert_allclose(fit(moving, True), augmented, rtol=1e-5, atol=1e-6)
    assert np.abs(plain - augmented).max() > 1e-3
