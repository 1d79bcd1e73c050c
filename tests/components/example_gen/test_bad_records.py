"""Bad input: each defect named with its file and line (or image path); fail by default,
quarantine with a budget; nothing half-done."""
import io
import os
import struct
import zlib

import pytest
from PIL import Image

from components.example_gen.data_root import plan_ingestion
from components.example_gen.options import IngestOptions
from components.example_gen.records import IngestError
from contract.data import IMAGE_ID, SPLITS


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (a decompression bomb needs no real pixels)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bad_root(tmp_path_factory, new_data_root):
    """A data root where every kind of defect occurs once, next to a few good records.

    Returns (root, expected rejects as (path, line, defect fragment), image ids that must be ingested).
    """
    base = tmp_path_factory.mktemp("bad")
    root = new_data_root(str(base / "data"))
    good, short, letters, too_bright = (root.pixels() for _ in range(4))
    letters = root.text(letters).split()
    letters[4] = "x7"
    too_bright[9] = 256
    rows = root.write("rows/fer2013.csv", "\n".join([
        "emotion,pixels,Usage",
        f"0,{root.text(good)},Training",                 # 2 good
        f"1,{root.text(short[:-1])},Training",           # 3 one pixel short
        f"2,{' '.join(letters)},Training",               # 4 non-numeric
        f"3,{root.text(too_bright)},PublicTest",         # 5 pixel 256
        f"7,{root.text(good)},Training",                 # 6 label outside the map
        f"4,{root.text(good)},Validation",               # 7 unknown Usage
        f"5,{root.text(good)},PrivateTest"]))            # 8 good, complete without a newline
    # A file cut mid-row or holding a header only loses the rest of it: no budget excuses that
    # (test_archive_and_csv_hardening.py), so neither is here.

    root.image("CK+48/anger/S010_001_00000001.png")
    buffer = io.BytesIO()
    Image.fromarray(root.rng.integers(0, 256, (48, 48), dtype="uint8")).save(buffer, format="PNG")
    corrupt = root.write("CK+48/anger/S011_001_00000001.png", buffer.getvalue()[:len(buffer.getvalue()) // 2])
    not_image = root.write("CK+48/anger/S012_001_00000001.png", "this is not a picture\n")
    bomb = root.write("CK+48/anger/S013_001_00000001.png", _png_claiming(6000, 5000))
    huge_bomb = root.write("CK+48/anger/S014_001_00000001.png", _png_claiming(100_000, 100_000))
    root.image("CK+48/confused/S015_001_00000001.png")
    root.image("jaffe/KA.HA1.2.tiff", size=(256, 256), format="TIFF")
    root.image("jaffe/KA.XX1.1.tiff", size=(256, 256), format="TIFF")
    outside = new_data_root(str(base / "elsewhere"))
    outside.image("face.tiff", format="TIFF")
    link = os.path.join(root.path, "jaffe", "KB.HA1.3.tiff")
    os.symlink(os.path.join(outside.path, "face.tiff"), link)
    root.image("FERG_DB_256/aia/aia_happy/aia_happy_1.png", mode="RGBA")

    join = lambda relative: os.path.join(root.path, relative)  # noqa: E731
    expected = [
        (rows, 3, "2303 pixel values, expected 2304"),
        (rows, 4, "pixel value 5 is not a number: 'x7'"),
        (rows, 5, "pixel value 10 is 256, outside 0..255"),
        (rows, 6, "emotion 7 is outside the label map (0 angry, 1 disgust"),
        (rows, 7, "Usage 'Validation' is not one of Training, PublicTest, PrivateTest"),
        (corrupt, None, "corrupt image (OSError: image file is truncated)"),
        (not_image, None, "not an image (Pillow cannot identify its format)"),
        (bomb, None, "decompression bomb: the header says 6000x5000 = 30,000,000 pixels"),
        (huge_bomb, None, "decompression bomb: Image size (10000000000 pixels) exceeds limit"),
        (join("CK+48/confused/S015_001_00000001.png"), None, "folder 'confused' is outside CK+48's label map"),
        (join("jaffe/KA.XX1.1.tiff"), None, "expression code 'XX' is outside JAFFE's label map"),
        (link, None, f"symlink leads outside the data root, to {os.path.join(outside.path, 'face.tiff')}"),
        (join("FERG_DB_256/aia/aia_happy/aia_happy_1.png"), None, "expression 'happy' is outside FERG's label map"),
    ]
    ingested = {"rows/fer2013.csv:2", "rows/fer2013.csv:8", "CK+48/anger/S010_001_00000001.png",
                "jaffe/KA.HA1.2.tiff"}
    return root.path, expected, ingested


def _where(path, line):
    return path if line is None else f"{path} line {line}"


def test_default_policy_fails_naming_every_defect_and_writes_nothing(bad_root, ingest_into, tmp_path):
    root, expected, _ = bad_root
    out = str(tmp_path / "out")
    with pytest.raises(IngestError) as failure:
        ingest_into(root, out)
    message = str(failure.value)
    assert message.startswith(f"Ingesting {root} failed, nothing was written: {len(expected)} bad record(s), "
                              "over the bad-record budget of 0:")
    for path, line, defect in expected:
        assert f"  {_where(path, line)}: {defect}" in message
    assert os.listdir(out) == []


def test_budget_quarantines_each_bad_record_with_its_reason(bad_root, ingest_into, tmp_path):
    root, expected, ingested = bad_root
    run = ingest_into(root, str(tmp_path / "out"), bad_record_budget=len(expected))
    quarantined = run.quarantine()  # JSON lines
    assert all(set(r) == {"source", "file", "line", "defect", "fatal"} for r in quarantined)
    assert len(quarantined) == len(expected) == run.summary["rejected"]["count"]
    by_place = {(r["file"], r["line"]): r["defect"] for r in quarantined}
    for path, line, defect in expected:
        assert defect in by_place[(path, line)]
    assert {e[IMAGE_ID] for split in SPLITS for e in run.examples[split]} == ingested
    assert run.summary["rejected"]["quarantine"] == "quarantine.jsonl"
    assert run.summary["examples"]["total"] == len(ingested)
    assert run.examples["eval"] == [] and "split 'eval' is empty" in run.summary["notes"]  # still a readable file


def test_one_bad_record_over_the_budget_fails(bad_root, ingest_into, tmp_path):
    root, expected, _ = bad_root
    with pytest.raises(IngestError, match=f"{len(expected)} bad record\\(s\\), over the bad-record budget of "
                                          f"{len(expected) - 1}"):
        ingest_into(root, str(tmp_path / "out"), bad_record_budget=len(expected) - 1)
    assert os.listdir(tmp_path / "out") == []


def test_ferplus_rows_out_of_step_fail_whatever_the_budget(data_root, ingest_into, tmp_path):
    data_root.write("fer2013.csv", "emotion,pixels,Usage\n" + "".join(
        f"3,{data_root.text(data_root.pixels())},Training\n" for _ in range(3)))
    data_root.write("fer2013new.csv", "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                                      "contempt,unknown,NF\n" + "Training,fer0.png,0,10,0,0,0,0,0,0,0,0\n" * 2)
    with pytest.raises(IngestError) as failure:
        ingest_into(data_root.path, str(tmp_path / "out"), use_ferplus_labels=True, bad_record_budget=100)
    assert "1 defect(s) that no bad-record budget excuses" in str(failure.value)
    assert (f"{data_root.path}/fer2013new.csv: has fewer data rows than {data_root.path}/fer2013.csv, which "
            "continues at line 4") in str(failure.value)


def test_a_root_with_nothing_recognised_is_an_error_naming_what_is_there(data_root):
    data_root.write("notes.txt", "hello")
    data_root.write("scores.csv", "name,score\nx,1\n")
    with pytest.raises(IngestError) as failure:
        plan_ingestion(data_root.path, IngestOptions())
    assert str(failure.value) == (
        f"nothing under {data_root.path} is a dataset this project reads (FER2013-family CSVs, FER2013's image "
        "folders (train/angry/Training_3908.jpg), CK+48/, CK+'s cohn-kanade-images/ + Emotion/, JAFFE, FERG-DB; "
        "folders or .zip/.tar/.tar.gz archives): notes.txt (not a "
        "dataset file); scores.csv (CSV with columns name,score)")


def test_ferplus_labels_asked_for_but_absent_is_an_error(data_root):
    data_root.write("fer2013.csv", f"emotion,pixels,Usage\n0,{data_root.text(data_root.pixels())},Training\n")
    with pytest.raises(IngestError, match="use_ferplus_labels is set but there is no fer2013new.csv under"):
        plan_ingestion(data_root.path, IngestOptions(use_ferplus_labels=True))


def test_a_run_left_with_no_examples_fails_even_within_the_budget(data_root, ingest_into, tmp_path):
    """Every record rejected (within the budget) or left out: an empty output would only fail later,
    at the data gate, without saying why."""
    data_root.write("CK+48/happy/S001_001_00000001.png", "this is not a picture\n")
    data_root.write("kaggle/test.csv", f"pixels\n{data_root.text(data_root.pixels())}\n")
    with pytest.raises(IngestError) as failure:
        ingest_into(data_root.path, str(tmp_path / "out"), bad_record_budget=5)
    assert ("failed, nothing was written: no examples: 1 bad record(s) within the budget of 5, 1 record(s) left "
            "out on purpose, nothing else:") in str(failure.value)
    assert "CK+48/happy/S001_001_00000001.png: not an image" in str(failure.value)
    assert "  1 left out: kaggle/test.csv: unlabelled (no emotion column), not ingested" in str(failure.value)
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("name, content, defect", [
    ("fer2013.csv", "emotion,Usage\n0,Training\n", "missing column(s) pixels: the header has emotion,Usage"),
    ("fer2013.csv", "emotion;pixels;Usage\n0;1 2;Training\n", "missing column(s) emotion, pixels, Usage"),
    ("icml_face_data.csv", "0,1 2,Training\n", "no header line: the first line is a row"),
])
def test_a_whole_file_that_cannot_be_read_fails_whatever_the_budget(data_root, ingest_into, tmp_path, name, content,
                                                                      defect):
    """Losing a whole file is not one bad record among many: with a budget it would vanish as '1 rejected'."""
    path = data_root.write(f"faces/{name}", content)
    data_root.image("CK+48/happy/S001_001_00000001.png")
    with pytest.raises(IngestError) as failure:
        ingest_into(data_root.path, str(tmp_path / "out"), bad_record_budget=100)
    assert "1 defect(s) that no bad-record budget excuses" in str(failure.value)
    assert f"  {path}: {defect}" in str(failure.value)
