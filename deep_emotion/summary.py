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
        from deep_emotion.report.model_analysis import OVERALL, load_evaluation

        uri = nodes["Evaluator"].output("evaluation").uri
        evaluation = load_evaluation(uri)
        echo(f"Evaluation (TFMA):        {uri}")
        echo(f"  eval accuracy {evaluation.metrics.loc[OVERALL, 'accuracy']:.4f}: "
             f"{'BLESSED' if evaluation.validation_ok else 'NOT BLESSED'}")
        for reason in evaluation.failures:
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
