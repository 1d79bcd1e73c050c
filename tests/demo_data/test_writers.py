"""The generated files have the real datasets' formats, and the summary tells the truth about them."""
import csv
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.data import EMOTIONS, NUM_PIXELS
from deep_emotion.demo_data import generate, writers
from deep_emotion.demo_data.generate import dataset_sizes



def _rows(path):
    with open(path, newline="", encoding="ascii") as f:
        return list(csv.reader(f))


def _pixels(text):
    values = np.array(text.split(" "), dtype=np.int64)
    assert values.size == NUM_PIXELS and values.min() >= 0 and values.max() <= 255
    return values


def _files(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_fer2013_csv_has_the_real_header_pixels_usage_order_and_proportions(demo_root):
    root, summary = demo_root
    with open(root / "fer2013.csv", encoding="ascii") as f:
        assert f.readline() == "emotion,pixels,Usage\n"
    rows = _rows(root / "fer2013.csv")[1:]
    n = summary["n"]
    assert len(rows) == n and all(len(r) == 3 for r in rows)
    for label, pixels, _ in rows:
        assert 0 <= int(label) < len(EMOTIONS)
        _pixels(pixels)
    usages = [r[2] for r in rows]
    # Blocks in the real order, sized like the real 28,709 / 3,589 / 3,589.
    assert n % 10 == 0 and usages == (["Training"] * (n * 8 // 10) + ["PublicTest"] * (n // 10)
                                      + ["PrivateTest"] * (n // 10))
    # FER2013's imbalance in every block: happy the most common, disgust the rarest.
    real = np.array(writers.FER2013_TRAINING_COUNTS) / sum(writers.FER2013_TRAINING_COUNTS)
    for usage in writers.FER2013_USAGES:
        counts = Counter(int(r[0]) for r in rows if r[2] == usage)
        block = usages.count(usage)
        for label in range(len(EMOTIONS)):
            assert abs(counts[label] - real[label] * block) < 1, (usage, EMOTIONS[label])
        assert summary["datasets"]["fer2013"]["by_split"][usage] == {
            EMOTIONS[k]: counts[k] for k in range(len(EMOTIONS))}


def test_full_size_split_matches_the_real_file():
    labels, usages = writers.fer2013_plan(35_887, seed=0)
    assert [usages.count(u) for u in writers.FER2013_USAGES] == [28_709, 3_589, 3_589]
    training = Counter(labels[:28_709].tolist())
    assert tuple(training[k] for k in range(7)) == writers.FER2013_TRAINING_COUNTS


def test_fer2013_relatives_hold_the_same_rows_in_their_own_layouts(demo_root):
    root, summary = demo_root
    fer = _rows(root / "fer2013.csv")[1:]
    with open(root / "icml_face_data.csv", encoding="ascii") as f:
        assert f.readline() == "emotion, Usage, pixels\n"
    icml = _rows(root / "icml_face_data.csv")[1:]
    assert [(r[0], r[2], r[1]) for r in icml] == [tuple(r) for r in fer]

    train_text = (root / "train.csv").read_text(encoding="ascii").splitlines()
    test_text = (root / "test.csv").read_text(encoding="ascii").splitlines()
    assert train_text[0] == "emotion,pixels" and test_text[0] == "pixels"
    assert re.fullmatch(r'\d,"\d+( \d+){2303}"', train_text[1])  # pixels quoted, as on Kaggle
    assert re.fullmatch(r'"\d+( \d+){2303}"', test_text[1])
    train, test = _rows(root / "train.csv")[1:], _rows(root / "test.csv")[1:]
    assert train == [[r[0], r[1]] for r in fer if r[2] == "Training"]
    assert test == [[r[1]] for r in fer if r[2] != "Training"]
    assert summary["datasets"]["kaggle"]["files"] == [str(root / "train.csv"), str(root / "test.csv")]


def test_fer2013_images_are_the_same_rows_as_kaggles_image_download_lays_them_out(demo_root):
    root, summary = demo_root
    fer = _rows(root / "fer2013.csv")[1:]
    images = sorted((root / "fer2013-images").rglob("*.jpg"))
    assert len(images) == len(fer) and summary["datasets"]["fer2013-images"]["path"] == str(root / "fer2013-images")
    for path in images:
        usage, row = re.fullmatch(r"(Training|PublicTest|PrivateTest)_(\d+)\.jpg", path.name).groups()
        emotion, pixels, row_usage = fer[int(row)]
        assert (usage, path.parent.name, path.parent.parent.name) == (
            row_usage, EMOTIONS[int(emotion)], "train" if usage == "Training" else "test")
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "L", (48, 48))
            error = np.abs(np.asarray(image, np.int16).reshape(-1) - np.array(pixels.split(), np.int16))
        assert error.mean() < 2.0, (path, error.mean())  # JPEG at quality 95


def test_ferplus_votes_follow_fer2013_row_order(demo_root):
    root, summary = demo_root
    with open(root / "fer2013new.csv", encoding="ascii") as f:
        assert f.readline() == ("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,"
                                "fear,contempt,unknown,NF\n")
    fer = _rows(root / "fer2013.csv")[1:]
    plus = _rows(root / "fer2013new.csv")[1:]
    assert len(plus) == len(fer)
    columns = writers.FERPLUS_COLUMNS
    agree, majority = 0, Counter()
    for row, (usage, name, *votes), (label, _, fer_usage) in zip(range(len(fer)), plus, fer):
        votes = [int(v) for v in votes]
        assert usage == fer_usage and sum(votes) == 10 and min(votes) >= 0
        top = columns[int(np.argmax(votes))]
        majority[top] += 1
        assert name == ("" if top == "NF" else f"fer{row:07d}.png")  # FER+ names no non-face
        agree += top == writers._FERPLUS_COLUMN_OF[EMOTIONS[int(label)]]
    assert agree >= 0.95 * len(fer)
    assert majority["unknown"] > 0 and majority["NF"] > 0
    assert summary["datasets"]["ferplus"]["majority_vote"] == {c: majority[c] for c in columns}


def test_ckplus_layout_names_images_and_counts(demo_root):
    root, summary = demo_root
    ck = root / "CK+48"
    assert sorted(p.name for p in ck.iterdir()) == sorted(writers.CKPLUS_FOLDERS)
    sequences = {}
    for folder in ck.iterdir():
        for image in folder.iterdir():
            match = re.fullmatch(r"S(\d{3})_(\d{3})_(\d{8})\.png", image.name)
            assert match, image
            with Image.open(image) as im:
                assert (im.format, im.mode, im.size) == ("PNG", "L", (48, 48))
            sequences.setdefault((folder.name, match[1], match[2]), []).append(int(match[3]))
    for frames in sequences.values():  # the last frames of a sequence, consecutive
        assert sorted(frames) == list(range(min(frames), min(frames) + writers.CKPLUS_FRAMES))
    # a subject's sequence number names one sequence, in one folder
    assert len({(s, q) for _, s, q in sequences}) == len(sequences)
    ck_summary = summary["datasets"]["ckplus"]
    assert len(sequences) == ck_summary["sequences"] == dataset_sizes(summary["n"])["ckplus_sequences"]
    assert ck_summary["by_class"] == {f: len(list((ck / f).iterdir())) for f in writers.CKPLUS_FOLDERS}
    assert ck_summary["by_class"]["contempt"] > 0 and "neutral" not in ck_summary["by_class"]
    assert ck_summary["subjects"] == len({s for _, s, _ in sequences})


def test_jaffe_has_213_named_grey_tiffs_from_10_posers(demo_root):
    root, summary = demo_root
    names = [p.name for p in (root / "jaffe").iterdir()]
    assert len(names) == 213
    pattern = re.compile(r"(KA|KL|KM|KR|MK|NA|NM|TM|UY|YM)\.(AN|DI|FE|HA|NE|SA|SU)(\d)\.(\d+)\.tiff")
    matches = [pattern.fullmatch(n) for n in names]
    assert all(matches), [n for n, m in zip(names, matches) if not m]
    assert len({m[4] for m in matches}) == 213  # serial numbers are unique
    assert len({m[1] for m in matches}) == 10
    codes = Counter(m[2] for m in matches)
    assert dict(codes) == writers.JAFFE_IMAGES == summary["datasets"]["jaffe"]["by_class"]
    with Image.open(root / "jaffe" / names[0]) as im:
        assert (im.format, im.mode, im.size) == ("TIFF", "L", (256, 256))


def test_ferg_layout_is_colour_pngs_per_character_and_expression(demo_root):
    root, summary = demo_root
    ferg = root / "FERG_DB_256"
    per_class = dataset_sizes(summary["n"])["ferg_per_class"]
    files = _files(ferg)
    pattern = re.compile(r"(\w+)/\1_(\w+)/\1_\2_(\d+)\.png")
    matches = [pattern.fullmatch(f) for f in files]
    assert all(matches), files[:5]
    assert Counter((m[1], m[2]) for m in matches) == {
        (c, e): per_class for c in writers.FERG_CHARACTERS for e in writers.FERG_EXPRESSIONS}
    assert summary["datasets"]["ferg"]["by_class"] == {
        e: per_class * len(writers.FERG_CHARACTERS) for e in writers.FERG_EXPRESSIONS}
    with Image.open(ferg / files[0]) as im:
        assert (im.format, im.mode, im.size) == ("PNG", "RGBA", (256, 256))
        rgba = np.asarray(im)
    assert np.all(rgba[..., 3] == 255)  # opaque: dropping alpha loses nothing
    assert np.abs(rgba[..., 0].astype(int) - rgba[..., 2]).mean() > 5  # really in colour


def test_same_seed_rewrites_identical_bytes_and_another_seed_differs(demo_root, tmp_path):
    root, summary = demo_root
    again = generate(tmp_path / "again", n=summary["n"], seed=0, formats=summary["datasets"])
    assert again["datasets"].keys() == summary["datasets"].keys()
    files = _files(root)
    assert files == _files(tmp_path / "again")
    for name in files:
        assert (root / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    other = tmp_path / "other"
    generate(other, n=summary["n"], seed=1, formats=("fer2013", "jaffe"))
    assert (other / "fer2013.csv").read_bytes() != (root / "fer2013.csv").read_bytes()
    jaffe_root, jaffe_other = sorted((root / "jaffe").iterdir()), sorted((other / "jaffe").iterdir())
    assert [p.read_bytes() for p in jaffe_root] != [p.read_bytes() for p in jaffe_other]


def test_a_crash_mid_dataset_leaves_the_previous_dataset_and_no_partial_files(tmp_path, monkeypatch):
    generate(tmp_path, n=20, seed=0, formats=("fer2013", "ckplus"))
    before = {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)}
    saved = []

    def failing_save(self, path, *args, **kwargs):
        saved.append(path)
        if len(saved) > 5:
            raise OSError("disk full")
        return original_save(self, path, *args, **kwargs)

    original_save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        generate(tmp_path, n=20, seed=1, formats=("ckplus",))
    assert {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    monkeypatch.setattr(writers, "_pixels_text", lambda face: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        generate(tmp_path / "fresh", n=20, seed=0, formats=("fer2013",))
    assert list((tmp_path / "fresh").iterdir()) == []


def test_generate_rejects_unknown_formats_and_too_few_rows(tmp_path):
    with pytest.raises(ValueError, match=r"unknown format\(s\) \['cifar'\]"):
        generate(tmp_path, n=100, formats=("fer2013", "cifar"))
    with pytest.raises(ValueError, match="at least 10"):
        generate(tmp_path, n=5)
    assert list(tmp_path.iterdir()) == []


def test_dataset_sizes_follow_n():
    small, full = dataset_sizes(3_000), dataset_sizes(35_887)
    assert full["ckplus_sequences"] * writers.CKPLUS_FRAMES == 981  # the real CK+48
    assert small["ckplus_sequences"] == 27 and dataset_sizes(10)["ckplus_sequences"] == 14
    assert small["jaffe_images"] == full["jaffe_images"] == 213
    ferg = [dataset_sizes(n)["ferg_per_class"] for n in (10, 3_000, 35_887)]
    assert ferg == [2, 6, 40]
