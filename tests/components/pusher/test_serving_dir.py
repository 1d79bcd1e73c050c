"""Pushes into a TF Serving base directory: whole versions, increasing, no duplicates."""
import os

from components.pusher import executor



def test_push_creates_numbered_version_with_every_file(tmp_path, fake_saved_model):
    model = fake_saved_model(tmp_path / "m1", "weights-1")
    version, new = executor.push(model, str(tmp_path / "serving"), now=1000)
    assert (version, new) == ("1000", True)
    assert sorted(os.listdir(tmp_path / "serving")) == ["1000"]  # no staging directory left behind
    assert executor.saved_model_digest(str(tmp_path / "serving" / "1000")) == executor.saved_model_digest(model)


def test_identical_model_is_not_pushed_twice(tmp_path, fake_saved_model):
    model = fake_saved_model(tmp_path / "m1", "weights-1")
    executor.push(model, str(tmp_path / "serving"), now=1000)
    assert executor.push(model, str(tmp_path / "serving"), now=2000) == ("1000", False)
    assert executor.serving_versions(str(tmp_path / "serving")) == [1000]


def test_versions_strictly_increase_within_one_second(tmp_path, fake_saved_model):
    executor.push(fake_saved_model(tmp_path / "m1", "a"), str(tmp_path / "serving"), now=1000)
    version, new = executor.push(fake_saved_model(tmp_path / "m2", "b"), str(tmp_path / "serving"), now=1000)
    assert (version, new) == ("1001", True)


def test_leftover_staging_from_a_crash_is_replaced_and_never_served(tmp_path, fake_saved_model):
    base = tmp_path / "serving"
    (base / ".incomplete-1000" / "junk").mkdir(parents=True)
    executor.push(fake_saved_model(tmp_path / "m1", "a"), str(base), now=1000)
    assert sorted(os.listdir(base)) == ["1000"]
    assert executor.serving_versions(str(base)) == [1000]
    assert not (base / "1000" / "junk").exists()
