"""A TensorFlow Lite copy of the served model, for low-latency inference on CPUs.

Why: through a SavedModel signature one image costs ~0.9 ms on these 2-core machines, most of it
TensorFlow's per-call and per-op overhead (~0.26 ms a call, ~100 small ops), not arithmetic.
The same graph converted to TFLite and run by its XNNPACK delegate answers in ~0.1 ms and is
also faster at batch 128 (bench/model.py measures both). Conversion is float32 with no
quantisation, so its probabilities equal the SavedModel's to ~1e-6 (tested); nothing is
re-implemented: TensorFlow's converter lowers our own graph, the spatial transformer included
(its gathers are TFLite built-ins).

The Trainer writes it beside the SavedModel as `tflite/model.tflite` (TF Serving ignores the
folder; the Pusher ships it with the version). Its one signature, `serving_default`, takes the
data contract's raw `pixels` (int64 [B, 2304], 0-255, row-major 48x48) and returns
`probabilities` [B, 7] in contract.data.EMOTIONS order: the Transform graph is inside, as in
the SavedModel.
"""
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from contract.runtime import native_stderr_without
from trainer.model import without_layer_traces

TFLITE_DIR = "tflite"
TFLITE_FILE = "model.tflite"
# What TFLite's C++ side prints on every healthy conversion or interpreter start.
_TFLITE_NOISE = ("All log messages before absl::InitializeLog()", "Ignored output_format.",
                 "Ignored drop_control_dependency.", "Created TensorFlow Lite XNNPACK delegate")


def tflite_path(serving_model_dir: str) -> str:
    """Where the Trainer writes the TFLite model inside a serving model directory."""
    return os.path.join(serving_model_dir, TFLITE_DIR, TFLITE_FILE)


def convert(function: tf.types.experimental.ConcreteFunction, trackable=None) -> bytes:
    """TFLite flatbuffer of a concrete function: float32, TFLite built-in ops only.

    Built-ins only (no Flex/SELECT_TF_OPS), so any TFLite runtime runs it, and the conversion
    fails loudly if a future change brings in an op TFLite lacks.
    """
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], trackable)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    # The converter saves `trackable` as a SavedModel first: without Keras's layer traces, 2.5x faster.
    with native_stderr_without(*_TFLITE_NOISE), without_layer_traces():
        return converter.convert()


def write(flatbuffer: bytes, serving_model_dir: str) -> str:
    """Write the flatbuffer to tflite_path(serving_model_dir) and return that path."""
    path = tflite_path(serving_model_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(flatbuffer)
    return path


class LiteModel:
    """Runs a TFLite model with one input and one output, any batch size.

    `LiteModel(path_or_bytes)(batch)` -> numpy output. Resizes the input only when the batch
    size changes, so repeated calls at one size cost one invoke.
    """

    def __init__(self, model: "str | bytes", num_threads: Optional[int] = None):
        source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": model}
        with native_stderr_without(*_TFLITE_NOISE):
            self.interpreter = tf.lite.Interpreter(**source, num_threads=num_threads)
            self.interpreter.allocate_tensors()  # XNNPACK announces itself here
        (self._input,), (self._output,) = (self.interpreter.get_input_details(),
                                           self.interpreter.get_output_details())
        self._batch_size = None

    @property
    def input_dtype(self):
        return self._input["dtype"]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=self._input["dtype"])
        if batch.shape[0] != self._batch_size:
            self.interpreter.resize_tensor_input(self._input["index"], batch.shape)
            self.interpreter.allocate_tensors()
            self._batch_size = batch.shape[0]
        self.interpreter.set_tensor(self._input["index"], batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"])
