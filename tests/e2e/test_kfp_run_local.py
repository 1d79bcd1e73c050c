"""The compiled Kubeflow pipeline, executed task by task through `deep-emotion kfp run-local` (the
stand-in for KFP 2.x's driver and launcher, pipeline/kfp_local.py) on a small span root: three
scheduled runs in a row, as a recurring run would make them. Every task runs the command the YAML
holds, through the image's entry point, with the typeless input artifacts KFP's driver passes.
Warm start is on: the new span's model starts from the served one.

The dry run's wall time and peak memory are what `make kfp-dry-run` prints (README).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deep_emotion.demo_data.generate import generate
from tests.e2e.harness import copy_code, explain

pytestmark = pytest.mark.kfp_dry_run
CLI = str(Path(sys.executable).parent / "deep-emotion")
HPARAMS = {"epochs": 12, "batch_size": 32, "early_stopping_patience": 12}


class DryRun:
    """A code copy, a data root of spans, a serving directory and one compiled package, run again and again."""

    def __init__(self, root: Path):
        self.root, self.data, self.serving = root, root / "data", root / "serving"
        self.package, self.pipeline_root = root / "deep-emotion-kfp.yaml", root / "kfp-root"
        code = copy_code(root / "code")
        self.serving.mkdir()
        self.env = {**os.environ, "PYTHONPATH": str(code), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                    "DEEP_EMOTION_KFP_SERVING_DIR": str(self.serving), "DEEP_EMOTION_KFP_DATA_ROOT": str(self.data),
                    "DEEP_EMOTION_KFP_SCHEMA_PATH": str(code / "schema" / "schema.pbtxt"),
                    "DEEP_EMOTION_PROFILE": "demo", "DEEP_EMOTION_HPARAMS": json.dumps(HPARAMS),
                    "DEEP_EMOTION_ACCURACY_FLOOR": "0.0", "DEEP_EMOTION_KFP_TRAINER_GPU_COUNT": "0",
                    "DEEP_EMOTION_BEAM_DIRECT_NUM_WORKERS": "1", "DEEP_EMOTION_WARM_START": "true"}
        compiled = self.cli("kfp", "compile", "--output", str(self.package))
        assert compiled.returncode == 0, explain(compiled)

    def cli(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def run(self, run_id: str):
        result = self.cli("kfp", "run-local", "--package", str(self.package), "--pipeline-root",
                          str(self.pipeline_root), "--run-id", run_id)
        report_path = self.pipeline_root / "deep-emotion" / run_id / "run-local.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        print(result.stdout)  # the per-task table, with times and peak memory, in pytest's output
        return result, report

    def versions(self):
        return sorted(p.name for p in self.serving.iterdir() if p.name.isdigit())


def _tasks(report):
    return {t["name"]: t for t in report["tasks"]}


def _states(report):
    return {t["name"]: t["state"] for t in report["tasks"]}


def _warm_start(tasks):
    """What the Trainer's training record says about its start."""
    model_run = tasks["Trainer"]["outputs"]["model_run"]["uri"]
    return json.loads((Path(model_run) / "history.json").read_text())["training"]["warm_start"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    box = DryRun(tmp_path_factory.mktemp("kfp-dry-run"))
    generate(str(box.data / "span-1"), n=300, seed=1)
    return box


def test_first_span_every_task_succeeds_and_the_model_is_pushed(dry_run):
    result, report = dry_run.run("run-1")
    assert result.returncode == 0, explain(result)
    assert set(_states(report).values()) == {"COMPLETE"} and len(report["tasks"]) == 14
    tasks = _tasks(report)
    # What KFP's driver hands a task: the upstream artifact by its id, with no type (entrypoint fills it).
    with open(os.path.join(os.path.dirname(tasks["StatisticsGen"]["log"]), "executor_input.json")) as f:
        [examples_input] = json.load(f)["inputs"]["artifacts"]["examples"]["artifacts"]
    assert examples_input["type"] == {"instanceSchema": ""} and examples_input["name"].isdigit()
    assert examples_input["metadata"]["span"] == 1.0  # ML Metadata keeps numbers as doubles
    examples = tasks["DeepEmotionExampleGen"]["outputs"]["examples"]["metadata"]
    assert examples["span"] == 1 and examples["input_fingerprint"].startswith("span:1,")
    assert tasks["SpanResolver"]["parameters"]["baseline_version"] == 0  # nothing served yet
    assert _warm_start(tasks) == {"from": None, "used": False, "why": "no earlier model"}
    assert tasks["Pusher"]["outputs"]["pushed_model"]["metadata"]["pushed"] == 1
    [version] = dry_run.versions()
    record = json.loads((dry_run.serving / version / "training_data" / "training_data.json").read_text())
    assert record["span"] == 1 and record["input_fingerprint"] == examples["input_fingerprint"]
    assert report["peak_rss_mb"] > 0


def test_same_span_again_ends_after_the_span_resolver_nothing_trained_or_pushed(dry_run):
    versions = dry_run.versions()
    trainings = len(list((dry_run.pipeline_root / "deep-emotion").glob("*/Trainer")))
    result, report = dry_run.run("run-2")
    assert result.returncode == 0, explain(result)
    states = _states(report)
    assert states.pop("SpanResolver") == "COMPLETE" and set(states.values()) == {"CACHED"}, states
    assert "Nothing new: every task but SpanResolver came from the cache" in result.stdout
    with open(_tasks(report)["SpanResolver"]["log"]) as f:
        assert f"nothing new: span 1 (span-1/), file for file, is what served version {versions[0]}" in f.read()
    assert dry_run.versions() == versions
    assert len(list((dry_run.pipeline_root / "deep-emotion").glob("*/Trainer"))) == trainings


def test_a_new_span_is_ingested_trained_and_pushed_if_blessed(dry_run):
    [served] = dry_run.versions()
    generate(str(dry_run.data / "span-2"), n=300, seed=2)
    result, report = dry_run.run("run-3")
    assert result.returncode == 0, explain(result)
    states = _states(report)
    assert states.pop("ImportSchemaGen") == "CACHED" and set(states.values()) == {"COMPLETE"}, states
    tasks = _tasks(report)
    assert tasks["DeepEmotionExampleGen"]["outputs"]["examples"]["metadata"]["span"] == 2
    assert tasks["SpanResolver"]["parameters"]["baseline_version"] == int(served)
    assert tasks["ServedModel"]["outputs"]["served_model"]["metadata"]["served_version"] == int(served)
    assert tasks["warm_start_model"]["outputs"]["served_model"]["metadata"]["served_version"] == int(served)
    assert _warm_start(tasks)["used"] is True  # trained on from the served model's weights
    with open(tasks["DataGate"]["log"]) as f:
        assert f"drift from span 1 (span-1/) (what served version {served} was trained on) to span 2 (span-2/)" in f.read()
    blessed = tasks["Evaluator"]["outputs"]["blessing"]["metadata"]["blessed"]
    pushed = tasks["Pusher"]["outputs"]["pushed_model"]["metadata"]["pushed"]
    assert pushed == blessed
    if blessed:
        assert len(dry_run.versions()) == 2
        record = json.loads((dry_run.serving / dry_run.versions()[-1] / "training_data" / "training_data.json")
                            .read_text())
        assert record["span"] == 2
    else:
        assert dry_run.versions() == [served]
