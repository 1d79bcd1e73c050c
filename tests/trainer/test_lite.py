"""trainer/lite.py: the TFLite copy answers as the Keras model does, at any batch size."""
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from contract.runtime import native_stderr_without
from trainer import lite
from trainer.model import build_model

# A theta head that rotates, zooms and shifts: the copy must reproduce the sampler, not an identity.
WARP = np.array([0.9, -0.2, 0.1, 0.25, 0.85, -0.05], np.float32)


@pytest.mark.parametrize("layout", ["paper", "reference"])
def test_tflite_copy_matches_the_keras_model_with_a_warping_transformer(layout, faces):
    model = build_model(layout, seed=0)
    theta = model.get_layer("theta")
    theta.set_weights([theta.get_weights()[0], WARP])
    serve = tf.function(lambda image: model(image, training=False)).get_concrete_function(
        tf.TensorSpec([None, 48, 48, 1], tf.float32))
    lite_model = lite.LiteModel(lite.convert(serve, model), num_threads=1)
    images = faces[0]
    expected = model(images, training=False).numpy()
    np.testing.assert_allclose(lite_model(images[:7]), expected[:7], atol=1e-5)
    np.testing.assert_allclose(lite_model(images[7:8]), expected[7:8], atol=1e-5)
    np.testing.assert_allclose(lite_model(images), expected, atol=1e-5)


def test_the_copy_written_beside_a_savedmodel_is_the_one_loaded_from_there(tmp_path, faces):
    model = build_model("paper", seed=1)
    serve = tf.function(lambda image: model(image, training=False)).get_concrete_function(
        tf.TensorSpec([None, 48, 48, 1], tf.float32))
    written = lite.write(lite.convert(serve, model), str(tmp_path / "1700000000"))
    assert written == lite.tflite_path(str(tmp_path / "1700000000"))
    loaded = lite.LiteModel(lite.tflite_path(str(tmp_path / "1700000000")), num_threads=1)
    np.testing.assert_allclose(loaded(faces[0][:4]), model(faces[0][:4], training=False).numpy(), atol=1e-5)


def test_tflite_chatter_is_dropped_and_every_other_native_stderr_line_kept(capfd):
    with native_stderr_without("Created TensorFlow Lite XNNPACK delegate"):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"E0000 converter: a real error\n")
        print("python-level warning", file=sys.stderr)
    # (under pytest sys.stderr is not file descriptor 2, so only the set of lines is compared)
    assert sorted(capfd.readouterr().err.splitlines()) == ["E0000 converter: a real error", "python-level warning"]
