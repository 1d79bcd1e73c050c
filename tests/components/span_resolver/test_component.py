"""SpanResolver through its TFX executor: the spans, their fingerprint and the served versions it hands
on, over a sequence of scheduled runs as an operator's history has them."""
import itertools
import json
import os

import pytest
from tfx.types import standard_artifacts

from components.pusher import serving_dir as serving
from components.served_model.component import ServingDirMissing
from components.span_resolver.component import NOTHING_NEW, SpanResolver

OUTPUTS = {"span": standard_artifacts.Integer, "span_folders": standard_artifacts.String,
           "input_fingerprint": standard_artifacts.String, "baseline_version": standard_artifacts.Integer,
           "warm_start_version": standard_artifacts.Integer}
_RUNS = itertools.count()


def _resolve(tmp_path, data_root, serving_dir, training="settings-1", ready_marker=""):
    outputs, run = {}, next(_RUNS)
    for key, artifact_type in OUTPUTS.items():
        artifact = artifact_type()
        artifact.uri = str(tmp_path / "outputs" / str(run) / key)  # a value artifact is one file
        os.makedirs(os.path.dirname(artifact.uri), exist_ok=True)
        outputs[key] = [artifact]
    SpanResolver.EXECUTOR_SPEC.executor_class().Do(
        {}, outputs, {"data_root": str(data_root), "serving_dir": str(serving_dir), "training_fingerprint": training,
                      "span_pattern": "span-{SPAN}", "num_spans": 1, "ready_marker": ready_marker})
    values = {key: artifacts[0].value for key, artifacts in outputs.items()}
    values["decision"] = outputs["span"][0].get_string_custom_property("decision")
    return values


def _push(serving_dir, version, fake_saved_model, input_fingerprint, training="settings-1", span=1):
    """A version as the Pusher writes it, with its training_data record."""
    version_dir = os.path.join(serving_dir, str(version))
    fake_saved_model(version_dir, f"model {version}")
    record = {"span": span, "input_fingerprint": input_fingerprint, "training_fingerprint": training}
    for name, content in serving.training_data_files(record, None).items():
        os.makedirs(os.path.dirname(os.path.join(version_dir, name)), exist_ok=True)
        with open(os.path.join(version_dir, name), "wb") as f:
            f.write(content)


def test_the_versions_handed_on_make_every_unchanged_rerun_a_rerun_of_the_one_that_pushed(
        data_root, tmp_path, fake_saved_model):
    serving_dir = tmp_path / "serving"
    serving_dir.mkdir()
    data_root.image("span-1/CK+48/happy/S001_001_00000001.png")

    first = _resolve(tmp_path, data_root.path, serving_dir)  # nothing served yet
    assert (first["span"], first["baseline_version"], first["warm_start_version"]) == (1, 0, 0)
    assert json.loads(first["span_folders"]) == [{"span": 1, "folder": "span-1"}]
    assert first["input_fingerprint"].startswith("span:1,") and first["decision"].startswith("new data: span 1")

    _push(serving_dir, 100, fake_saved_model, first["input_fingerprint"])
    again = _resolve(tmp_path, data_root.path, serving_dir)
    assert again["decision"].startswith(f"{NOTHING_NEW}: span 1 (span-1/), file for file, is what served version 100")
    # The same outputs as the run that pushed 100: its cache keys, so every later step is reused.
    assert {k: again[k] for k in OUTPUTS} == {k: first[k] for k in OUTPUTS}

    retrained = _resolve(tmp_path, data_root.path, serving_dir, training="settings-2")  # e.g. new hparams
    assert retrained["baseline_version"] == 100 and retrained["warm_start_version"] == 0
    assert "new training settings" in retrained["decision"]

    data_root.image("span-2/CK+48/happy/S001_001_00000001.png")
    second = _resolve(tmp_path, data_root.path, serving_dir)
    assert (second["span"], second["baseline_version"], second["warm_start_version"]) == (2, 100, 100)
    assert second["decision"] == "new data: span 2 (span-2/); served version 100 was trained on span 1"

    _push(serving_dir, 200, fake_saved_model, second["input_fingerprint"], span=2)
    after_push = _resolve(tmp_path, data_root.path, serving_dir)
    assert NOTHING_NEW in after_push["decision"]
    assert {k: after_push[k] for k in OUTPUTS} == {k: second[k] for k in OUTPUTS}

    data_root.image("span-2/CK+48/happy/S001_001_00000001.png", size=(40, 40))  # a late fix inside span 2
    late = _resolve(tmp_path, data_root.path, serving_dir)
    assert late["input_fingerprint"] != second["input_fingerprint"] and late["baseline_version"] == 200
    assert late["warm_start_version"] == 200


def test_a_version_without_a_record_counts_as_other_data(data_root, tmp_path, fake_saved_model):
    serving_dir = tmp_path / "serving"
    fake_saved_model(str(serving_dir / "50"), "pushed by hand")
    data_root.image("CK+48/happy/S001_001_00000001.png")  # a root without span folders
    values = _resolve(tmp_path, data_root.path, serving_dir)
    assert (values["span"], values["span_folders"], values["baseline_version"]) == (0, "[]", 50)
    assert values["decision"].startswith("new data: the whole data root (no span folders); served version 50")


def test_a_serving_dir_that_does_not_exist_stops_the_run_first(data_root, tmp_path):
    data_root.image("span-1/CK+48/happy/S001_001_00000001.png")
    with pytest.raises(ServingDirMissing):
        _resolve(tmp_path, data_root.path, tmp_path / "servnig")


def test_on_kubeflow_too_a_span_without_its_ready_marker_is_left_for_a_later_run(data_root, tmp_path):
    serving_dir = tmp_path / "serving"
    serving_dir.mkdir()
    data_root.image("span-1/CK+48/happy/S001_001_00000001.png")
    data_root.write("span-1/_SUCCESS", "")
    data_root.image("span-2/CK+48/happy/S002_001_00000001.png")  # still being copied
    values = _resolve(tmp_path, data_root.path, serving_dir, ready_marker="_SUCCESS")
    assert (values["span"], json.loads(values["span_folders"])) == (1, [{"span": 1, "folder": "span-1"}])
    assert _resolve(tmp_path, data_root.path, serving_dir)["span"] == 2  # no marker set: the latest folder
