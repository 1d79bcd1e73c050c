"""The executor on DirectRunner: every format from generated fixtures, valid CSV variants, counts.

Exact counts come from the demo-data generator's own summary of what it wrote, or from reading
the fixture files directly; pixels are compared with the CSV text and the PNG files.
"""
import collections
import csv
import errno
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.example_gen.executor import GzipTFRecordSink
from contract.data import EMOTIONS, IMAGE_ID, LABEL, LABEL_SHARES, NUM_PIXELS, PIXELS, SOURCE, SPLITS, SUBJECT
from deep_emotion.demo_data import generate

USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "eval", "PrivateTest": "test"}
CANONICAL_FEATURES = sorted([PIXELS, LABEL, SOURCE, IMAGE_ID, SUBJECT])


def _by_emotion_name(counts_by_id):
    return {EMOTIONS[i]: n for i, n in counts_by_id.items() if n}


def _nonzero(counts_by_name):
    return {name: n for name, n in counts_by_name.items() if n}


def _csv_rows(path):
    """{line number: (emotion, pixels, usage)} read independently of the executor."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [c.strip() for c in next(reader)]
        rows = {}
        for fields in reader:
            record = dict(zip(header, fields))
            rows[reader.line_num] = (int(record["emotion"]), np.array(record["pixels"].split(), dtype=np.int64),
                                     record.get("Usage", "").strip())
    return rows


@pytest.fixture(scope="module")
def generated(tmp_path_factory, ingest_into):
    """One generated data root with every format but FER+ and icml_face_data.csv (another copy of
    fer2013.csv: one root holds one, tested below), plus stray entries, ingested once. Kaggle's
    train.csv + test.csv sit in a folder of their own (beside fer2013.csv, train.csv is left out)."""
    root = str(tmp_path_factory.mktemp("generated") / "data")
    written = generate(root, n=60, seed=0, formats=("fer2013", "ckplus", "jaffe", "ferg"))
    written["datasets"]["kaggle"] = generate(os.path.join(root, "kaggle"), n=60, seed=1,  # other faces: with
                                             formats=("kaggle",))["datasets"]["kaggle"]  # seed 0, a copy (left out)
    for stray in ("README.md", "CK+48/.DS_Store", "extra/other.csv"):
        os.makedirs(os.path.dirname(os.path.join(root, stray)), exist_ok=True)
        with open(os.path.join(root, stray), "w") as f:
            f.write("a,b\n1,2\n")
    run = ingest_into(root, str(tmp_path_factory.mktemp("generated_out")))
    return root, written["datasets"], run.summary, run.examples


@pytest.fixture(scope="module")
def competition(tmp_path_factory, ingest_into):
    """Kaggle's competition download: icml_face_data.csv, train.csv and test.csv side by side."""
    root = str(tmp_path_factory.mktemp("competition") / "data")
    written = generate(root, n=60, seed=0, formats=("icml", "kaggle"))
    run = ingest_into(root, str(tmp_path_factory.mktemp("competition_out")))
    return root, written["datasets"], run.summary, run.examples


@pytest.mark.parametrize("file_name,variant", [("fer2013.csv", "fer2013"), ("icml_face_data.csv", "icml")])
def test_fer2013_csvs_keep_usage_splits_classes_and_pixels(generated, competition, file_name, variant):
    root, written, _, examples = generated if variant == "fer2013" else competition
    expected = {USAGE_TO_SPLIT[usage]: _nonzero(by_class) for usage, by_class in written[variant]["by_split"].items()}
    got = {split: collections.Counter() for split in SPLITS}
    rows = _csv_rows(os.path.join(root, file_name))
    for split in SPLITS:
        for e in examples[split]:
            if e[IMAGE_ID].startswith(file_name + ":"):
                got[split][EMOTIONS[e[LABEL]]] += 1
                emotion, pixels, usage = rows[int(e[IMAGE_ID].split(":")[1])]
                assert (e[LABEL], USAGE_TO_SPLIT[usage], e[SOURCE]) == (emotion, split, "fer2013")
                np.testing.assert_array_equal(e[PIXELS], pixels)  # exact round trip
                assert e["features"] == CANONICAL_FEATURES
    assert {split: dict(c) for split, c in got.items()} == expected
    assert sum(map(sum, (c.values() for c in got.values()))) == written[variant]["images"] == len(rows)


def test_kaggle_train_is_split_by_content_and_test_csv_is_only_counted(generated):
    _, written, summary, examples = generated
    kaggle = [(split, e) for split in SPLITS for e in examples[split]
              if e[IMAGE_ID].startswith("kaggle/train.csv:")]
    training = written["kaggle"]["by_split"]["Training"]
    assert collections.Counter(EMOTIONS[e[LABEL]] for _, e in kaggle) == collections.Counter(_nonzero(training))
    by_split = collections.Counter(split for split, _ in kaggle)
    assert by_split["train"] > by_split["eval"] + by_split["test"]  # 80/10/10 by a hash of the pixels
    test_rows = sum(sum(written["kaggle"]["by_split"][u].values()) for u in ("PublicTest", "PrivateTest"))
    assert summary["excluded"]["fer2013"] == {
        "kaggle/test.csv: unlabelled (no emotion column), not ingested": test_rows}
    assert not any("test.csv" in e[IMAGE_ID] for split in SPLITS for e in examples[split])


def test_the_competition_download_gives_each_face_once(competition):
    """train.csv holds icml_face_data.csv's Training rows again: read from both, the same faces would
    be in train through one file and in eval/test through the other (train.csv splits by hash)."""
    _, written, summary, examples = competition
    ids = [e[IMAGE_ID] for split in SPLITS for e in examples[split]]
    assert len(ids) == written["icml"]["images"] == 60 and all(i.startswith("icml_face_data.csv:") for i in ids)
    training = sum(written["kaggle"]["by_split"]["Training"].values())
    others = sum(sum(written["kaggle"]["by_split"][u].values()) for u in ("PublicTest", "PrivateTest"))
    assert summary["excluded"]["fer2013"] == {
        "train.csv: Kaggle's train.csv, FER2013's Training rows again (ingested from icml_face_data.csv), "
        "not ingested": training,
        "test.csv: unlabelled (no emotion column), not ingested": others}
    assert "train.csv: left out: Kaggle's train.csv, FER2013's Training rows again (ingested from " \
           "icml_face_data.csv)" in summary["datasets"]


@pytest.mark.parametrize("source,folder,label_map", [
    ("ckplus", "CK+48", {"anger": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy",
                         "sadness": "sad", "surprise": "surprise"}),
    ("jaffe", "jaffe", {"AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral",
                        "SA": "sad", "SU": "surprise"}),
    ("ferg", "FERG_DB_256", {"anger": "angry", "disgust": "disgust", "fear": "fear", "joy": "happy",
                             "neutral": "neutral", "sadness": "sad", "surprise": "surprise"}),
])
def test_image_folders_are_split_by_subject_with_exact_counts(generated, source, folder, label_map):
    root, written, summary, examples = generated
    expected_totals = {label_map[name]: n for name, n in written[source]["by_class"].items() if name in label_map}
    mine = {split: [e for e in examples[split] if e[SOURCE] == source] for split in SPLITS}
    totals = collections.Counter(EMOTIONS[e[LABEL]] for split in SPLITS for e in mine[split])
    assert dict(totals) == _nonzero(expected_totals)

    subjects = {split: {e[SUBJECT] for e in mine[split]} for split in SPLITS}
    assert all(subjects.values()), f"every split gets a subject: {subjects}"
    assert not (subjects["train"] & subjects["eval"] or subjects["train"] & subjects["test"]
                or subjects["eval"] & subjects["test"])
    assert sum(map(len, subjects.values())) == written[source]["subjects"]

    # Each split holds exactly the files of its subjects: nothing lost, nothing twice.
    on_disk = collections.Counter()
    for dirpath, _, names in os.walk(os.path.join(root, folder)):
        for name in names:
            if not name.startswith(".") and "contempt" not in dirpath:
                on_disk[os.path.relpath(os.path.join(dirpath, name), root)] += 1
    ids = collections.Counter(e[IMAGE_ID] for split in SPLITS for e in mine[split])
    assert ids == on_disk
    if source == "ckplus":
        assert summary["excluded"]["ckplus"] == {
            "contempt: no FER2013 class (set contempt_as to map it)": written["ckplus"]["by_class"]["contempt"]}
        for e in mine["train"][:5]:  # 48x48 PNGs pass through unchanged
            np.testing.assert_array_equal(e[PIXELS], np.asarray(Image.open(os.path.join(root, e[IMAGE_ID]))).ravel())
    for split in SPLITS:
        for e in mine[split]:
            assert e[PIXELS].shape == (NUM_PIXELS,) and 0 <= e[PIXELS].min() and e[PIXELS].max() <= 255


def test_summary_names_unrecognised_entries_and_counts_everything(generated):
    _, _, summary, examples = generated
    assert summary["unrecognised"] == ["CK+48/.DS_Store (operating-system metadata, not data)",
                                       "README.md (not a dataset file)", "extra/other.csv (CSV with columns a,b)"]
    assert summary["rejected"]["count"] == 0
    assert summary["examples"]["by_split"] == {split: len(examples[split]) for split in SPLITS}
    per_source_class = summary["examples"]["by_source_split_class"]
    for split in SPLITS:
        assert sum(sum(per_source_class[s][split].values()) for s in per_source_class) == len(examples[split])


def test_ferplus_majority_relabels_and_excluded_rows_are_counted(tmp_path, ingest):
    root = str(tmp_path / "data")
    written = generate(root, n=300, seed=1, formats=("fer2013", "ferplus"))["datasets"]["ferplus"]
    run = ingest(root, use_ferplus_labels=True)
    majority = written["majority_vote"]
    to_emotion = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                  "anger": "angry", "disgust": "disgust", "fear": "fear"}
    got = collections.Counter(EMOTIONS[e[LABEL]] for split in SPLITS for e in run.examples[split])
    assert dict(got) == {to_emotion[c]: n for c, n in majority.items() if c in to_emotion and n}
    assert majority["unknown"] + majority["NF"] > 0, "the fixture should exercise exclusion"
    assert run.summary["excluded"]["fer2013"] == _nonzero({"FER+ majority: unknown": majority["unknown"],
                                                           "FER+ majority: not a face": majority["NF"]})
    rows = _csv_rows(os.path.join(root, "fer2013.csv"))
    for split in SPLITS:  # Usage still decides the split
        assert all(USAGE_TO_SPLIT[rows[int(e[IMAGE_ID].split(":")[1])][2]] == split for e in run.examples[split])


def test_ferplus_rows_carry_their_vote_shares_for_soft_label_training(data_root, ingest):
    """FERPlus's "probability" mode: single votes dropped, shares of the votes for a kept class."""
    faces = [data_root.text(data_root.pixels()) for _ in range(3)]
    data_root.write("fer2013.csv", "emotion,pixels,Usage\n" + "".join(
        f"0,{face},{usage}\n" for face, usage in zip(faces, ["Training", "PublicTest", "PrivateTest"])))
    data_root.write("fer2013new.csv", "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                                      "contempt,unknown,NF\n"
                                      "Training,fer0.png,0,8,1,0,0,0,0,1,0,0\n"      # happiness 8, the rest single
                                      "PublicTest,fer1.png,6,3,2,0,0,0,0,0,1,0\n"    # neutral 6/11, happy 3, surprise 2
                                      "PrivateTest,fer2.png,0,0,0,0,0,2,0,4,0,0\n")  # contempt 4: contempt_as
    data_root.image("CK+48/happy/S005_001_00000001.png")
    run = ingest(data_root.path, use_ferplus_labels=True, contempt_as="disgust")
    by_id = {e[IMAGE_ID]: e for split in SPLITS for e in run.examples[split]}
    happy, neutral, contempt = (by_id[f"fer2013.csv:{line}"] for line in (2, 3, 4))
    np.testing.assert_allclose(happy[LABEL_SHARES], np.eye(7)[EMOTIONS.index("happy")], atol=1e-7)
    assert EMOTIONS[neutral[LABEL]] == "neutral"
    expected = np.zeros(7)
    expected[[EMOTIONS.index("neutral"), EMOTIONS.index("happy"), EMOTIONS.index("surprise")]] = [6 / 11, 3 / 11, 2 / 11]
    np.testing.assert_allclose(neutral[LABEL_SHARES], expected, rtol=1e-6)
    np.testing.assert_allclose(contempt[LABEL_SHARES], np.eye(7)[EMOTIONS.index("disgust")], atol=1e-7)
    assert by_id["CK+48/happy/S005_001_00000001.png"][LABEL_SHARES] is None


def test_valid_csv_variants_are_read_exactly(data_root, ingest):
    """CRLF, UTF-8 BOM, quoted fields, no trailing newline, icml's ' Usage' headers. One file is
    named fer2013.csv (a root holds one copy of FER2013); the others are recognised by header. Each
    holds other faces: files that start with the same row are one dataset twice, an error."""
    folders = ("crlf", "bom", "no_newline", "quoted", "icml")
    pixels = {folder: [data_root.pixels() for _ in range(4)] for folder in folders}
    rows = {folder: [f"{i},{data_root.text(p)},{u}" for i, (p, u) in enumerate(
        zip(pixels[folder], ["Training", "Training", "PublicTest", "PrivateTest"]))] for folder in folders}
    data_root.write("crlf/fer2013.csv", "emotion,pixels,Usage\r\n" + "\r\n".join(rows["crlf"]) + "\r\n")
    data_root.write("bom/faces.csv", "\ufeffemotion,pixels,Usage\n" + "\n".join(rows["bom"]) + "\n")
    data_root.write("no_newline/faces.csv", "emotion,pixels,Usage\n" + "\n".join(rows["no_newline"]))
    data_root.write("quoted/faces.csv", '"emotion","pixels","Usage"\n'
                    + "\n".join(f'"{i}","{t}","{u}"' for i, t, u in (r.split(",") for r in rows["quoted"])) + "\n")
    data_root.write("icml/faces.csv", "emotion, Usage, pixels\n"
                    + "\n".join(f"{i}, {u}, {t}" for i, t, u in (r.split(",") for r in rows["icml"])) + "\n")
    run = ingest(data_root.path)
    splits = ["train", "train", "eval", "test"]
    for folder in folders:
        name = f"{folder}/{'fer2013' if folder == 'crlf' else 'faces'}.csv"
        for row in range(4):
            [example] = [e for e in run.examples[splits[row]] if e[IMAGE_ID] == f"{name}:{row + 2}"]
            assert example[LABEL] == row
            np.testing.assert_array_equal(example[PIXELS], pixels[folder][row])
    assert run.summary["examples"]["total"] == 20 and run.summary["rejected"]["count"] == 0


def test_contempt_as_maps_ckplus_contempt_instead_of_excluding_it(data_root, ingest):
    for subject in range(3):
        data_root.image(f"CK+48/contempt/S00{subject}_001_00000001.png")
        data_root.image(f"CK+48/happy/S00{subject}_002_00000001.png")
    run = ingest(data_root.path, contempt_as="disgust")
    assert run.summary["examples"]["total"] == 6 and "ckplus" not in run.summary["excluded"]
    assert collections.Counter(e[LABEL] for s in SPLITS for e in run.examples[s]) == {
        EMOTIONS.index("disgust"): 3, EMOTIONS.index("happy"): 3}


class _FillingFile:
    """A file object on a disk that fills after `room` bytes (ENOSPC), as Beam's file handles raise it."""

    def __init__(self, room):
        self.room, self.data = room, bytearray()

    def write(self, data):
        if len(self.data) + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.data += data
        return len(data)

    def flush(self):
        pass


def test_the_writer_keeps_every_record_in_order_across_its_compression_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(GzipTFRecordSink, "CHUNK_BYTES", 3000)  # many chunks through the thread and its queue
    records = [bytes([i % 256]) * (i * 37 % 1500) for i in range(400)]
    sink, path = GzipTFRecordSink(), tmp_path / "records.gz"
    with open(path, "wb") as fh:
        sink.open(fh)
        for record in records:
            sink.write(record)
        sink.flush()
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")] == records


def test_a_disk_that_fills_under_the_writer_raises_its_error_and_leaves_no_thread(monkeypatch):
    monkeypatch.setattr(GzipTFRecordSink, "CHUNK_BYTES", 3000)
    sink = GzipTFRecordSink()
    sink.open(_FillingFile(room=5000))
    with pytest.raises(OSError, match="No space left on device"):
        for _ in range(2000):  # raised by a later write, or at the latest by flush
            sink.write(os.urandom(1000))  # incompressible: the gzip stream outgrows the room
        sink.flush()
    assert not sink._writer.is_alive()
