"""`deep-emotion summary`: what the latest pipeline run did and where its outputs are.

Reads ML Metadata (no guessing from directory names): each component's state, the validation
report, the TensorBoard logs, the evaluation and its verdict, the pushed model — and measures the
pushed model's accuracy on the test split through its serving signature, the way a client would.
"""
import glob
import os
from typing import Optional

import click

from deep_emotion import runs


def pushed_model_test_accuracy(model_dir: str, examples_uri: str, batch_size: int = 256):
    """(accuracy, n) of a SavedModel's serving_default on the raw test split of ExampleGen's output."""
    import numpy as np
    import tensorflow as tf

    from deep_emotion import data_contract as dc

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    files = sorted(glob.glob(os.path.join(examples_uri, "Split-test", "*")))
    correct = total = 0
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size):
        labels = tf.io.parse_example(batch, {dc.LABEL: tf.io.FixedLenFeature([1], tf.int64)})[dc.LABEL][:, 0]
        predicted = serve(examples=batch)["class_id"]
        correct += int(np.sum(predicted.numpy() == labels.numpy()))
        total += int(labels.shape[0])
    return (correct / total if total else float("nan")), total


def evaluation_verdict(evaluation_uri: str):
    """(candidate's overall eval accuracy, blessed?, reasons) from the Evaluator's output."""
    import tensorflow_model_analysis as tfma

    accuracy = None
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if not slice_metrics.slice_key.single_slice_keys:  # the overall slice
            for kv in slice_metrics.metric_keys_and_values:
                if kv.key.name == "sparse_categorical_accuracy" and not kv.key.is_diff \
                        and kv.key.model_name in ("", "candidate"):
                    accuracy = kv.value.double_value.value
    result = tfma.load_validation_result(evaluation_uri)
    reasons = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            threshold = failure.metric_threshold
            value = failure.metric_value.double_value.value
            if failure.metric_key.is_diff:
                reasons.append(f"{failure.metric_key.name} {value:+.4f} against the baseline (must not drop)")
            elif threshold.HasField("value_threshold"):
                floor = threshold.value_threshold.lower_bound.value
                reasons.append(f"{failure.metric_key.name} {value:.4f} is below the floor {floor:.4f}")
            else:
                reasons.append(failure.message or str(failure.metric_key))
    return accuracy, result.validation_ok, reasons


def summarize(metadata_path: str, pipeline_name: str, echo=click.echo) -> Optional[float]:
    """Prints the latest run's summary; returns the pushed model's test accuracy (None if none)."""
    run = runs.latest_run(metadata_path, pipeline_name)
    if run is None:
        raise click.ClickException(f"No run of pipeline '{pipeline_name}' in {metadata_path}")
    echo(f"Pipeline '{pipeline_name}', run {run.run_id}:")
    for node_id, state in run.states().items():
        echo(f"  {node_id:32s} {state}")
    nodes = run.nodes
    if "ExampleValidator" in nodes and nodes["ExampleValidator"].outputs:
        echo(f"Data validation report:   {nodes['ExampleValidator'].output('anomalies').uri}")
    if "StatisticsGen" in nodes and nodes["StatisticsGen"].outputs:
        echo(f"Data statistics:          {nodes['StatisticsGen'].output('statistics').uri}")
    if "Trainer" in nodes and nodes["Trainer"].outputs:
        logs = nodes["Trainer"].output("model_run").uri
        echo(f"TensorBoard logs:         {logs}   (tensorboard --logdir {logs})")
    if "Evaluator" in nodes and nodes["Evaluator"].outputs:
        uri = nodes["Evaluator"].output("evaluation").uri
        accuracy, blessed, reasons = evaluation_verdict(uri)
        echo(f"Evaluation (TFMA):        {uri}")
        echo(f"  eval accuracy {accuracy:.4f}: {'BLESSED' if blessed else 'NOT BLESSED'}")
        for reason in reasons:
            echo(f"    {reason}")
    pusher = nodes.get("Pusher")
    if pusher is None or not pusher.outputs:
        echo("No model pushed: the run did not reach the Pusher.")
        return None
    pushed = pusher.output("pushed_model")
    if not runs.custom_property(pushed, "pushed"):
        echo("Model NOT pushed: the Evaluator did not bless it. The served model is unchanged.")
        return None
    destination = runs.custom_property(pushed, "pushed_destination")
    new = runs.custom_property(pushed, "new_version")
    echo(f"Pushed model:             {destination}" + ("" if new in (None, 1) else "  (identical to the served version: no new version)"))
    accuracy, n = pushed_model_test_accuracy(destination, run.producer("examples").output("examples").uri)
    echo(f"Pushed model's test accuracy: {accuracy:.4f} on {n} test examples")
    return accuracy


@click.command("summary")
@click.option("--metadata-path", default=None, help="MLMD SQLite file (default: configs.METADATA_PATH).")
@click.option("--pipeline-name", default=None, help="Pipeline name (default: configs.PIPELINE_NAME).")
@click.option("--min-test-accuracy", type=float, default=None,
              help="Exit non-zero unless a model was pushed and reaches this test accuracy.")
def summary(metadata_path, pipeline_name, min_test_accuracy):
    """Show what the latest pipeline run did, where its outputs are, and the pushed model's test accuracy."""
    from pipeline import configs

    accuracy = summarize(metadata_path or configs.METADATA_PATH, pipeline_name or configs.PIPELINE_NAME)
    if min_test_accuracy is not None and (accuracy is None or accuracy < min_test_accuracy):
        raise click.ClickException(f"Test accuracy {accuracy} is below the required {min_test_accuracy}")
