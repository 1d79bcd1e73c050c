"""FER2013 as Kaggle's image download ships it (train/angry/Training_10118481.jpg,
test/happy/PrivateTest_95094.jpg): the same faces, labels and splits as fer2013.csv gives them.

The download is made here from the demo fer2013.csv, one image per row, so what the images give
can be checked row by row against what the CSV gives."""
import collections
import csv
import os
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from components.example_gen.data_root import plan_ingestion
from components.example_gen.options import IngestOptions
from components.example_gen.records import IngestError
from components.example_gen.spans import list_spans, plan_spans
from contract.data import EMOTIONS, FER2013_USAGE_SPLITS, IMAGE_ID, LABEL, PIXELS, SOURCE, SPLITS, SUBJECT
from deep_emotion.demo_data.generate import generate

ROWS = 70


def _as_images(fer2013_csv, folder, extension=".png"):
    """fer2013.csv as Kaggle's image download lays it out: Training rows under train/, PublicTest and
    PrivateTest rows under test/, each in its class folder, named <Usage>_<number>. Returns
    {file name: (emotion id, pixels, usage)}."""
    written = {}
    with open(fer2013_csv, newline="") as f:
        for number, row in enumerate(csv.DictReader(f)):
            usage, emotion = row["Usage"], int(row["emotion"])
            pixels = np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48)
            name = f"{usage}_{1000 + number}{extension}"
            path = os.path.join(folder, "train" if usage == "Training" else "test", EMOTIONS[emotion], name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(pixels).save(path, quality=95)
            written[name] = (emotion, pixels.reshape(-1), usage)
    return written


@pytest.fixture(scope="module")
def download(tmp_path_factory):
    """(the demo fer2013.csv, the image download made from it as a folder, its rows by file name)."""
    root = tmp_path_factory.mktemp("fer2013_images")
    fer2013_csv = generate(str(root / "csv"), n=ROWS, seed=3, formats=("fer2013",))["datasets"]["fer2013"]["path"]
    rows = _as_images(fer2013_csv, str(root / "fer2013"))
    return fer2013_csv, str(root / "fer2013"), rows


def test_kaggles_image_download_gives_fer2013s_faces_labels_and_splits(download, ingest):
    """Kaggle's test/ holds PublicTest and PrivateTest: the Usage in each name, not the folder,
    decides the split, as fer2013.csv's Usage column does."""
    _, folder, rows = download
    run = ingest(folder)
    seen = {}
    for split in SPLITS:
        for e in run.examples[split]:
            name = os.path.basename(e[IMAGE_ID])
            emotion, pixels, usage = rows[name]
            assert (e[LABEL], split, e[SOURCE], e[SUBJECT]) == (emotion, FER2013_USAGE_SPLITS[usage], "fer2013", "")
            np.testing.assert_array_equal(e[PIXELS], pixels)  # PNG: lossless
            seen[name] = e[IMAGE_ID]
    assert len(seen) == ROWS and set(seen) == set(rows)
    assert seen[next(n for n in rows if n.startswith("PublicTest"))].startswith("test/")
    by_usage = collections.Counter(usage for _, _, usage in rows.values())
    assert run.summary["examples"]["by_split"] == {FER2013_USAGE_SPLITS[u]: n for u, n in by_usage.items()}
    assert run.summary["datasets"] == [f"./: FER2013 as images (class folders; the split from each name's Usage) "
                                       f"({ROWS} images)"]


def test_the_same_faces_through_the_csv_and_the_images_match_row_for_row(download, ingest):
    fer2013_csv, folder, _ = download
    from_images, from_csv = ingest(folder), ingest(os.path.dirname(fer2013_csv))
    for split in SPLITS:
        assert sorted(e[PIXELS].tobytes() + bytes([e[LABEL]]) for e in from_images.examples[split]) == sorted(
            e[PIXELS].tobytes() + bytes([e[LABEL]]) for e in from_csv.examples[split])


def test_the_zip_as_downloaded_with_jpegs_is_read_in_place(download, tmp_path):
    """Kaggle's archive.zip holds train/ and test/ at its top; its images are JPEGs."""
    fer2013_csv, _, _ = download
    rows = _as_images(fer2013_csv, str(tmp_path / "unpacked"), extension=".jpg")
    root = tmp_path / "data"
    root.mkdir()
    with zipfile.ZipFile(root / "archive.zip", "w") as z:
        for dirpath, _, names in os.walk(tmp_path / "unpacked"):
            for name in names:
                path = os.path.join(dirpath, name)
                z.write(path, os.path.relpath(path, tmp_path / "unpacked"))
    plan = plan_ingestion(str(root), IngestOptions())
    assert plan.datasets == [f"archive.zip/: FER2013 as images (class folders; the split from each name's Usage) "
                             f"({ROWS} images)"]
    assert collections.Counter(t.split for t in plan.image_tasks) == collections.Counter(
        FER2013_USAGE_SPLITS[usage] for _, _, usage in rows.values())
    assert {t.name.split("!/")[-1].split("/")[0] for t in plan.image_tasks} == {"train", "test"}
    assert not plan.rejects and not plan.unrecognised


def test_the_images_beside_fer2013_csv_are_fer2013_twice_an_error_naming_both(download, tmp_path):
    fer2013_csv, folder, _ = download
    root = tmp_path / "data"
    shutil.copytree(folder, root / "fer2013-images")
    shutil.copy(fer2013_csv, root / "fer2013.csv")
    with pytest.raises(IngestError, match=r"FER2013 twice: as images in fer2013-images/ and as rows in fer2013\.csv"):
        plan_ingestion(str(root), IngestOptions())


def test_a_file_without_its_usage_is_refused_by_name_and_strays_are_named(download, tmp_path):
    _, folder, _ = download
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    shutil.copy(next(p for p in (root / "train" / "happy").iterdir()), root / "train" / "happy" / "im0.png")
    (root / "train" / "contempt").mkdir()
    (root / "test" / "notes.txt").write_text("downloaded from kaggle")
    plan = plan_ingestion(str(root), IngestOptions())
    [reject] = plan.rejects
    assert reject.file.endswith("train/happy/im0.png") and "does not start with FER2013's Usage" in reject.defect
    assert "train/contempt (folder beside FER2013's class folders)" in plan.unrecognised
    assert "test/notes.txt (file beside FER2013's class folders)" in plan.unrecognised
    assert len(plan.image_tasks) == ROWS


def test_in_span_folders_beside_subject_split_datasets_each_image_keeps_its_usage(download, tmp_path):
    """Span folders re-decide subject splits over the window; FER2013's images keep their Usage."""
    _, folder, rows = download
    root = tmp_path / "data"
    shutil.copytree(folder, root / "span-1" / "fer2013")
    for span in ("span-1", "span-2"):
        for i in range(6):
            path = root / span / "CK+48" / "happy" / f"S{i:03d}_001_00000001.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((48, 48), 9 * i, np.uint8)).save(path)
    plan = plan_spans(str(root), list_spans(str(root), "span-{SPAN}"), IngestOptions())
    fer = [t for t in plan.image_tasks if t.source == "fer2013"]
    assert len(fer) == ROWS
    assert all(t.split == FER2013_USAGE_SPLITS[rows[os.path.basename(t.name)][2]] for t in fer)
    assert len({t.split for t in plan.image_tasks if t.source == "ckplus"}) == 3
