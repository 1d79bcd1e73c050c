"""build_model: the two layouts' sizes, outputs, starting point, gradients and SavedModel export."""
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from trainer import model as model_lib
from trainer.model import (LinearConvPair, attention_model, build_model, float32_copy, trainable_parameters,
                           training_precision)

LAYOUTS = {"paper": 47_657, "reference": 66_877}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def model(request):
    return build_model(request.param, seed=0)


def test_trainable_parameter_counts_match_the_layouts(model):
    layout = model.name.removeprefix("deep_emotion_")
    assert trainable_parameters(model) == LAYOUTS[layout]


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="layout must be one of"):
        build_model("resnet")


def test_output_is_float32_probabilities(model, faces):
    probabilities = model(faces[0][:5]).numpy()
    assert probabilities.shape == (5, 7) and probabilities.dtype == np.float32
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mixed_precision_computes_in_float16_and_still_returns_float32_probabilities(layout, faces):
    model = build_model(layout, mixed_precision=True, seed=0)
    assert model.get_layer("conv3").compute_dtype == "float16"
    assert model.get_layer("theta").compute_dtype == "float32"
    probabilities = model(faces[0][:3]).numpy()
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    assert tf_keras.mixed_precision.global_policy().name == "float32"  # left as it was


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_bfloat16_model_is_served_by_a_float32_copy_that_answers_as_float32_layers(layout, faces):
    """Training may run in bfloat16; what is exported and calibrated is float32 with the same weights:
    its answers are those of the float32 layers, not bfloat16's (which differ by ~1e-2)."""
    trained = build_model(layout, mixed_precision="mixed_bfloat16", seed=0)
    assert trained.get_layer("conv3").compute_dtype == "bfloat16"
    assert trained.get_layer("theta").compute_dtype == trained.get_layer("attention").compute_dtype == "float32"
    reference = build_model(layout, mixed_precision=False, seed=1)
    reference.set_weights(trained.get_weights())
    copy = float32_copy(trained)
    assert copy.dtype_policy.name == "float32" and copy.get_layer("conv3").compute_dtype == "float32"
    images = faces[0]
    np.testing.assert_allclose(copy(images).numpy(), reference(images).numpy(), rtol=0, atol=1e-6)
    bfloat16 = trained(images).numpy()
    assert bfloat16.dtype == np.float32 and 1e-5 < np.abs(bfloat16 - reference(images).numpy()).max() < 0.05
    assert float32_copy(reference) is reference
    assert tf_keras.mixed_precision.global_policy().name == "float32"  # left as it was


def test_paper_dropout_runs_in_float32_under_bfloat16_and_still_drops_half():
    """The transformer after it computes in float32, and TensorFlow's CPU kernels for dropout's ops
    are slower in bfloat16 (trainer/model.py). Same rate, same scaling: half the features kept, doubled."""
    model = build_model("paper", mixed_precision="mixed_bfloat16", seed=0)
    dropout = model.get_layer("dropout")
    assert dropout.compute_dtype == "float32" and model.get_layer("conv4").compute_dtype == "bfloat16"
    dropped = dropout(tf.ones([64, 9, 9, 10], tf.bfloat16), training=True).numpy()
    assert dropped.dtype == np.float32 and set(np.unique(dropped)) == {0.0, 2.0}
    assert 0.48 < (dropped > 0).mean() < 0.52
    assert tf_keras.mixed_precision.global_policy().name == "float32"  # left as it was


def test_bfloat16_is_the_cpu_default_where_native_and_warned_about_where_the_cpu_only_emulates_it(
        tmp_path, monkeypatch):
    with_bf16, without = tmp_path / "zen4", tmp_path / "older"
    with_bf16.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor : 0\nflags : fpu sse2 avx2 fma avx512f\n")
    assert model_lib.native_bfloat16_cpu(str(with_bf16)) and not model_lib.native_bfloat16_cpu(str(without))
    assert not model_lib.native_bfloat16_cpu(str(tmp_path / "absent"))
    assert not tf.config.list_physical_devices("GPU")
    monkeypatch.setattr(model_lib, "native_bfloat16_cpu", lambda: False)
    assert training_precision("auto") == training_precision("float32") == "float32"
    with pytest.warns(RuntimeWarning, match="emulates it"):
        assert training_precision("mixed_bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(model_lib, "native_bfloat16_cpu", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert training_precision("mixed_bfloat16") == training_precision("auto") == "mixed_bfloat16"
    assert training_precision("float32") == "float32"  # asked for: taken as asked
    with pytest.raises(ValueError, match="precision must be one of"):
        training_precision("float64")


def test_transformer_starts_at_the_identity(model, faces):
    images = faces[0][:4]
    np.testing.assert_array_equal(attention_model(model, "theta")(images), np.tile([1.0, 0, 0, 0, 1, 0], (4, 1)))
    np.testing.assert_array_equal(attention_model(model, "input")(images), images)
    sampled = model.get_layer("attention").input[0]  # what the sampler is given
    before = tf_keras.Model(model.input, sampled)(images)
    np.testing.assert_array_equal(attention_model(model, "features")(images), before)
    assert attention_model(model, "features").output_shape == (
        (None, 9, 9, 10) if model.name.endswith("paper") else (None, 48, 48, 1))


def test_attention_view_follows_theta(model, faces):
    """With a mirroring theta head, the input view is the mirrored face."""
    view = attention_model(model, "input")
    theta_layer = model.get_layer("theta")
    kernel, bias = theta_layer.get_weights()
    theta_layer.set_weights([kernel, np.array([-1.0, 0, 0, 0, 1, 0], np.float32)])
    try:
        np.testing.assert_array_equal(view(faces[0][:2]), faces[0][:2, :, ::-1])
    finally:
        theta_layer.set_weights([kernel, bias])


def test_attention_model_refuses_unknown_views(model):
    with pytest.raises(ValueError, match="view must be"):
        attention_model(model, "saliency")


def test_paper_conv_pair_computes_conv2_of_conv1():
    pair = LinearConvPair(10, 10)
    images = tf.random.stateless_normal([2, 48, 48, 1], seed=[1, 2])
    pair(images)
    for weight in pair.weights:  # non-zero biases too
        weight.assign(tf.random.stateless_normal(weight.shape, seed=[3, weight.shape.num_elements()]))
    expected = pair.conv2(pair.conv1(images))
    np.testing.assert_allclose(pair(images), expected, rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(expected))))
    assert [w.name for w in pair.weights] == ["linear_conv_pair/conv1/kernel:0", "linear_conv_pair/conv1/bias:0",
                                              "linear_conv_pair/conv2/kernel:0", "linear_conv_pair/conv2/bias:0"]


def test_dropout_is_off_at_inference(model, faces):
    images = faces[0][:8]
    np.testing.assert_array_equal(model(images, training=False), model(images, training=False))
    assert not np.array_equal(model(images, training=True), model(images, training=True))


def test_gradients_reach_theta_and_every_localisation_weight(model, faces):
    """At the start the theta head's zero kernel blocks the gradient to the localisation net (by
    design: it starts at the identity), so give that kernel small values first."""
    images, labels = faces[0][:16], faces[1][:16]
    theta_layer = model.get_layer("theta")
    kernel, bias = theta_layer.get_weights()
    loss_fn = tf_keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(images, training=True))
    gradients = dict(zip([v.name for v in model.trainable_weights], tape.gradient(loss, model.trainable_weights)))
    assert np.abs(gradients["theta/bias:0"]).max() > 0 and np.abs(gradients["theta/kernel:0"]).max() > 0

    theta_layer.set_weights([np.random.default_rng(0).normal(0, 0.05, kernel.shape).astype(np.float32), bias])
    try:
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        gradients = tape.gradient(loss, model.trainable_weights)
    finally:
        theta_layer.set_weights([kernel, bias])
    for variable, gradient in zip(model.trainable_weights, gradients):
        assert gradient is not None and np.abs(gradient).max() > 0, variable.name
        assert np.all(np.isfinite(gradient)), variable.name


def test_saved_model_round_trip_gives_identical_predictions(model, faces, tmp_path):
    signature = tf.function(lambda image: {"probabilities": model(image, training=False)},
                            input_signature=[tf.TensorSpec([None, 48, 48, 1], tf.float32, name="image")])
    tf.saved_model.save(model, str(tmp_path), signatures={"serving_default": signature})
    loaded = tf.saved_model.load(str(tmp_path))
    images = faces[0][:10]
    served = loaded.signatures["serving_default"](image=tf.constant(images))["probabilities"]
    np.testing.assert_array_equal(served.numpy(), model.predict(images, verbose=0))


def test_keras_config_round_trip_rebuilds_the_same_model(model, faces):
    clone = tf_keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert trainable_parameters(clone) == trainable_parameters(model)
    np.testing.assert_array_equal(clone(faces[0][:4]), model(faces[0][:4]))
