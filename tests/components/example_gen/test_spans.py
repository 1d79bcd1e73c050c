"""Span folders: which exist, which a run ingests (TFX's RangeConfig), their fingerprint, one plan over several."""
import os

import pytest
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import range_config_pb2

from components.example_gen import spans
from components.example_gen.records import IngestError
from components.example_gen.spans import Span, SpanPatternError


def _folders(root, *names):
    for name in names:
        os.makedirs(os.path.join(root, name), exist_ok=True)


def test_span_folders_are_found_by_number_and_entries_outside_them_are_named(tmp_path):
    root = str(tmp_path)
    _folders(root, "span-2", "span-10", "span-1", "span-x", "archive")
    (tmp_path / "span-3").write_text("a file, not a span folder")
    (tmp_path / "README.txt").write_text("")
    assert spans.list_spans(root, "span-{SPAN}") == [Span(1, "span-1"), Span(2, "span-2"), Span(10, "span-10")]
    resolution = spans.resolve(root)
    assert resolution.spans == (Span(10, "span-10"),) and resolution.span == 10
    assert resolution.outside == ("README.txt", "archive/", "span-3", "span-x/")
    assert resolution.describe() == "span 10 (span-10/)"


def test_dated_span_folders_number_days_since_the_epoch_as_tfx_does(tmp_path):
    root = str(tmp_path)
    _folders(root, "2024-06-01", "2024-06-03", "2024-6-2")
    found = spans.list_spans(root, "{YYYY}-{MM}-{DD}")
    assert found == [Span(example_gen_utils.date_to_span_number(2024, 6, 1), "2024-06-01"),
                     Span(example_gen_utils.date_to_span_number(2024, 6, 3), "2024-06-03")]
    _folders(root, "2024-13-01")
    with pytest.raises(SpanPatternError, match="2024-13-01/ is not a valid date"):
        spans.list_spans(root, "{YYYY}-{MM}-{DD}")
    os.rmdir(os.path.join(root, "2024-13-01"))
    _folders(root, "1969-12-31")  # span -1: no range would ever read it
    with pytest.raises(SpanPatternError, match="1969-12-31/ is dated before 1970-01-01"):
        spans.list_spans(root, "{YYYY}-{MM}-{DD}")


def test_nested_and_width_patterns(tmp_path):
    root = str(tmp_path)
    _folders(root, "batches/span-007", "batches/span-7000", "batches/span-08")
    assert spans.list_spans(root, "batches/span-{SPAN:3}") == [Span(7, "batches/span-007")]


def test_two_folders_of_one_span_fail_naming_both(tmp_path):
    _folders(str(tmp_path), "span-1", "span-01")
    with pytest.raises(SpanPatternError, match="span 1 is in more than one folder .*: span-01, span-1"):
        spans.resolve(str(tmp_path))


@pytest.mark.parametrize("pattern", ["span", "{SPAN}-{SPAN}", "{YYYY}-{MM}", "{SPAN}/{YYYY}-{MM}-{DD}",
                                     "{SPAN}/v{VERSION}", "span-*-{SPAN}"])
def test_patterns_tfx_would_not_accept_are_refused(tmp_path, pattern):
    with pytest.raises(SpanPatternError, match="span pattern"):
        spans.list_spans(str(tmp_path), pattern)


def test_range_config_picks_spans_as_tfx_rolling_and_static_ranges_do():
    found = [Span(1, "span-1"), Span(2, "span-2"), Span(5, "span-5")]
    assert spans.select(found) == (Span(5, "span-5"),)
    assert spans.select(found, spans.rolling_range(2)) == (Span(2, "span-2"), Span(5, "span-5"))
    assert spans.select(found, spans.rolling_range(9)) == tuple(found)  # fewer present: all of them
    rolling = range_config_pb2.RangeConfig(rolling_range=range_config_pb2.RollingRange(num_spans=3,
                                                                                       start_span_number=2))
    assert spans.select(found, rolling) == (Span(2, "span-2"), Span(5, "span-5"))
    static = range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(start_span_number=1,
                                                                                    end_span_number=2))
    assert spans.select(found, static) == (Span(1, "span-1"), Span(2, "span-2"))
    static.static_range.start_span_number, static.static_range.end_span_number = 3, 4
    with pytest.raises(SpanPatternError, match="no span in the static range 3-4; the spans present are 1, 2, 5"):
        spans.select(found, static)


def test_fingerprint_follows_the_chosen_spans_files_only(data_root):
    data_root.image("span-1/CK+48/anger/S001_001_00000001.png")
    data_root.image("span-2/CK+48/anger/S002_001_00000001.png")
    latest = spans.resolve(data_root.path)
    window = spans.resolve(data_root.path, range_config=spans.rolling_range(2))
    assert latest.input_fingerprint.startswith("span:2,data_root:")
    assert window.input_fingerprint.splitlines()[0].startswith("span:1,")

    data_root.image("span-1/CK+48/anger/S001_001_00000001.png", size=(40, 40))  # an older span changes
    assert spans.resolve(data_root.path).input_fingerprint == latest.input_fingerprint
    assert spans.resolve(data_root.path, range_config=spans.rolling_range(2)).input_fingerprint \
        != window.input_fingerprint
    data_root.image("span-2/CK+48/anger/S002_001_00000001.png", size=(40, 40))  # the latest one, deep inside
    assert spans.resolve(data_root.path).input_fingerprint != latest.input_fingerprint


def test_a_root_without_span_folders_is_one_whole_root_as_before(data_root):
    data_root.image("CK+48/anger/S001_001_00000001.png")
    resolution = spans.resolve(data_root.path)
    assert resolution.spans == () and resolution.span == spans.WHOLE_ROOT and resolution.outside == ()
    assert resolution.input_fingerprint == spans.fingerprint_data_root(data_root.path)
    assert spans.resolve(data_root.path, pattern="").spans == ()


def test_span_numbers_arrive_as_ints_locally_and_as_text_on_kubeflow():
    assert [spans.span_number(v) for v in (3, "3", "3.0", None, "")] == [3, 3, 3, 0, 0]
    assert spans.from_json(spans.to_json([Span(2, "span-2")])) == (Span(2, "span-2"),)
    assert spans.from_json(None) == ()


def _ckplus(data_root, span, subjects):
    for subject, count in subjects.items():
        for i in range(count):
            data_root.image(f"{span}/CK+48/happy/{subject}_001_{i:08d}.png")


def test_a_window_of_spans_is_ingested_in_one_pass_with_each_person_in_one_split(data_root, ingest):
    """Subjects appear in both spans with different counts: planned per span, some would change split."""
    _ckplus(data_root, "span-1", {f"S{i:03d}": 1 + i % 3 for i in range(12)})
    _ckplus(data_root, "span-2", {f"S{i:03d}": 3 - i % 3 for i in range(12)})
    data_root.image("span-2/CK+48/happy/S050_001_00000001.png")
    (os.makedirs(os.path.join(data_root.path, "incoming"), exist_ok=True))

    latest = ingest(data_root.path)
    assert latest.summary["spans"] == [{"span": 2, "folder": "span-2"}]
    assert sum(latest.summary["examples"]["by_split"].values()) == sum(3 - i % 3 for i in range(12)) + 1
    ids = [e["image_id"] for split in latest.examples.values() for e in split]
    assert all(i.startswith("span-2/CK+48/happy/") for i in ids)
    assert any("not read: incoming/" in note for note in latest.summary["notes"])

    window = ingest(data_root.path, num_spans=2)
    assert [s["folder"] for s in window.summary["spans"]] == ["span-1", "span-2"]
    by_subject = {}
    for split, examples in window.examples.items():
        for e in examples:
            by_subject.setdefault(e["subject"], set()).add(split)
    assert len(by_subject) == 13 and all(len(splits) == 1 for splits in by_subject.values()), by_subject
    assert {e["image_id"].split("/")[0] for split in window.examples.values() for e in split} == {"span-1", "span-2"}
    assert window.summary["datasets"][0].startswith("span-1/CK+48/")


def test_datasets_are_found_by_content_inside_each_span_folder(data_root, ingest):
    """A span folder may itself be the dataset (CK+48's class folders right under span-1/), or hold
    it at any depth (span-2/downloads/faces/CK+48/): each span is a data root of its own."""
    for i in range(2):
        data_root.image(f"span-1/happy/S001_001_{i:08d}.png")
    _ckplus(data_root, "span-2/downloads/faces", {"S002": 3})

    window = ingest(data_root.path, num_spans=2)
    assert window.summary["datasets"] == ["span-1/: CK+48 crops (2 images)",
                                          "span-2/downloads/faces/CK+48/: CK+48 crops (3 images)"]
    ids = sorted(e["image_id"] for split in window.examples.values() for e in split)
    assert ids == [f"span-1/happy/S001_001_{i:08d}.png" for i in range(2)] + [
        f"span-2/downloads/faces/CK+48/happy/S002_001_{i:08d}.png" for i in range(3)]


def test_fingerprint_does_not_walk_a_symlink_out_of_the_root(tmp_path):
    """It used to follow a link to / (or /usr) through the whole file system before planning refused
    the link, and crashed on files that vanished meanwhile (/proc)."""
    root, outside = tmp_path / "data", tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "big.bin").write_bytes(b"x" * 1000)
    root.mkdir()
    (root / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    os.symlink(outside, root / "elsewhere")
    before = spans.fingerprint_data_root(str(root))
    assert "num_files:2," in before  # fer2013.csv, and the link itself
    (outside / "deep" / "big.bin").write_bytes(b"y" * 2000)  # behind the link: not part of the input
    assert spans.fingerprint_data_root(str(root)) == before


def test_dated_folders_without_a_span_pattern_for_them_are_named_as_such(data_root, ingest):
    """Read whole (the default pattern is span-{SPAN}): the summary and an error say the folders look
    like spans and which setting reads them as spans; nothing else would tell the user that no drift
    check runs between them."""
    data_root.image("2026-12-01/jaffe/KA.HA1.1.tiff", format="TIFF")
    data_root.image("2026-12-02/CK+48/happy/S001_001_00000001.png")
    run = ingest(data_root.path, bad_record_budget=0, split_fractions=(1.0, 0.0, 0.0))
    [note] = [n for n in run.summary["notes"] if "look like span folders" in n]
    assert note.startswith("2026-12-01/, 2026-12-02/ look like span folders but do not match the span pattern "
                           "'span-{SPAN}'") and "DEEP_EMOTION_SPAN_PATTERN" in note
    data_root.write("2026-12-01/fer2013.csv", "emotion,pixels,Usage\n")
    data_root.write("2026-12-02/fer2013.csv", "emotion,pixels,Usage\n")
    with pytest.raises(IngestError, match=r"(?s)holds FER2013 twice.*Note: 2026-12-01/, 2026-12-02/ look like span"):
        ingest(data_root.path)


def test_with_a_ready_marker_a_span_still_being_written_waits_for_a_later_run(data_root, tmp_path):
    """Hadoop's _SUCCESS convention: the job delivering a span writes the marker last. Without it the
    latest folder is read as it is, half-copied or not."""
    from components.example_gen.options import IngestOptions
    from components.example_gen.standalone import run_executor

    _ckplus(data_root, "span-1", {"S001": 2, "S002": 2})
    _ckplus(data_root, "span-2", {"S003": 2, "S004": 2})
    _ckplus(data_root, "span-3", {"S005": 1})  # still being copied: no marker yet
    for folder in ("span-1", "span-2"):
        data_root.write(f"{folder}/_SUCCESS", "")
    assert spans.resolve(data_root.path).spans == (Span(3, "span-3"),)
    resolution = spans.resolve(data_root.path, ready_marker="_SUCCESS")
    assert resolution.spans == (Span(2, "span-2"),) and resolution.waiting == (Span(3, "span-3"),)
    window = spans.resolve(data_root.path, spans.DEFAULT_PATTERN, spans.rolling_range(2), "_SUCCESS")
    assert window.folders == ["span-1", "span-2"]

    summary = run_executor(data_root.path, str(tmp_path / "out"), IngestOptions(split_fractions=(1.0, 0.0, 0.0)),
                           span_ready_marker="_SUCCESS")
    assert summary["spans"] == [{"span": 2, "folder": "span-2"}]
    assert sum(summary["examples"]["by_split"].values()) == 4
    assert "span folders not complete yet (no _SUCCESS), not read: span 3 (span-3/)" in summary["notes"]
    assert not [entry for entry in summary["unrecognised"] if "_SUCCESS" in entry]  # the flag is not data

    data_root.write("span-3/_SUCCESS", "")  # the copy finished
    assert spans.resolve(data_root.path, ready_marker="_SUCCESS").spans == (Span(3, "span-3"),)


def test_no_complete_span_stops_the_run_instead_of_reading_the_whole_root(data_root):
    _ckplus(data_root, "span-1", {"S001": 1})
    with pytest.raises(IngestError, match=r"no span folder under .* holds the ready marker _SUCCESS yet \(span-1/\)"):
        spans.resolve(data_root.path, ready_marker="_SUCCESS")


def test_a_static_range_with_a_span_still_being_written_stops_instead_of_reading_part_of_it(data_root):
    for number in (1, 2, 3):
        _ckplus(data_root, f"span-{number}", {f"S00{number}": 1})
    data_root.write("span-1/_SUCCESS", "")
    data_root.write("span-3/_SUCCESS", "")
    static = range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
        start_span_number=1, end_span_number=3))
    with pytest.raises(IngestError, match=r"static span range 1-3 holds span folders not complete yet "
                                          r"\(no _SUCCESS\): span-2/"):
        spans.resolve(data_root.path, spans.DEFAULT_PATTERN, static, "_SUCCESS")
    static.static_range.end_span_number = 1  # the waiting span is outside this one
    assert spans.resolve(data_root.path, spans.DEFAULT_PATTERN, static, "_SUCCESS").spans == (Span(1, "span-1"),)
    data_root.write("span-2/_SUCCESS", "")
    static.static_range.end_span_number = 3
    assert spans.resolve(data_root.path, spans.DEFAULT_PATTERN, static, "_SUCCESS").folders == [
        "span-1", "span-2", "span-3"]


@pytest.mark.parametrize("marker", ["done/_SUCCESS", " _SUCCESS", "..", "a\\b"])
def test_a_ready_marker_must_be_a_plain_file_name(data_root, marker):
    _ckplus(data_root, "span-1", {"S001": 1})
    with pytest.raises(SpanPatternError, match="span ready marker"):
        spans.resolve(data_root.path, ready_marker=marker)


def test_a_folder_named_as_the_marker_does_not_make_a_span_ready(data_root):
    _ckplus(data_root, "span-1", {"S001": 1})
    data_root.write("span-1/_SUCCESS", "")
    _ckplus(data_root, "span-2", {"S002": 1})
    os.makedirs(os.path.join(data_root.path, "span-2", "_SUCCESS"))
    resolution = spans.resolve(data_root.path, ready_marker="_SUCCESS")
    assert resolution.spans == (Span(1, "span-1"),) and resolution.waiting == (Span(2, "span-2"),)


def test_a_marker_set_for_a_root_without_span_folders_is_named_not_silently_ignored(data_root, tmp_path):
    from components.example_gen.options import IngestOptions
    from components.example_gen.standalone import run_executor

    for i in range(2):
        data_root.image(f"CK+48/happy/S001_001_{i:08d}.png")
    data_root.write("_SUCCESS", "")
    summary = run_executor(data_root.path, str(tmp_path / "out"), IngestOptions(split_fractions=(1.0, 0.0, 0.0)),
                           span_ready_marker="_SUCCESS")
    assert summary["spans"] == [] and sum(summary["examples"]["by_split"].values()) == 2
    assert any(note.startswith("the span ready marker _SUCCESS is set, but no folder of the data root matches "
                               "the span pattern 'span-{SPAN}'") for note in summary["notes"]), summary["notes"]
    assert not [entry for entry in summary["unrecognised"] if "_SUCCESS" in entry]
