"""The run-local stand-in on a hand-written two-task PipelineSpec whose command records what it gets:
DAG order, what KFP's driver passes (typeless artifacts, doubles, text for STRING inputs), the
launcher's placeholder substitution and output collection, KFP's cache across runs, failures."""
import json
import os
import sys

import pytest
import yaml

from pipeline import kfp_local

FAKE_TASK = os.path.join(os.path.dirname(__file__), "fake_task.py")
ARTIFACT_TYPE = {"instanceSchema": "title: tfx.Examples\ntype: object\n"}


def _component(inputs=None, outputs=None):
    return {"executorLabel": "", **({"inputDefinitions": inputs} if inputs else {}),
            **({"outputDefinitions": outputs} if outputs else {})}


def _spec(second_args=()):
    """produce (an artifact and an integer parameter) -> consume (reads both, the parameter as STRING)."""
    components = {
        "produce": _component(outputs={"artifacts": {"examples": {"artifactType": ARTIFACT_TYPE}},
                                       "parameters": {"count": {"parameterType": "NUMBER_INTEGER"}}}),
        "consume": _component(inputs={"artifacts": {"examples": {"artifactType": ARTIFACT_TYPE}},
                                      "parameters": {"count": {"parameterType": "STRING"},
                                                     "root": {"parameterType": "STRING"},
                                                     "mode": {"parameterType": "STRING", "defaultValue": "fast"}}},
                              outputs={"artifacts": {"report": {"artifactType": ARTIFACT_TYPE}}}),
    }
    executors = {}
    for name, component in components.items():
        component["executorLabel"] = f"{name}_executor"
        args = ["--executor_input", "{{$}}"] + (list(second_args) if name == "consume" else [])
        executors[f"{name}_executor"] = {"container": {"image": "example/image:1", "command": ["python", FAKE_TASK],
                                                       "args": args}}
    return {
        "pipelineInfo": {"name": "fake"}, "schemaVersion": "2.1.0", "sdkVersion": "test",
        "components": components, "deploymentSpec": {"executors": executors},
        "root": {"inputDefinitions": {"parameters": {"data_root": {"parameterType": "STRING"}}},
                 "dag": {"tasks": {
                     "consume": {"taskInfo": {"name": "consume"}, "componentRef": {"name": "consume"},
                                 "cachingOptions": {"enableCache": True},
                                 "inputs": {"artifacts": {"examples": {"taskOutputArtifact": {
                                     "producerTask": "produce", "outputArtifactKey": "examples"}}},
                                            "parameters": {"count": {"taskOutputParameter": {
                                                "producerTask": "produce", "outputParameterKey": "count"}},
                                                "root": {"componentInputParameter": "data_root"}}}},
                     "produce": {"taskInfo": {"name": "produce"}, "componentRef": {"name": "produce"}},
                 }}},
    }


def _package(tmp_path, spec):
    path = tmp_path / "package.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _run(tmp_path, spec, run_id, **params):
    return kfp_local.run(_package(tmp_path, spec), str(tmp_path / "root"), params or {"data_root": "/data"},
                         run_id=run_id, python=sys.executable, echo=lambda line: None)


def test_each_task_gets_what_kfps_driver_passes_and_hands_its_outputs_on(tmp_path):
    report = _run(tmp_path, _spec(), "r1")
    assert [t.name for t in report.tasks] == ["produce", "consume"] and report.ok
    consume = report.tasks[1]
    with open(os.path.join(consume.outputs["report"]["uri"], "received.json")) as f:
        received = json.load(f)
    [examples] = received["inputs"]["artifacts"]["examples"]["artifacts"]
    produced = report.tasks[0].outputs["examples"]
    assert examples["name"] == produced["id"] and examples["uri"] == produced["uri"]
    assert examples["type"] == {"instanceSchema": ""}  # ML Metadata keeps no schema
    assert examples["metadata"] == {"count": 3.0, "note": "written", "display_name": "examples",
                                    "store_session_info": "{}"}
    assert received["inputs"]["parameterValues"] == {"count": "7", "root": "/data", "mode": "fast"}
    assert produced["uri"].startswith(str(tmp_path / "root" / "fake" / "r1" / "produce" / ""))
    assert received["outputs"]["outputFile"].endswith(os.path.join("consume", "kfp_outputs", "output_metadata.json"))
    assert consume.peak_rss_mb > 0
    saved = json.loads((tmp_path / "root" / "fake" / "r1" / "run-local.json").read_text())
    assert [t["state"] for t in saved["tasks"]] == ["COMPLETE", "COMPLETE"]


def test_a_rerun_takes_cached_tasks_from_the_cache_with_the_same_artifacts(tmp_path):
    first = _run(tmp_path, _spec(), "r1")
    second = _run(tmp_path, _spec(), "r2")
    assert [t.state for t in second.tasks] == ["COMPLETE", "COMPLETE"]  # produce is not cached: new artifact ids
    spec = _spec()
    spec["root"]["dag"]["tasks"]["produce"]["cachingOptions"] = {"enableCache": True}
    _run(tmp_path, spec, "r3")
    fourth = _run(tmp_path, spec, "r4")
    assert [t.state for t in fourth.tasks] == ["CACHED", "CACHED"]
    assert fourth.tasks[1].outputs["report"]["id"] != first.tasks[1].outputs["report"]["id"]
    other = _run(tmp_path, spec, "r5", data_root="/other")  # another parameter value: another key
    assert [t.state for t in other.tasks] == ["CACHED", "COMPLETE"]


def test_a_failing_task_stops_the_run_naming_it_and_its_log(tmp_path):
    with pytest.raises(kfp_local.RunLocalError, match=r"task consume failed: exit status 3; log .*task.log") as failure:
        _run(tmp_path, _spec(second_args=["--fail"]), "r1")
    assert "fake_task: failing as asked" in str(failure.value)
    saved = json.loads((tmp_path / "root" / "fake" / "r1" / "run-local.json").read_text())
    assert [t["state"] for t in saved["tasks"]] == ["COMPLETE", "FAILED"]


def test_packages_naming_cloud_storage_and_missing_parameters_are_refused(tmp_path):
    with pytest.raises(kfp_local.RunLocalError, match="reads or writes gs://bucket/data: a dry run here"):
        _run(tmp_path, _spec(), "r1", data_root="gs://bucket/data")
    with pytest.raises(kfp_local.RunLocalError, match="no value for data_root"):
        kfp_local.run(_package(tmp_path, _spec()), str(tmp_path / "root"), {}, echo=lambda line: None)
    spec = _spec()
    spec["root"]["dag"]["tasks"]["consume"]["inputs"]["parameters"]["count"]["taskOutputParameter"]["producerTask"] = \
        "produce_task"  # what TFX's compiler writes unless compile_pipeline fixes it
    with pytest.raises(kfp_local.RunLocalError, match=r"reads from \['produce_task'\], which the pipeline does not"):
        _run(tmp_path, spec, "r1")
