"""Where a run's artifacts are: through ML Metadata (deep_emotion.runs), or, without MLMD, by
scanning a pipeline root (e.g. artifacts copied from a Kubeflow run's bucket).

ML Metadata knows which artifacts belong to one run, including those reused from the cache.
A pipeline-root scan cannot: it takes the newest artifact of each kind
(`<root>/<node>/<output key>/<execution id>/`), which mixes runs when the latest run stopped early.
"""
import glob
import os
from dataclasses import dataclass, field
from typing import Dict, Optional

from deep_emotion import runs

# (node id, output key) of every artifact the reports read.
EXAMPLES = ("DeepEmotionExampleGen", "examples")
STATISTICS = ("StatisticsGen", "statistics")
CURATED_SCHEMA = ("ImportSchemaGen", "schema")
ANOMALIES = ("ExampleValidator", "anomalies")
MODEL = ("Trainer", "model")
MODEL_RUN = ("Trainer", "model_run")
EVALUATION = ("Evaluator", "evaluation")
BLESSING = ("Evaluator", "blessing")
PUSHED_MODEL = ("Pusher", "pushed_model")
MODEL_CARD = ("ModelCardGenerator", "model_card")
_ALL = {"examples": EXAMPLES, "statistics": STATISTICS, "schema": CURATED_SCHEMA, "anomalies": ANOMALIES,
        "model": MODEL, "model_run": MODEL_RUN, "evaluation": EVALUATION, "blessing": BLESSING,
        "pushed_model": PUSHED_MODEL, "model_card": MODEL_CARD}


@dataclass
class RunArtifacts:
    """URIs of one run's artifacts (None where the run produced none), and the previous run's statistics."""
    source: str                                   # "ML Metadata <path>" or "pipeline root <dir>"
    run_id: str
    states: Dict[str, str] = field(default_factory=dict)   # node -> COMPLETE/CACHED/FAILED/...; {} without MLMD
    uris: Dict[str, Optional[str]] = field(default_factory=dict)  # keys of _ALL
    blessed: Optional[bool] = None                # the Evaluator's verdict
    previous_run_id: Optional[str] = None
    previous_statistics: Optional[str] = None

    def __getattr__(self, name):  # run.statistics, run.evaluation, ...
        if name in _ALL:
            return self.uris.get(name)
        raise AttributeError(name)

    @property
    def serving_model(self) -> Optional[str]:
        from tfx.utils import path_utils

        return path_utils.serving_model_dir(self.model) if self.model else None

    def describe(self) -> str:
        return f"run {self.run_id} ({self.source})"


def locate(metadata_path: Optional[str] = None, pipeline_name: Optional[str] = None,
           pipeline_root: Optional[str] = None, run_id: Optional[str] = None) -> RunArtifacts:
    """The run to report on: from MLMD unless only a pipeline root is given; unset values come
    from pipeline/configs.py (DEEP_EMOTION_* variables). run_id: a pipeline_run id (MLMD only);
    default the latest run."""
    if pipeline_root and not metadata_path:
        if run_id:
            raise ValueError("run_id needs ML Metadata (metadata_path); a pipeline-root scan has no runs")
        return from_pipeline_root(pipeline_root)
    from pipeline import configs

    return from_metadata(metadata_path or configs.METADATA_PATH, pipeline_name or configs.PIPELINE_NAME, run_id)


def from_metadata(metadata_path: str, pipeline_name: str, run_id: Optional[str] = None) -> RunArtifacts:
    if not os.path.isfile(metadata_path):
        raise FileNotFoundError(f"{metadata_path}: no ML Metadata database here (has the pipeline run? "
                                f"or pass the pipeline root instead)")
    all_runs = runs.pipeline_runs(metadata_path, pipeline_name)
    if not all_runs:
        raise LookupError(f"{metadata_path}: no run of pipeline '{pipeline_name}'")
    index = len(all_runs) - 1
    if run_id is not None:
        ids = [r.run_id for r in all_runs]
        if run_id not in ids:
            raise LookupError(f"{metadata_path}: pipeline '{pipeline_name}' has no run '{run_id}' "
                              f"(runs: {', '.join(ids)})")
        index = ids.index(run_id)
    run = all_runs[index]
    found = RunArtifacts(f"ML Metadata {metadata_path}", run.run_id, run.states(),
                         {name: _uri(run, node, key) for name, (node, key) in _ALL.items()})
    validator = run.nodes.get(ANOMALIES[0])
    if validator is not None and validator.inputs.get("schema"):  # the schema actually validated against
        found.uris["schema"] = validator.inputs["schema"][0].uri
    if found.blessing:
        found.blessed = bool(runs.custom_property(run.nodes[BLESSING[0]].output(BLESSING[1]), "blessed"))
    for previous in reversed(all_runs[:index]):  # the latest earlier run that computed statistics
        uri = _uri(previous, *STATISTICS)
        if uri:
            found.previous_run_id, found.previous_statistics = previous.run_id, uri
            break
    return found


def _uri(run: runs.PipelineRun, node_id: str, key: str) -> Optional[str]:
    node = run.nodes.get(node_id)
    if node is None or node.state not in ("COMPLETE", "CACHED") or not node.outputs.get(key):
        return None
    return node.output(key).uri


def from_pipeline_root(pipeline_root: str) -> RunArtifacts:
    """The newest complete artifact of each kind under a pipeline root, and the statistics before it."""
    if not os.path.isdir(pipeline_root):
        raise FileNotFoundError(f"{pipeline_root}: no such pipeline root")
    uris = {name: next(iter(_versions(pipeline_root, node, key)), None) for name, (node, key) in _ALL.items()}
    if not any(uris.values()):
        raise LookupError(f"{pipeline_root}: no artifacts of the Deep-Emotion pipeline here "
                          f"(expected e.g. {os.path.join(pipeline_root, *STATISTICS, '<id>')})")
    statistics = _versions(pipeline_root, *STATISTICS)
    found = RunArtifacts(f"pipeline root {pipeline_root}", "newest artifacts", {}, uris)
    if uris["blessing"]:
        found.blessed = os.path.exists(os.path.join(uris["blessing"], "BLESSED"))
    if len(statistics) > 1:
        found.previous_run_id = f"statistics {os.path.basename(statistics[1])}"
        found.previous_statistics = statistics[1]
    return found


def _complete_marker(node_id: str, key: str) -> str:
    """A file (glob) that exists only once the artifact is fully written."""
    from tfx.utils import path_utils

    from contract import training_record

    return {
        STATISTICS: "Split-train/FeatureStats.pb", ANOMALIES: "Split-train/SchemaDiff.pb",
        CURATED_SCHEMA: "schema.pbtxt", MODEL: os.path.join(path_utils.serving_model_dir(""), "saved_model.pb"),
        MODEL_RUN: training_record.HISTORY_FILE, EVALUATION: "metrics*", BLESSING: "*BLESSED", EXAMPLES: "Split-train",
        MODEL_CARD: "model_card.json",
    }.get((node_id, key), "*")


def _versions(pipeline_root: str, node_id: str, key: str):
    """Complete artifact directories of one output, newest (highest execution id) first."""
    parent = os.path.join(pipeline_root, node_id, key)
    if not os.path.isdir(parent):
        return []
    ids = sorted((int(d) for d in os.listdir(parent) if d.isdigit()), reverse=True)
    marker = _complete_marker(node_id, key)
    dirs = [os.path.join(parent, str(i)) for i in ids]
    return [d for d in dirs if glob.glob(os.path.join(d, marker))]
