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
