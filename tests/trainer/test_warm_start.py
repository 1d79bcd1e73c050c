"""Warm start: the Trainer starts from an exported model's weights, or fresh, and says which."""
import contextlib
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from trainer import model as deep_emotion_model
from trainer.task import warm_start_from


def _export(tmp_path, layout, seed, layer_traces=False):
    """A SavedModel holding the model's variables under `model`, as trainer/export.py's ServingModule
    saves it (without Keras's layer traces), or as exports before 2026-12-07 did (layer_traces=True)."""
    module = tf.Module()
    module.model = deep_emotion_model.build_model(layout, seed=seed, mixed_precision=False)
    path = str(tmp_path / f"{layout}-{seed}-{layer_traces}")
    with contextlib.nullcontext() if layer_traces else deep_emotion_model.without_layer_traces():
        tf.saved_model.save(module, path)
    return path, module.model


def _function_names(path):
    saved = saved_model_pb2.SavedModel.FromString(open(os.path.join(path, "saved_model.pb"), "rb").read())
    return [f.signature.name for f in saved.meta_graphs[0].graph_def.library.function]


@pytest.mark.parametrize("layer_traces", [False, True], ids=["export", "export-with-keras-layer-traces"])
def test_a_model_of_the_same_layout_is_started_from_its_weights(tmp_path, layer_traces):
    path, exported = _export(tmp_path, "paper", seed=1, layer_traces=layer_traces)
    # Keras's per-layer traces are what the export leaves out (half its time); the weights are all there.
    assert any("call_and_return_conditional_losses" in f for f in _function_names(path)) == layer_traces
    fresh = deep_emotion_model.build_model("paper", seed=2, mixed_precision=False)
    assert not np.allclose(fresh.get_weights()[0], exported.get_weights()[0])
    assert warm_start_from(fresh, path) == {"from": path, "used": True}
    for got, expected in zip(fresh.get_weights(), exported.get_weights()):
        np.testing.assert_array_equal(got, expected)


def test_no_model_or_one_of_another_layout_means_a_fresh_start_and_says_why(tmp_path):
    path, _ = _export(tmp_path, "reference", seed=1)
    fresh = deep_emotion_model.build_model("paper", seed=2, mixed_precision=False)
    before = [w.copy() for w in fresh.get_weights()]
    record = warm_start_from(fresh, path)
    assert record["used"] is False and "does not fit this layout" in record["why"]
    assert warm_start_from(fresh, None) == {"from": None, "used": False, "why": "no earlier model"}
    (tmp_path / "empty").mkdir()  # the empty artifact ServedModel hands over when no version is chosen
    assert "holds no exported model" in warm_start_from(fresh, str(tmp_path / "empty"))["why"]
    for got, expected in zip(fresh.get_weights(), before):
        np.testing.assert_array_equal(got, expected)
