"""TFX Trainer module: `run_fn` trains Deep-Emotion on Transform's output and exports the serving
SavedModel with the Transform graph baked in.

Signatures (tf.saved_model.save, explicit):
- serving_default(examples: serialized tf.Example [B]) -> probabilities [B, 7], class_id [B],
  class_name [B]. What TF Serving clients with canonical examples and TFMA call.
- serving_images(image_bytes: encoded PNG/JPEG/GIF/BMP [B], any size, gray or colour) -> the same.
  Decoded, converted to gray (ITU-R 601 luma, as Pillow's "L" in ingestion), resized to 48x48
  with antialiased bilinear (as ingestion), then the same Transform graph and model.
- transform_features(examples) -> the transformed features (what TFMA's preprocessing uses).

Beside it, tflite/model.tflite: the same Transform graph and model as TensorFlow Lite, raw `pixels`
int64 [B, 2304] -> probabilities [B, 7], for low-latency CPU inference (trainer/lite.py).
"""
import json
import os

from deep_emotion.runtime import quiet_tensorflow

quiet_tensorflow()

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras  # noqa: E402
from absl import logging  # noqa: E402

from deep_emotion import data_contract as dc  # noqa: E402
from trainer import lite  # noqa: E402
from trainer import model as deep_emotion_model  # noqa: E402
from trainer.preprocessing import IMAGE_KEY  # noqa: E402
from trainer.train import HParams, train  # noqa: E402

PROBABILITIES, CLASS_ID, CLASS_NAME = "probabilities", "class_id", "class_name"


def transformed_dataset(file_patterns, tf_transform_output) -> tf.data.Dataset:
    """Unbatched (image [48,48,1] float32, label int64) pairs from Transform's gzipped TFRecords."""
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"No transformed examples match {file_patterns}")
    spec = tf_transform_output.transformed_feature_spec()
    return (tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
            .batch(512)
            .map(lambda s: tf.io.parse_example(s, spec), num_parallel_calls=tf.data.AUTOTUNE)
            .map(lambda f: (f[IMAGE_KEY], f[dc.LABEL]))
            .unbatch())


def decode_to_pixels(encoded: tf.Tensor) -> tf.Tensor:
    """One encoded image of any size and colour -> canonical int64 pixels [2304] (as ingestion)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    gray = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))
    small = tf.image.resize(gray, [dc.IMAGE_SIZE, dc.IMAGE_SIZE], method="bilinear", antialias=True)
    return tf.reshape(tf.cast(tf.clip_by_value(tf.round(small), 0, 255), tf.int64), [dc.NUM_PIXELS])


class ServingModule(tf.Module):
    """The trained model plus the Transform graph, exported with the three signatures."""

    def __init__(self, model: tf_keras.Model, tf_transform_output: tft.TFTransformOutput):
        super().__init__()
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        self._raw_spec = tf_transform_output.raw_feature_spec()
        self._pixels_spec = {dc.PIXELS: self._raw_spec[dc.PIXELS]}  # all a client must send
        self._class_names = tf.constant(dc.EMOTIONS)

    def _probabilities(self, pixels: tf.Tensor) -> tf.Tensor:
        return self.model(self.tft_layer({dc.PIXELS: pixels})[IMAGE_KEY], training=False)

    def _predict(self, pixels: tf.Tensor) -> dict:
        probabilities = self._probabilities(pixels)
        class_id = tf.argmax(probabilities, axis=-1)
        return {PROBABILITIES: probabilities, CLASS_ID: class_id,
                CLASS_NAME: tf.gather(self._class_names, class_id)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        return self._predict(tf.io.parse_example(examples, self._pixels_spec)[dc.PIXELS])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_images(self, image_bytes):
        pixels = tf.map_fn(decode_to_pixels, image_bytes,
                           fn_output_signature=tf.TensorSpec([dc.NUM_PIXELS], tf.int64))
        return self._predict(pixels)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples):
        return self.tft_layer(tf.io.parse_example(examples, self._raw_spec))

    @tf.function(input_signature=[tf.TensorSpec([None, dc.NUM_PIXELS], tf.int64, name=dc.PIXELS)])
    def serve_pixels(self, pixels):
        """What the TFLite copy runs: no tf.Example parsing (not a TFLite built-in)."""
        return {PROBABILITIES: self._probabilities(pixels)}

    def save(self, export_dir: str) -> str:
        """The SavedModel with its three signatures, then its TFLite copy; returns the copy's path."""
        tf.saved_model.save(self, export_dir, signatures={
            "serving_default": self.serve_examples,
            "serving_images": self.serve_images,
            "transform_features": self.transform_features,
        })
        return lite.write(lite.convert(self.serve_pixels.get_concrete_function(), self), export_dir)


def _strategy() -> tf.distribute.Strategy:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        logging.info("Training on %d GPU(s) with MirroredStrategy: %s", len(gpus), [g.name for g in gpus])
        return tf.distribute.MirroredStrategy()
    logging.info("No GPU visible: training on the CPU.")
    return tf.distribute.get_strategy()


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    config = fn_args.custom_config or {}
    hparams = HParams.from_dict(config.get("hparams", {}))
    layout = config.get("layout", "paper")
    logging.info("Deep-Emotion %s layout, hyperparameters %s", layout, json.dumps(hparams.to_dict()))

    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train_ds = transformed_dataset(fn_args.train_files, tf_transform_output)
    eval_ds = transformed_dataset(fn_args.eval_files, tf_transform_output)

    with _strategy().scope():
        model = deep_emotion_model.build_model(layout, seed=hparams.seed)
    tensorboard = tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")
    history = train(model, train_ds, eval_ds, hparams, callbacks=[tensorboard], log=logging.info)

    tflite_file = ServingModule(model, tf_transform_output).save(fn_args.serving_model_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, "history.json"), "w") as f:
        json.dump({"layout": layout, "hparams": hparams.to_dict(),
                   "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}, f, indent=1)
    logging.info("Serving model written to %s (TFLite copy: %s); TensorBoard logs in %s",
                 fn_args.serving_model_dir, tflite_file, fn_args.model_run_dir)
