"""Pushes into a TF Serving base directory: whole versions, increasing, no duplicates, and the
served version found the same way by everyone who looks."""
import os

import pytest

from components.pusher import serving_dir
from contract import publish


def test_push_creates_numbered_version_with_every_file(tmp_path, fake_saved_model):
    model = fake_saved_model(tmp_path / "m1", "weights-1")
    version, new = serving_dir.push(model, str(tmp_path / "serving"), now=1000)
    assert (version, new) == ("1000", True)
    assert sorted(os.listdir(tmp_path / "serving")) == ["1000"]  # no staging directory left behind
    assert serving_dir.saved_model_digest(str(tmp_path / "serving" / "1000")) == serving_dir.saved_model_digest(model)


def test_identical_model_is_not_pushed_twice(tmp_path, fake_saved_model):
    model = fake_saved_model(tmp_path / "m1", "weights-1")
    serving_dir.push(model, str(tmp_path / "serving"), now=1000)
    assert serving_dir.push(model, str(tmp_path / "serving"), now=2000) == ("1000", False)
    assert serving_dir.versions(str(tmp_path / "serving")) == [1000]


def test_versions_strictly_increase_within_one_second(tmp_path, fake_saved_model):
    serving_dir.push(fake_saved_model(tmp_path / "m1", "a"), str(tmp_path / "serving"), now=1000)
    version, new = serving_dir.push(fake_saved_model(tmp_path / "m2", "b"), str(tmp_path / "serving"), now=1000)
    assert (version, new) == ("1001", True)


def test_staging_of_a_killed_push_is_removed_and_never_served(tmp_path, fake_saved_model):
    base = tmp_path / "serving"
    dead_pid = 2 ** 22 + 17  # above Linux's pid_max default: no such process
    stale = base / f".1000.partial-{dead_pid}-deadbeef"
    (stale / "variables").mkdir(parents=True)
    live = base / f".999.partial-{os.getpid()}-cafecafe"  # a push still running in this process
    live.mkdir()
    serving_dir.push(fake_saved_model(tmp_path / "m1", "a"), str(base), now=1000)
    assert sorted(os.listdir(base)) == [live.name, "1000"]
    assert serving_dir.versions(str(base)) == [1000]


def test_a_push_that_loses_the_race_for_a_number_takes_the_next(tmp_path, fake_saved_model, monkeypatch):
    base = tmp_path / "serving"
    other = fake_saved_model(tmp_path / "other", "pushed by a concurrent run")
    real_staged = publish.staged

    def staged_after_a_concurrent_push(final, replace=True):
        if os.path.basename(final) == "1000" and not os.path.exists(final):
            real_copy = serving_dir.io_utils.copy_dir
            real_copy(other, str(final))  # the other run publishes 1000 while this one stages it
        return real_staged(final, replace)

    monkeypatch.setattr(publish, "staged", staged_after_a_concurrent_push)
    version, new = serving_dir.push(fake_saved_model(tmp_path / "mine", "mine"), str(base), now=1000)
    assert (version, new) == ("1001", True)
    assert serving_dir.saved_model_digest(str(base / "1000")) == serving_dir.saved_model_digest(other)
    assert serving_dir.newest_complete_version(str(base)) == 1001


def test_served_version_is_the_newest_complete_one(tmp_path, fake_saved_model):
    base = tmp_path / "serving"
    fake_saved_model(base / "1000", "complete")
    os.makedirs(base / "2000" / "variables")  # an object-store push in progress: no saved_model.pb yet
    os.makedirs(base / ".3000.partial-1-abc")
    assert serving_dir.newest_complete_version(str(base)) == 1000
    assert serving_dir.resolve_model_dir(str(base)) == str(base / "1000")
    assert serving_dir.resolve_model_dir(str(base / "1000")) == str(base / "1000")
    with pytest.raises(FileNotFoundError, match="neither a SavedModel nor a serving directory"):
        serving_dir.resolve_model_dir(str(tmp_path / "m"))
