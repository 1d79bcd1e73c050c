"""SpanResolver: the first task of a Kubeflow run. Which spans this run ingests, the fingerprint of
every file in them, and which served versions the run compares with and warm-starts from, as output
parameters that make KFP's cache keys follow the data.

Open-source Kubeflow Pipelines runs no component drivers, so the ExampleGen's driver, which does
this locally before TFX's cache lookup (components/example_gen/driver.py), never runs there; and
KFP's cache key is the task's inputs and parameters, blind to files under the data root and to the
serving directory. This task always runs (the compiled pipeline turns its cache off) and reads both;
everything after it is cached on what it outputs:

    span, span_folders, input_fingerprint  -> DeepEmotionExampleGen (the same exec properties the local driver sets)
    baseline_version                       -> ServedModel, the Evaluator's baseline
    warm_start_version                     -> ServedModel as the Trainer's base model (warm start)

So when nothing is new (the served model was trained on exactly these files with the same training
settings) every later task's key equals that of the run that pushed it: the run ends after this
task, every other step taken from the cache, nothing trained or pushed. A new span, or a file
changed in it, changes the fingerprint and the whole chain runs.

The version rules, over the complete versions newest first (their training_data/ records,
components/pusher/serving_dir.py):
- baseline_version: the newest version that is not this data's model under these settings (a model
  is never its own baseline). That is the served version after new data, and, when nothing is new,
  the version the served model was itself compared with, as in the run that pushed it.
- warm_start_version: the newest version trained on other data; never a model of these very files,
  or every rerun would train on from the previous one.
0 stands for none.
"""
import os

from absl import logging
from tfx import v1 as tfx

from components.example_gen import spans
from components.pusher.serving_dir import complete_versions, read_training_data
from components.served_model.component import check_serving_dir

NOTHING_NEW = "nothing new"


def decide(resolution: spans.Resolution, serving_dir: str, training_fingerprint: str):
    """(baseline_version, warm_start_version, decision in words) from the serving directory's records."""
    versions = complete_versions(serving_dir)
    records = {v: read_training_data(os.path.join(serving_dir, str(v))) or {} for v in versions}

    def same_data(version: int) -> bool:
        return records[version].get("input_fingerprint") == resolution.input_fingerprint

    def same_model(version: int) -> bool:
        return same_data(version) and records[version].get("training_fingerprint") == training_fingerprint

    baseline = next((v for v in versions if not same_model(v)), 0)
    warm_start = next((v for v in versions if not same_data(v)), 0)
    what = resolution.describe()
    if not versions:
        decision = f"new data: {what}; nothing served yet under {serving_dir}"
    elif same_model(versions[0]):
        decision = (f"{NOTHING_NEW}: {what}, file for file, is what served version {versions[0]} was trained on, with "
                    f"the same training settings. The steps after this one come from the cache: nothing is "
                    f"trained or pushed.")
    elif same_data(versions[0]):
        decision = (f"same data as served version {versions[0]} ({what}), new training settings: the model is "
                    f"trained again and compared with version {versions[0]}")
    else:
        served_span = records[versions[0]].get("span")
        decision = (f"new data: {what}; served version {versions[0]} was trained on "
                    f"{f'span {served_span}' if served_span is not None else 'other data'}")
    return baseline, warm_start, decision


@tfx.dsl.components.component
def SpanResolver(
    data_root: tfx.dsl.components.Parameter[str],
    serving_dir: tfx.dsl.components.Parameter[str],
    span: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Integer],
    span_folders: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.String],
    input_fingerprint: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.String],
    baseline_version: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Integer],
    warm_start_version: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Integer],
    span_pattern: tfx.dsl.components.Parameter[str] = spans.DEFAULT_PATTERN,
    num_spans: tfx.dsl.components.Parameter[int] = 1,
    training_fingerprint: tfx.dsl.components.Parameter[str] = "",
    ready_marker: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Resolves the spans under data_root and the versions under serving_dir (see the module docstring)."""
    check_serving_dir(serving_dir)
    resolution = spans.resolve(data_root, span_pattern, spans.rolling_range(num_spans), ready_marker)
    if resolution.outside:
        logging.warning("In no span, not read: %s", ", ".join(resolution.outside))
    if resolution.waiting:
        logging.warning("Span folders %s", spans.describe_waiting(resolution.waiting, ready_marker))
    elif ready_marker and not resolution.spans:
        logging.warning("The span ready marker %s is set, but %s has no span folders: it is read whole",
                        ready_marker, data_root)
    baseline, warm_start, decision = decide(resolution, serving_dir, training_fingerprint)
    logging.info("SpanResolver: %s", decision)
    span.value = resolution.span
    span_folders.value = spans.to_json(resolution.spans)
    input_fingerprint.value = resolution.input_fingerprint
    baseline_version.value = baseline
    warm_start_version.value = warm_start
    span.set_string_custom_property("decision", decision)
