"""What the latest pipeline run did and where its outputs are (`deep-emotion summary`).

Reads ML Metadata (no guessing from directory names): each component's state, the span(s) ingested,
whether anything was new, the validation report (and drift accepted by an override), the TensorBoard
logs, the evaluation and its verdict, the pushed model — and measures the pushed model's accuracy on
the test split through its serving signature, the way a client would.
"""
import dataclasses
from typing import Callable, Optional

from components.example_gen import spans
from deep_emotion import runs

TEST_SPLIT = "test"


@dataclasses.dataclass
class RunSummary:
    """What `summarize` found: the pushed version (None if nothing was pushed, and why) and its test accuracy."""
    pushed_model: Optional[str] = None
    not_pushed_because: Optional[str] = None
    test_accuracy: Optional[float] = None  # None when the test split is empty
    test_examples: int = 0


def ingested(run: runs.PipelineRun) -> Optional[str]:
    """'span 2 (span-2/) of /data/faces: 1234 examples', from the run's Examples artifact."""
    node = run.producer("examples")
    if node is None or not node.outputs.get("examples"):
        return None
    examples = node.output("examples")
    folders = spans.describe(spans.from_json(runs.custom_property(examples, "span_folders")))
    count = runs.custom_property(examples, "num_examples")
    return f"{folders}: {count} examples" if count is not None else folders


def nothing_new(run: runs.PipelineRun) -> bool:
    """Every component came from the cache (Resolvers always resolve): the data was seen before and
    nothing was trained, evaluated or pushed."""
    states = {node: state for node, state in run.states().items() if "resolver" not in node}
    return bool(states) and all(state == "CACHED" for state in states.values())


def verdict(run: runs.PipelineRun) -> str:
    """One line on what the run did, for the end of its log and for the summary."""
    data = ingested(run) or "its data"
    if nothing_new(run):
        return (f"Nothing new: {data}, ingested by an earlier run; every step came from the cache, nothing was "
                f"trained or pushed.")
    states = run.states()
    failed = [node for node, state in states.items() if state == "FAILED"]
    if failed:
        return f"Stopped at {', '.join(failed)} ({data})."
    if states.get("Trainer") == "CACHED" and states.get("Pusher", "CACHED") == "CACHED":
        # e.g. a run that only dropped a drift override: the gate checks again, the model stays
        again = [node for node, state in states.items() if state == "COMPLETE" and "resolver" not in node]
        return (f"Nothing new to train: {data}; {', '.join(again)} ran again, the Trainer and the Pusher came "
                f"from the cache: nothing was trained or pushed.")
    return f"Ran on {data}."


def pushed_model_test_accuracy(model_dir: str, examples_uri: str):
    """(accuracy or None for an empty split, n) of a SavedModel's serving_default on the test split."""
    from deep_emotion.report import model_analysis

    predictions = model_analysis.predict(model_analysis.load_serving_model(model_dir), examples_uri, TEST_SPLIT)
    return predictions.accuracy(), len(predictions.faces)


def summarize(metadata_path: str, pipeline_name: str, echo: Callable[[str], None] = print) -> RunSummary:
    """Prints the latest run's summary with `echo`; LookupError when the pipeline never ran."""
    run = runs.latest_run(metadata_path, pipeline_name)
    if run is None:
        raise LookupError(f"No run of pipeline '{pipeline_name}' in {metadata_path}")
    echo(f"Pipeline '{pipeline_name}', run {run.run_id}:")
    for node_id, state in run.states().items():
        echo(f"  {node_id:32s} {state}")
    echo(verdict(run))
    nodes = run.nodes
    gate = nodes.get("DataGate")
    if gate is not None and gate.outputs.get("gated_schema"):
        accepted = runs.custom_property(gate.output("gated_schema"), "drift_accepted")
        if accepted:
            echo(f"Drift accepted by the operator's override: {accepted.splitlines()[0]}")
    if "ExampleValidator" in nodes and nodes["ExampleValidator"].outputs:
        echo(f"Data validation report:   {nodes['ExampleValidator'].output('anomalies').uri}")
    if "StatisticsGen" in nodes and nodes["StatisticsGen"].outputs:
        echo(f"Data statistics:          {nodes['StatisticsGen'].output('statistics').uri}")
    if "Trainer" in nodes and nodes["Trainer"].outputs:
        logs = nodes["Trainer"].output("model_run").uri
        echo(f"TensorBoard logs:         {logs}   (tensorboard --logdir {logs})")
    if "Evaluator" in nodes and nodes["Evaluator"].outputs:
        from components.evaluator_output import OVERALL, load_evaluation

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
        return RunSummary(not_pushed_because="the run did not reach the Pusher")
    pushed = pusher.output("pushed_model")
    if not runs.custom_property(pushed, "pushed"):
        echo("Model NOT pushed: the Evaluator did not bless it. The served model is unchanged.")
        return RunSummary(not_pushed_because="the Evaluator did not bless the model")
    destination = runs.custom_property(pushed, "pushed_destination")
    new = runs.custom_property(pushed, "new_version")
    echo(f"Pushed model:             {destination}"
         + ("" if new in (None, 1) else "  (identical to the served version: no new version)"))
    accuracy, n = pushed_model_test_accuracy(destination, run.producer("examples").output("examples").uri)
    if accuracy is None:
        echo("Pushed model's test accuracy: undefined, the test split has no examples")
    else:
        echo(f"Pushed model's test accuracy: {accuracy:.4f} on {n} test examples")
    return RunSummary(destination, None, accuracy, n)


def check_test_accuracy(result: RunSummary, minimum: float) -> Optional[str]:
    """Why the run fails a required test accuracy, or None when it passes."""
    if result.pushed_model is None:
        return f"no model was pushed ({result.not_pushed_because}): required test accuracy {minimum}"
    if result.test_accuracy is None:
        return f"the test split has no examples, so the test accuracy is undefined (required {minimum})"
    if result.test_accuracy < minimum:
        return f"test accuracy {result.test_accuracy:.4f} is below the required {minimum}"
    return None
