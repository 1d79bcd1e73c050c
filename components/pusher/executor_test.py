"""Pushes into a TF Serving base directory: whole versions, increasing, no duplicates."""
import os

from components.pusher import executor


def _model(path, content):
    os.makedirs(os.path.join(path, "variables"), exist_ok=True)
    with open(os.path.join(path, "variables", "variables.data-00000-of-00001"), "w") as f:
        f.write(content)
    with open(os.path.join(path, "saved_model.pb"), "w") as f:
        f.write("graph")
    return str(path)


def test_push_creates_numbered_version_with_every_file(tmp_path):
    model = _model(tmp_path / "m1", "weights-1")
    version, new = executor.push(model, str(tmp_path / "serving"), now=1000)
    assert (version, new) == ("1000", True)
    assert sorted(os.listdir(tmp_path / "serving")) == ["1000"]  # no staging directory left behind
    assert executor.saved_model_digest(str(tmp_path / "serving" / "1000")) == executor.saved_model_digest(model)


def test_identical_model_is_not_pushed_twice(tmp_path):
    model = _model(tmp_path / "m1", "weights-1")
    executor.push(model, str(tmp_path / "serving"), now=1000)
    assert executor.push(model, str(tmp_path / "serving"), now=2000) == ("1000", False)
    assert executor.serving_versions(str(tmp_path / "serving")) == [1000]


def test_versions_strictly_increase_within_one_second(tmp_path):
    executor.push(_model(tmp_path / "m1", "a"), str(tmp_path / "serving"), now=1000)
    version, new = executor.push(_model(tmp_path / "m2", "b"), str(tmp_path / "serving"), now=1000)
    assert (version, new) == ("1001", True)


def test_leftover_staging_from_a_crash_is_replaced_and_never_served(tmp_path):
    base = tmp_path / "serving"
    (base / ".incomplete-1000" / "junk").mkdir(parents=True)
    executor.push(_model(tmp_path / "m1", "a"), str(base), now=1000)
    assert sorted(os.listdir(base)) == ["1000"]
    assert executor.serving_versions(str(base)) == [1000]
    assert not (base / "1000" / "junk").exists()
