"""Pushes into a TF Serving base directory: whole versions, increasing, no duplicates, and the
served version found the same way by everyone who looks."""
import multiprocessing
import os
import signal
import time

import pytest

from components.pusher import serving_dir
from contract import publish


def _entries(base):
    """What TF Serving would look at: everything in the base dir but the push lock."""
    return sorted(name for name in os.listdir(base) if name != serving_dir._LOCK_FILE)


def test_push_creates_numbered_version_with_every_file(tmp_path, fake_saved_model):
    model = fake_saved_model(tmp_path / "m1", "weights-1")
    version, new = serving_dir.push(model, str(tmp_path / "serving"), now=1000)
    assert (version, new) == ("1000", True)
    assert _entries(tmp_path / "serving") == ["1000"]  # no staging directory left behind
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
    assert _entries(base) == [live.name, "1000"]
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


def _push_in_a_process(model, base, ready, go, delay):
    real_copy = serving_dir.io_utils.copy_dir

    def slow_copy(*args, **kwargs):  # a copy long enough for the next push to start meanwhile
        time.sleep(2.0)
        real_copy(*args, **kwargs)

    serving_dir.io_utils.copy_dir = slow_copy
    ready.set()
    go.wait()
    time.sleep(delay)
    serving_dir.push(model, base)


def _pushes_at_once(models, base):
    """Every model pushed by its own process, each starting 1.1 s after the one before (another
    version number) while that one is still copying."""
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    readies = [context.Event() for _ in models]
    processes = [context.Process(target=_push_in_a_process, args=(m, base, r, go, 1.1 * i))
                 for i, (m, r) in enumerate(zip(models, readies))]
    for process in processes:
        process.start()
    for ready in readies:
        assert ready.wait(60)
    go.set()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0


def test_the_same_model_pushed_by_two_processes_at_once_is_published_once(tmp_path, fake_saved_model):
    model = fake_saved_model(tmp_path / "m", "weights")
    base = str(tmp_path / "serving")
    _pushes_at_once([model, model], base)
    assert _entries(base) == [str(serving_dir.newest_complete_version(base))]


def test_different_models_pushed_at_once_each_become_a_complete_version(tmp_path, fake_saved_model):
    models = [fake_saved_model(tmp_path / f"m{i}", f"weights {i}") for i in range(2)]
    base = str(tmp_path / "serving")
    _pushes_at_once(models, base)
    published = sorted(serving_dir.saved_model_digest(os.path.join(base, v)) for v in _entries(base))
    assert published == sorted(serving_dir.saved_model_digest(m) for m in models)  # none lost, none twice


def _push_slowly(model, base, copying):
    """A push whose copy stalls halfway (after the first file) until the process is killed."""
    real_copy = serving_dir.io_utils.copy_dir

    def copy_then_stall(source, destination, **kwargs):
        real_copy(source, destination, **kwargs)
        copying.set()
        time.sleep(600)

    serving_dir.io_utils.copy_dir = copy_then_stall
    serving_dir.push(model, base)


def test_a_push_killed_midway_leaves_only_complete_versions_and_the_next_push_cleans_up(tmp_path, fake_saved_model):
    base = str(tmp_path / "serving")
    serving_dir.push(fake_saved_model(tmp_path / "old", "served"), base, now=1000)
    context = multiprocessing.get_context("spawn")
    copying = context.Event()
    pusher = context.Process(target=_push_slowly, args=(fake_saved_model(tmp_path / "new", "new"), base, copying))
    pusher.start()
    assert copying.wait(60)
    os.kill(pusher.pid, signal.SIGKILL)
    pusher.join(10)
    left = _entries(base)
    assert left[-1] == "1000" and len(left) == 2 and left[0].startswith(".")  # its staging, hidden
    assert serving_dir.newest_complete_version(base) == 1000  # what TF Serving serves: the old model
    version, new = serving_dir.push(fake_saved_model(tmp_path / "next", "next"), base)
    assert new and _entries(base) == ["1000", version]  # the lock was released by the kernel; staging gone
