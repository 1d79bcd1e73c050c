"""train(): overfits a small set, is deterministic, restores the best weights, takes its settings as JSON."""
import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from trainer.model import build_model
from trainer.train import HParams, balanced_class_weights, random_affine_thetas, train, training_batches


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
