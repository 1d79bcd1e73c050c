"""`deep-emotion ingest`: counts and paths printed, clean errors, nothing half-done."""
import os

from click.testing import CliRunner

from deep_emotion.cli.ingest import command as ingest


def _root_with(data_root, bad_row=False):
    rows = [f"{i},{data_root.text(data_root.pixels())},{usage}"
            for i, usage in enumerate(["Training", "Training", "PublicTest", "PrivateTest"])]
    if bad_row:
        rows.append("3,1 2 3,Training")
    data_root.write("fer2013.csv", "emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    data_root.write("test.csv", "pixels\n" + f"{data_root.text(data_root.pixels())}\n" * 2)
    for subject in range(3):
        data_root.image(f"CK+48/happy/S00{subject}_001_00000001.png")


def test_ingest_prints_counts_per_source_split_and_class_and_where_files_went(data_root, tmp_path):
    _root_with(data_root)
    out = tmp_path / "converted"
    result = CliRunner().invoke(ingest, ["--data-root", data_root.path, "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "source   split  angry  disgust  fear  happy  sad  surprise  neutral  total" in lines
    assert "fer2013  train      1        1     0      0    0         0        0      2" in lines
    assert "fer2013  eval       0        0     1      0    0         0        0      1" in lines
    assert "fer2013  test       0        0     0      1    0         0        0      1" in lines
    assert sum(int(line.split()[-1]) for line in lines if line.startswith("ckplus")) == 3
    assert "excluded  fer2013: 2 (test.csv: unlabelled (no emotion column), not ingested)" in lines
    for split, count in (("train", 3), ("eval", 2), ("test", 2)):  # 3 CK+ subjects: one per split
        assert f"{split:5}  {count:>7} examples -> {out}/Split-{split}/" in lines
        assert any(name.endswith(".gz") for name in os.listdir(out / f"Split-{split}"))
    assert f"summary            -> {out}/ingest_summary.json" in lines
    assert sorted(os.listdir(tmp_path)) == ["converted", "data"]  # the staging folder was renamed


def test_ingest_failure_shows_the_defect_not_a_traceback_and_writes_nothing(data_root, tmp_path):
    _root_with(data_root, bad_row=True)
    out = tmp_path / "converted"
    result = CliRunner().invoke(ingest, ["--data-root", data_root.path, "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Ingesting {data_root.path} failed, nothing was written: "
                                    "1 bad record(s), over the bad-record budget of 0:\n"
                                    f"  {data_root.path}/fer2013.csv line 6: 3 pixel values, expected 2304\n")
    assert "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path)) == ["data"]  # no output, no staging folder left behind

    result = CliRunner().invoke(ingest, ["--data-root", data_root.path, "--out", str(out),
                                         "--bad-record-budget", "1"])
    assert result.exit_code == 0, result.output
    assert f"quarantine (  1) -> {out}/quarantine.jsonl" in result.output.splitlines()


def test_ingest_refuses_to_replace_an_existing_output_unless_asked(data_root, tmp_path):
    _root_with(data_root)
    out = tmp_path / "converted"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = CliRunner().invoke(ingest, ["--data-root", data_root.path, "--out", str(out)])
    assert result.exit_code == 1 and "exists and is not empty; pass --overwrite" in result.output
    assert (out / "keep.txt").read_text() == "mine"


def test_ingest_reads_the_spans_the_pipeline_would_read_from_its_settings(data_root, tmp_path):
    """With DEEP_EMOTION_SPAN_PATTERN set (dated folders), `deep-emotion ingest` used to look for
    span-N folders, read the whole root, and fail on FER2013 twice."""
    for day, usage_rows in (("2026-12-01", 2), ("2026-12-02", 3)):
        rows = [f"0,{data_root.text(data_root.pixels())},{usage}"
                for usage in ["Training"] * usage_rows + ["PublicTest", "PrivateTest"]]
        data_root.write(f"{day}/fer2013.csv", "emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    out = tmp_path / "converted"
    result = CliRunner().invoke(ingest, ["--data-root", data_root.path, "--out", str(out)],
                                env={"DEEP_EMOTION_SPAN_PATTERN": "{YYYY}-{MM}-{DD}", "DEEP_EMOTION_NUM_SPANS": "1"})
    assert result.exit_code == 0, result.output
    assert "fer2013  train      3" in result.output  # the latest day's 3 Training rows only
    assert "2026-12-02/" in result.output
