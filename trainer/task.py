"""TFX Trainer module: `run_fn` trains Deep-Emotion on Transform's output and exports the serving
SavedModel with the Transform graph baked in (trainer/export.py: its signatures and TFLite copy).
"""
import json

from contract.runtime import one_thread_per_op, quiet_tensorflow

quiet_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras  # noqa: E402
from absl import logging  # noqa: E402

from contract import data as dc  # noqa: E402
from contract import training_record  # noqa: E402
from trainer import calibration, export  # noqa: E402
from trainer import model as deep_emotion_model  # noqa: E402
from trainer.preprocessing import IMAGE_KEY, label_shares  # noqa: E402
from trainer.train import HParams, train, training_towers  # noqa: E402


def raw_dataset(file_patterns, tf_transform_output, target: str = dc.LABEL) -> tf.data.Dataset:
    """Unbatched (pixels uint8 [48, 48, 1], target) pairs from ExampleGen's gzipped TFRecords: the
    label (int64) or, with target=dc.LABEL_SHARES, the label distribution (float32 [7]).

    Transform does not materialise its output (pipeline.py): the Trainer reads the raw examples,
    caches them raw (a quarter of the floats' size) and applies Transform's graph batch by batch
    (preprocess_fn), the same graph the served model applies.
    """
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"No examples match {file_patterns}")
    spec = {k: v for k, v in tf_transform_output.raw_feature_spec().items() if k in (dc.PIXELS, dc.LABEL,
                                                                                     dc.LABEL_SHARES)}

    def parse(serialized):
        features = tf.io.parse_example(serialized, spec)
        pixels = tf.reshape(tf.cast(features[dc.PIXELS], tf.uint8), [-1, dc.IMAGE_SIZE, dc.IMAGE_SIZE, 1])
        label = tf.reshape(features[dc.LABEL], [-1])
        if target == dc.LABEL_SHARES:
            return pixels, label_shares(label, features.get(dc.LABEL_SHARES))
        return pixels, label

    return (tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
            .batch(512)
            .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch())


def preprocess_fn(tf_transform_output):
    """uint8 [B, 48, 48, 1] -> Transform's output image [B, 48, 48, 1] (its graph, not a copy)."""
    layer = tf_transform_output.transform_features_layer()

    def preprocess(images):
        pixels = tf.reshape(tf.cast(images, tf.int64), [-1, dc.NUM_PIXELS])
        return layer({dc.PIXELS: pixels})[IMAGE_KEY]

    return preprocess


def calibrate(model, eval_ds: tf.data.Dataset, hparams: HParams, preprocess, log=logging.info) -> dict:
    """Temperature and abstention threshold fitted on eval (trainer/calibration.py), as recorded."""
    logits_model = deep_emotion_model.logits_model(model)
    logits, labels = [], []
    for images, batch_labels in eval_ds.batch(hparams.eval_batch_size):
        logits.append(logits_model(preprocess(images), training=False).numpy())
        labels.append(batch_labels.numpy())
    if not logits:
        log("calibration: the eval split is empty, temperature 1 and no abstention threshold")
        return {"temperature": 1.0, "eval_examples": 0}
    result = calibration.summary(np.concatenate(logits), np.concatenate(labels), hparams.abstain_precision)
    log(f"calibration on {result['eval_examples']} eval faces: temperature {result['temperature']:.3f}, "
        f"ECE {result['ece_before']:.4f} -> {result['ece_after']:.4f}, NLL {result['nll_before']:.4f} -> "
        f"{result['nll_after']:.4f}")
    abstention = result.get("abstention")
    if abstention:
        log(f"abstention: answers below {abstention['threshold']:.3f} confidence are flagged uncertain; the rest "
            f"({abstention['coverage']:.1%} of eval) are {abstention['precision']:.1%} right"
            + ("" if abstention["reached"] else f", short of the {abstention['target_precision']:.0%} target"))
    return result


def _strategy() -> tf.distribute.Strategy:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        logging.info("Training on %d GPU(s) with MirroredStrategy: %s", len(gpus), [g.name for g in gpus])
        return tf.distribute.MirroredStrategy()
    logging.info("No GPU visible: training on the CPU.")
    return tf.distribute.get_strategy()


def warm_start_from(model, base_model_dir) -> dict:
    """Loads the base model's weights (TFX's base_model: the latest blessed or served model trained on
    other data) into the freshly built model; a missing or unfitting one means a fresh start, said so.
    Only the first attempt starts warm: a collapse restart reinitialises."""
    if not base_model_dir or not tf.io.gfile.exists(base_model_dir):
        logging.info("Warm start: no earlier model to start from; training starts fresh.")
        return {"from": None, "used": False, "why": "no earlier model"}
    try:
        export.restore_weights(model, base_model_dir)
    except ValueError as error:
        logging.warning("Warm start from %s impossible (%s); training starts fresh.", base_model_dir, error)
        return {"from": base_model_dir, "used": False, "why": str(error)}
    logging.info("Warm start: training starts from the weights of %s", base_model_dir)
    return {"from": base_model_dir, "used": True}


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    config = fn_args.custom_config or {}
    hparams = HParams.from_dict(config.get("hparams", {}))
    layout = config.get("layout")
    if layout not in deep_emotion_model.LAYOUTS:
        raise ValueError(f"Trainer custom_config['layout'] is {layout!r}: expected one of "
                         f"{deep_emotion_model.LAYOUTS} (pipeline.create_pipeline's model_layout)")
    logging.info("Deep-Emotion %s layout, hyperparameters %s", layout, json.dumps(hparams.to_dict()))
    threads = one_thread_per_op()  # a fresh process (Kubeflow's step) starts TensorFlow here

    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    target = dc.LABEL_SHARES if hparams.soft_labels else dc.LABEL
    train_ds = raw_dataset(fn_args.train_files, tf_transform_output, target)
    eval_ds = raw_dataset(fn_args.eval_files, tf_transform_output, target)
    preprocess = preprocess_fn(tf_transform_output)

    precision = deep_emotion_model.training_precision(hparams.precision)
    logging.info("Training in %s; the served model is float32.", precision)
    strategy = _strategy()
    logging.info("TensorFlow threads: %s; each batch of %d trains in %d slice(s) side by side (cpu_towers)",
                 threads, hparams.batch_size, training_towers(hparams, strategy))
    with strategy.scope():
        model = deep_emotion_model.build_model(layout, seed=hparams.seed, mixed_precision=precision)
        warm_start = warm_start_from(model, getattr(fn_args, "base_model", None)) if config.get("warm_start") else None
    tensorboard = tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")
    history = train(model, train_ds, eval_ds, hparams, callbacks=[tensorboard], log=logging.info,
                    preprocess=preprocess)

    model = deep_emotion_model.float32_copy(model)  # served, so calibrated, in float32
    eval_labelled = raw_dataset(fn_args.eval_files, tf_transform_output)  # calibrated on the hard label
    calibrated = (calibrate(model, eval_labelled, hparams, preprocess) if hparams.calibrate
                  else {"temperature": 1.0})
    abstention = calibrated.get("abstention") or {}
    limits = config.get("serving_limits", {})
    serving = {"temperature": calibrated["temperature"], "uncertain_below": abstention.get("threshold", 0.0),
               "tta": hparams.tta, "max_image_pixels": int(limits.get("max_image_pixels", dc.MAX_IMAGE_PIXELS)),
               "max_image_bytes": int(limits.get("max_image_bytes", dc.MAX_IMAGE_BYTES))}
    tflite_file = export.ServingModule(model, tf_transform_output, **serving).save(fn_args.serving_model_dir)
    training_record.write(fn_args.model_run_dir, layout, hparams.to_dict(), history.history,
                          calibration=calibrated, serving=serving,
                          training={"attempts": history.attempts, "warm_start": warm_start},
                          model={"trainable_parameters": deep_emotion_model.trainable_parameters(model)})
    logging.info("Serving model written to %s (TFLite copy: %s); TensorBoard logs in %s",
                 fn_args.serving_model_dir, tflite_file, fn_args.model_run_dir)
