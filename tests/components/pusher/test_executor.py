"""The Pusher executor through TFX's own artifacts: blessed models are published, others never."""
import os

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import path_utils, proto_utils

from components.pusher import serving_dir
from components.pusher.executor import Executor


def _artifacts(tmp_path, fake_saved_model, blessed: bool):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "Trainer" / "model" / "7")
    fake_saved_model(path_utils.serving_model_dir(model.uri), "trained weights")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "Evaluator" / "blessing" / "8")
    os.makedirs(blessing.uri)
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "Pusher" / "pushed_model" / "9")
    os.makedirs(pushed.uri)
    return model, blessing, pushed


def _push(tmp_path, fake_saved_model, blessed):
    model, blessing, pushed = _artifacts(tmp_path, fake_saved_model, blessed)
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "serving")))
    Executor().Do({"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
                  {"push_destination": proto_utils.proto_to_json(destination)})
    return model, pushed


def test_a_model_that_is_not_blessed_is_not_pushed_and_says_so(tmp_path, fake_saved_model):
    _, pushed = _push(tmp_path, fake_saved_model, blessed=False)
    assert pushed.get_int_custom_property("pushed") == 0
    assert not (tmp_path / "serving").exists()
    assert os.listdir(pushed.uri) == []


def test_a_blessed_model_becomes_the_served_version(tmp_path, fake_saved_model):
    model, pushed = _push(tmp_path, fake_saved_model, blessed=True)
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_int_custom_property("new_version") == 1
    version = serving_dir.newest_complete_version(str(tmp_path / "serving"))
    assert pushed.get_string_custom_property("pushed_destination") == str(tmp_path / "serving" / str(version))
    assert serving_dir.saved_model_digest(str(tmp_path / "serving" / str(version))) == \
        serving_dir.saved_model_digest(path_utils.serving_model_dir(model.uri))


def test_a_pushed_version_carries_the_statistics_and_spans_of_its_training_data(tmp_path, fake_saved_model):
    model, blessing, pushed = _artifacts(tmp_path, fake_saved_model, blessed=True)
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / "StatisticsGen" / "statistics" / "5")
    statistics.span = 3
    for split in ("train", "eval"):
        os.makedirs(os.path.join(statistics.uri, f"Split-{split}"))
        with open(os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb"), "wb") as f:
            f.write(f"stats of {split}".encode())
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "serving")))
    inputs = {"model": [model], "model_blessing": [blessing], "statistics": [statistics]}
    Executor().Do(inputs, {"pushed_model": [pushed]}, {"push_destination": proto_utils.proto_to_json(destination)})

    version_dir = pushed.get_string_custom_property("pushed_destination")
    record = serving_dir.read_training_data(version_dir)
    assert record["span"] == 3 and record["statistics_uri"] == statistics.uri
    with open(os.path.join(version_dir, serving_dir.TRAINING_STATISTICS_DIR, "Split-eval", "FeatureStats.pb")) as f:
        assert f.read() == "stats of eval"
    # The same model again, with other training data beside it, is still the same model: no new version.
    with open(os.path.join(statistics.uri, "Split-train", "FeatureStats.pb"), "wb") as f:
        f.write(b"other statistics")
    again = standard_artifacts.PushedModel()
    again.uri = str(tmp_path / "Pusher" / "pushed_model" / "10")
    os.makedirs(again.uri)
    Executor().Do(inputs, {"pushed_model": [again]}, {"push_destination": proto_utils.proto_to_json(destination)})
    assert again.get_int_custom_property("new_version") == 0
    assert serving_dir.complete_versions(str(tmp_path / "serving")) == [int(os.path.basename(version_dir))]


def test_the_training_data_record_comes_from_the_model_cards_lineage():
    from components.pusher.executor import training_data_record

    lineage = {"span": 2, "spans": [{"span": 2, "folder": "span-2"}], "input_fingerprint": "span:2,...",
               "training_fingerprint": "abc", "examples": "/p/Examples/4", "pipeline_name": "x"}
    record = training_data_record({"reproduce": {"lineage": lineage}}, None)
    assert record == {k: v for k, v in lineage.items() if k != "pipeline_name"}
    assert training_data_record(None, None)["input_fingerprint"] is None
