"""FER2013 as Kaggle's image download ships it (train/angry/Training_10118481.jpg,
test/happy/PrivateTest_95094.jpg): the same faces, labels and splits as fer2013.csv gives them.

The demo generator writes the download from the same rows as its fer2013.csv (numbered by row), so
what the images give can be checked row by row against what the CSV gives."""
import collections
import csv
import os
import re
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from components.example_gen.data_root import plan_ingestion
from components.example_gen.options import IngestOptions
from components.example_gen.records import IngestError
from components.example_gen.spans import list_spans, plan_spans
from contract.data import FER2013_USAGE_SPLITS, IMAGE_ID, LABEL, PIXELS, SOURCE, SPLITS, SUBJECT
from deep_emotion.demo_data.generate import generate

ROWS = 70
DESCRIPTION = "FER2013 as images (class folders; the split from each name's Usage)"


@pytest.fixture(scope="module")
def download(tmp_path_factory):
    """(fer2013.csv, the image download of the same rows, {row number: (emotion id, pixels, usage)})."""
    root = tmp_path_factory.mktemp("fer2013_images")
    datasets = generate(str(root), n=ROWS, seed=3, formats=("fer2013", "fer2013-images"))["datasets"]
    with open(datasets["fer2013"]["path"], newline="") as f:
        rows = {number: (int(row["emotion"]), np.array(row["pixels"].split(), np.int16), row["Usage"])
                for number, row in enumerate(csv.DictReader(f))}
    return datasets["fer2013"]["path"], datasets["fer2013-images"]["path"], rows


@pytest.fixture(scope="module")
def shipped_jaffe(tmp_path_factory):
    return generate(str(tmp_path_factory.mktemp("jaffe")), n=ROWS, seed=3, formats=("jaffe",))["datasets"]["jaffe"]["path"]


def _row(image_id):
    return int(os.path.splitext(image_id)[0].rsplit("_", 1)[1])


def test_kaggles_image_download_gives_fer2013s_faces_labels_and_splits(download, ingest):
    """Kaggle's test/ holds PublicTest and PrivateTest: the Usage in each name, not the folder,
    decides the split, as fer2013.csv's Usage column does."""
    _, folder, rows = download
    run = ingest(folder)
    seen = set()
    for split in SPLITS:
        for e in run.examples[split]:
            emotion, pixels, usage = rows[_row(e[IMAGE_ID])]
            assert (e[LABEL], split, e[SOURCE], e[SUBJECT]) == (emotion, FER2013_USAGE_SPLITS[usage], "fer2013", "")
            with Image.open(os.path.join(folder, e[IMAGE_ID])) as image:  # the file's own pixels, exactly
                np.testing.assert_array_equal(e[PIXELS], np.asarray(image).reshape(-1))
            assert np.abs(e[PIXELS] - pixels).mean() < 2.0  # and the CSV's, but for JPEG's loss
            seen.add(_row(e[IMAGE_ID]))
    assert seen == set(rows)
    assert any(e[IMAGE_ID].startswith("test/") for e in run.examples["eval"])
    by_usage = collections.Counter(usage for _, _, usage in rows.values())
    assert run.summary["examples"]["by_split"] == {FER2013_USAGE_SPLITS[u]: n for u, n in by_usage.items()}
    assert run.summary["datasets"] == [f"./: {DESCRIPTION} ({ROWS} images)"]


def test_the_zip_as_downloaded_is_read_in_place(download, tmp_path):
    """Kaggle's archive.zip holds train/ and test/ at its top."""
    _, folder, rows = download
    root = tmp_path / "data"
    root.mkdir()
    with zipfile.ZipFile(root / "archive.zip", "w") as z:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(dirpath, name)
                z.write(path, os.path.relpath(path, folder))
    plan = plan_ingestion(str(root), IngestOptions())
    assert plan.datasets == [f"archive.zip/: {DESCRIPTION} ({ROWS} images)"]
    assert sorted((_row(t.name), t.split) for t in plan.image_tasks) == sorted(
        (row, FER2013_USAGE_SPLITS[usage]) for row, (_, _, usage) in rows.items())
    assert {t.name.split("!/")[-1].split("/")[0] for t in plan.image_tasks} == {"train", "test"}
    assert not plan.rejects and not plan.unrecognised


@pytest.mark.parametrize("name", ["fer2013.csv", "fer2013 (1).csv"])
def test_the_images_beside_fer2013_csv_are_fer2013_twice_an_error_naming_both(download, tmp_path, name):
    """By the CSV's Usage column, not its name: a browser's second download is FER2013 too."""
    fer2013_csv, folder, _ = download
    root = tmp_path / "data"
    shutil.copytree(folder, root / "fer2013-images")
    shutil.copy(fer2013_csv, root / name)
    with pytest.raises(IngestError, match=r"FER2013 twice: as images in fer2013-images/ and as rows in "
                                          + re.escape(name)):
        plan_ingestion(str(root), IngestOptions())


def _zip_folder(folder, archive, inside=""):
    with zipfile.ZipFile(archive, "w") as z:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(dirpath, name)
                z.write(path, os.path.join(inside, os.path.relpath(path, folder)))


def test_one_download_in_two_archives_is_read_once_and_a_copy_beside_it_is_an_error(download, tmp_path):
    """Copies are told by the faces (class and name), not by how many folders hold them: train.zip
    and test.zip are one download; train/ unpacked beside the zip made from inside it is two."""
    _, folder, rows = download
    parts = tmp_path / "parts"
    parts.mkdir()
    for split in ("train", "test"):
        _zip_folder(os.path.join(folder, split), parts / f"{split}.zip", inside=split)
    plan = plan_ingestion(str(parts), IngestOptions())
    assert sorted(_row(t.name) for t in plan.image_tasks) == sorted(rows)
    assert [d.split(":")[0] for d in plan.datasets] == ["test.zip/", "train.zip/"]

    colab = tmp_path / "colab"
    shutil.copytree(folder, colab)
    _zip_folder(os.path.join(folder, "train"), colab / "train.zip")  # zipped from inside train/
    with pytest.raises(IngestError, match=r"holds FER2013's images twice: train/\w+/Training_\d+\.jpg and "
                                          r"train\.zip!/\w+/Training_\d+\.jpg are one face"):
        plan_ingestion(str(colab), IngestOptions())

    copies = tmp_path / "copies"
    shutil.copytree(os.path.join(folder, "train"), copies / "fer_a")
    shutil.copytree(os.path.join(folder, "train"), copies / "fer_b")
    with pytest.raises(IngestError, match=r"holds FER2013's images twice: fer_a/.* and fer_b/"):
        plan_ingestion(str(copies), IngestOptions())


def test_datasets_inside_kaggles_train_and_test_folders_are_read_too(download, tmp_path, shipped_jaffe):
    _, folder, _ = download
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    shutil.copytree(shipped_jaffe, root / "test" / "jaffe")
    plan = plan_ingestion(str(root), IngestOptions())
    assert collections.Counter(t.source for t in plan.image_tasks) == {"fer2013": ROWS, "jaffe": 213}
    assert not plan.unrecognised and not plan.rejects


def test_a_file_without_its_usage_is_refused_by_name_and_strays_are_named(download, tmp_path):
    _, folder, _ = download
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    a_face = next(p for p in (root / "train" / "happy").iterdir())
    shutil.copy(a_face, root / "train" / "happy" / "im0.png")
    shutil.copy(a_face, root / "train" / "happy" / "Training_99 (1).jpg")
    (root / "train" / "contempt").mkdir()
    (root / "test" / "notes.txt").write_text("downloaded from kaggle")
    shutil.copytree(root / "train" / "happy", root / "happy")  # a folder of the user's own beside train/, test/
    for path in (root / "happy").iterdir():
        path.rename(path.with_name("me-" + path.name))
    plan = plan_ingestion(str(root), IngestOptions())
    defects = {os.path.relpath(r.file, root): r.defect for r in plan.rejects}
    assert defects.keys() == {"train/happy/im0.png", "train/happy/Training_99 (1).jpg"}
    assert "does not start with FER2013's Usage" in defects["train/happy/im0.png"]
    assert "is not FER2013's Training_<number>.<extension> form" in defects["train/happy/Training_99 (1).jpg"]
    assert "train/contempt (folder beside FER2013's class folders)" in plan.unrecognised
    assert "test/notes.txt (file beside FER2013's class folders)" in plan.unrecognised
    assert "happy (folder beside FER2013's image folders)" in plan.unrecognised
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
    assert all(t.split == FER2013_USAGE_SPLITS[rows[_row(t.name)][2]] for t in fer)
    assert len({t.split for t in plan.image_tasks if t.source == "ckplus"}) == 3


def test_jaffe_unpacked_loose_beside_kaggles_folders_is_named_as_what_to_move(download, tmp_path, shipped_jaffe):
    _, folder, _ = download
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    for path in os.listdir(shipped_jaffe):
        shutil.copy(os.path.join(shipped_jaffe, path), root / path)
    with pytest.raises(IngestError, match=r"holds JAFFE unpacked beside FER2013's image folders \(test/, train/\).*"
                                          r"Move JAFFE into a folder of its own"):
        plan_ingestion(str(root), IngestOptions())


def test_a_repack_without_the_usage_in_its_names_is_told_what_is_missing(download, tmp_path):
    """Some repacks rename Kaggle's files im0.png, im1.png ...: the split is lost with the names."""
    _, folder, _ = download
    root = tmp_path / "data"
    shutil.copytree(folder, root)
    for path in sorted(root.rglob("*.jpg")):
        path.rename(path.with_name(f"im{_row(path.name)}.png"))
    with pytest.raises(IngestError, match=r"Folders named as FER2013's classes \(angry/, .*surprise/\) hold images "
                                          r"whose names do not start with FER2013's Usage"):
        plan_ingestion(str(root), IngestOptions())
