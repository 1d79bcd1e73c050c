"""Outputs appear whole or not at all, and an interrupted replacement loses nothing."""
import os

import pytest

from contract import publish


def test_a_folder_appears_only_when_its_block_succeeds(tmp_path):
    final = tmp_path / "out"
    with publish.staged(final) as staging:
        staging.mkdir()
        (staging / "a.txt").write_text("a")
        assert not final.exists()
    assert (final / "a.txt").read_text() == "a"
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_a_failed_block_leaves_the_previous_output_and_no_staging(tmp_path):
    final = tmp_path / "data.csv"
    final.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with publish.staged(final) as staging:
            staging.write_text("half of the new")
            raise RuntimeError("disk full")
    assert final.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]


def test_replacing_a_folder_keeps_nothing_of_the_old_one(tmp_path):
    final = tmp_path / "CK+48"
    (final / "anger").mkdir(parents=True)
    (final / "anger" / "old.png").write_text("old")
    with publish.staged(final) as staging:
        (staging / "happy").mkdir(parents=True)
    assert sorted(os.listdir(final)) == ["happy"]
    assert sorted(os.listdir(tmp_path)) == ["CK+48"]


def test_a_crash_between_the_two_renames_is_repaired_on_the_next_call(tmp_path):
    final = tmp_path / "out"
    (final / "v1").mkdir(parents=True)
    os.rename(final, tmp_path / ".out.old")  # interrupted: old set aside, new not yet in place
    publish.recover(final)
    assert sorted(os.listdir(final)) == ["v1"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_without_replace_an_existing_output_is_never_overwritten(tmp_path):
    final = tmp_path / "1000"
    final.mkdir()
    (final / "saved_model.pb").write_text("first")
    with pytest.raises(FileExistsError):
        with publish.staged(final, replace=False) as staging:
            staging.mkdir()
    with pytest.raises(FileExistsError, match="another writer published it first"):
        staging = publish.staging_path(tmp_path / "2000")
        staging.mkdir()
        (staging / "saved_model.pb").write_text("second")
        (tmp_path / "2000").mkdir()
        (tmp_path / "2000" / "saved_model.pb").write_text("won the race")
        publish.publish(staging, tmp_path / "2000", replace=False)
    assert (final / "saved_model.pb").read_text() == "first"
    assert (tmp_path / "2000" / "saved_model.pb").read_text() == "won the race"


def test_stale_staging_is_the_one_whose_writer_is_gone(tmp_path):
    dead = tmp_path / f".out.partial-{2 ** 22 + 17}-aaaa"
    alive = tmp_path / f".out.partial-{os.getpid()}-bbbb"
    dead.mkdir()
    alive.mkdir()
    assert publish.stale_staging(tmp_path) == [dead]
    publish.recover(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name]
