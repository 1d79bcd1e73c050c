"""Data roots as real downloads arrive: several datasets side by side at the root, CK+ in its
official four archives, macOS metadata, FER2013 twice, CSVs that are not what their name says, and
untrusted shapes (a line without end, symlinks that fan out). Planned (listing only) unless the
readers are what is tested."""
import os
import re
import shutil
import tarfile
import time
import zipfile

import pytest

from components.example_gen import fer2013_csv
from components.example_gen.data_root import plan_ingestion
from components.example_gen.options import IngestOptions
from components.example_gen.records import IngestError
from contract.data import IMAGE_ID, SPLITS
from deep_emotion.demo_data.generate import generate


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """{format: (folder or file, images/rows)} as the demo writes them, and the CK+ original count."""
    root = tmp_path_factory.mktemp("shipped")
    written = generate(str(root), n=120, seed=7, formats=("fer2013", "ckplus", "ckplus-original", "jaffe"))
    datasets = written["datasets"]
    labelled = datasets["ckplus-original"]["by_class"]
    return {"fer2013": datasets["fer2013"]["path"], "ckplus": datasets["ckplus"]["path"],
            "ckplus-original": datasets["ckplus-original"]["path"], "jaffe": datasets["jaffe"]["path"],
            "ckplus_original_images": 3 * (sum(labelled.values()) - labelled["contempt"]),
            "jaffe_images": datasets["jaffe"]["images"]}


def _plan(root, **options):
    return plan_ingestion(str(root), IngestOptions(**options))


def _images_under(plan, prefix):
    return sum(1 for task in plan.image_tasks if task.name.startswith(prefix))


def _zip(folder, archive, arcname, macos=False):
    """folder as `arcname` in a zip; with macos, the __MACOSX/._name resource forks Finder adds."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                inside = os.path.join(arcname, os.path.relpath(os.path.join(dirpath, name), folder))
                z.write(os.path.join(dirpath, name), inside)
                if macos:
                    z.writestr(os.path.join("__MACOSX", os.path.dirname(inside), "._" + name), b"\0\5\26\7" * 20)


def test_datasets_beside_ckplus_at_the_root_are_all_read(shipped, tmp_path):
    """CK+'s folders unpacked straight into the root used to make the whole root "CK+": the JAFFE
    folder and fer2013.csv beside them were only listed as unrecognised."""
    root = tmp_path / "data"
    shutil.copytree(shipped["ckplus-original"], root)
    shutil.copytree(shipped["jaffe"], root / "jaffe")
    shutil.copy(shipped["fer2013"], root / "fer2013.csv")
    plan = _plan(root)
    assert _images_under(plan, "cohn-kanade-images/") == shipped["ckplus_original_images"]
    assert _images_under(plan, "jaffe/") == shipped["jaffe_images"]
    assert [task.name for task in plan.csv_tasks] == ["fer2013.csv"]
    assert not plan.rejects and not [u for u in plan.unrecognised if "fer2013" in u or "jaffe" in u]


def test_datasets_beside_ckplus48_emotion_folders_are_read(shipped, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(shipped["ckplus"], root)
    shutil.copytree(shipped["jaffe"], root / "more" / "jaffe")
    shutil.copy(shipped["fer2013"], root / "fer2013.csv")
    plan = _plan(root)
    assert _images_under(plan, "more/jaffe/") == shipped["jaffe_images"]
    assert [task.name for task in plan.csv_tasks] == ["fer2013.csv"]
    assert {task.source for task in plan.image_tasks} == {"ckplus", "jaffe"}


@pytest.mark.parametrize("shape", ["four archives", "unpacked into folders of their names"])
def test_ckplus_as_officially_shipped_is_recognised(shipped, tmp_path, shape):
    """CK+ comes as extended-cohn-kanade-images.zip, Emotion_labels.zip, FACS_labels.zip and
    Landmarks.zip; each holds one folder (cohn-kanade-images/, Emotion/, FACS/, Landmarks/)."""
    source = shipped["ckplus-original"]
    root = tmp_path / "data"
    root.mkdir()
    parts = {"extended-cohn-kanade-images": "cohn-kanade-images", "Emotion_labels": "Emotion",
             "FACS_labels": "Emotion", "Landmarks": "Emotion"}  # FACS and Landmarks: stand-in files
    for download, folder in parts.items():
        inner = {"FACS_labels": "FACS", "Landmarks": "Landmarks"}.get(download, folder)
        if shape == "four archives":
            _zip(os.path.join(source, folder), str(root / f"{download}.zip"), inner, macos=True)
        else:
            shutil.copytree(os.path.join(source, folder), root / download / inner)
    (root / "ReadMeCohnKanadeDatabase_website.txt").write_text("CK+")
    plan = _plan(root)
    assert len(plan.image_tasks) == shipped["ckplus_original_images"] > 0
    assert not plan.rejects
    assert any("FACS/: CK+ FACS, not used" in note for note in plan.notes)
    assert any("Landmarks/: CK+ Landmarks, not used" in note for note in plan.notes)
    assert any(u.startswith("ReadMeCohnKanadeDatabase_website.txt") for u in plan.unrecognised)


def test_macos_metadata_is_named_never_taken_for_a_second_copy(shipped, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    _zip(shipped["jaffe"], str(root / "jaffedbase.zip"), "jaffedbase", macos=True)
    shutil.copytree(shipped["ckplus"], root / "CK+48")
    (root / "__MACOSX" / "CK+48").mkdir(parents=True)  # what `unzip` leaves beside a Mac-made zip
    (root / "__MACOSX" / "CK+48" / "._happy").write_bytes(b"\0\5\26\7")
    (root / "._fer2013.csv").write_bytes(b"\0\5\26\7\0\2\0\0Mac OS X")  # AppleDouble: NUL bytes, not a CSV
    shutil.copy(shipped["fer2013"], root / "fer2013.csv")
    (root / "CK+48" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    plan = _plan(root)
    assert _images_under(plan, "jaffedbase.zip!/jaffedbase/") == shipped["jaffe_images"]
    assert [task.name for task in plan.csv_tasks] == ["fer2013.csv"] and not plan.rejects
    metadata = sorted(u for u in plan.unrecognised if u.endswith("(operating-system metadata, not data)"))
    assert [m.split(" (")[0] for m in metadata] == ["._fer2013.csv", "CK+48/.DS_Store", "__MACOSX",
                                                     "jaffedbase.zip!/__MACOSX"]


def test_a_ds_store_in_ckplus_emotion_folder_is_named_not_fatal(shipped, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(shipped["ckplus-original"], root / "CK+")
    (root / "CK+" / "Emotion" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "CK+" / "Emotion" / "notes.txt").write_text("x")
    plan = _plan(root)
    assert len(plan.image_tasks) == shipped["ckplus_original_images"] and not plan.rejects
    assert "CK+/Emotion/notes.txt (file beside CK+'s Emotion subject folders)" in plan.unrecognised


def test_fer2013_twice_is_an_error_naming_both(shipped, tmp_path):
    """The Kaggle fer2013.tar.gz and the folder unpacked from it: every face would be read twice."""
    root = tmp_path / "data"
    (root / "fer2013").mkdir(parents=True)
    shutil.copy(shipped["fer2013"], root / "fer2013" / "fer2013.csv")
    with tarfile.open(root / "fer2013.tar.gz", "w:gz") as t:
        t.add(shipped["fer2013"], arcname="fer2013/fer2013.csv")
    with pytest.raises(IngestError, match=r"holds FER2013 twice: fer2013/fer2013.csv and "
                                          r"fer2013.tar.gz!/fer2013/fer2013.csv .*Keep one copy"):
        _plan(root)


@pytest.mark.parametrize("content, defect", [
    (lambda rows: "".join(rows[1:]), r"no header line: the first line is a row \(\d,"),     # header cut off
    (lambda rows: "".join(r.replace(",", ";") for r in rows), r"missing column\(s\) emotion, pixels, Usage"),
    (lambda rows: "".join(rows).encode("utf-16"), r"not a readable CSV on its first line \(line 1: line contains NUL"),
])
def test_a_fer2013_csv_that_is_not_one_is_refused_by_name_never_skipped(shipped, tmp_path, content, defect):
    root = tmp_path / "data"
    (root / "jaffe").mkdir(parents=True)
    with open(shipped["fer2013"], newline="") as f:
        rows = f.readlines()[:5]
    data = content(rows)
    (root / "fer2013.csv").write_bytes(data if isinstance(data, bytes) else data.encode())
    plan = _plan(root)
    [reject] = plan.rejects
    assert reject.file == str(root / "fer2013.csv")
    assert re.search(defect, reject.defect), reject.defect
    assert not plan.csv_tasks


def test_a_csv_line_without_end_is_refused_at_its_line_before_it_is_held_whole(tmp_path, ingest, monkeypatch):
    monkeypatch.setattr(fer2013_csv, "MAX_LINE_BYTES", 64 * 1024)
    root = tmp_path / "data"
    root.mkdir()
    row = "0," + " ".join(["7"] * 2304) + ",Training\n"
    (root / "fer2013.csv").write_text("emotion,pixels,Usage\n" + row + "1," + "7 " * 200_000)
    with pytest.raises(IngestError) as failure:
        ingest(str(root))
    assert "fer2013.csv line 3: CSV syntax error (line 3: longer than 65,536 bytes" in str(failure.value)


def test_symlinks_that_fan_out_are_searched_once(shipped, tmp_path):
    """Four links to their own folder, eight levels deep, were 4^8 searches of the same folder."""
    root = tmp_path / "data"
    shutil.copytree(shipped["jaffe"], root / "jaffe")
    (root / "x").mkdir()
    for i in range(4):
        os.symlink(".", root / "x" / f"l{i}")
    started = time.perf_counter()
    plan = _plan(root)
    assert time.perf_counter() - started < 10
    assert len(plan.image_tasks) == shipped["jaffe_images"]
    assert sum("symlink loop" in u for u in plan.unrecognised) == 4


def test_beside_a_dataset_read_end_to_end(shipped, tmp_path, ingest):
    root = tmp_path / "data"
    shutil.copytree(shipped["jaffe"], root)
    shutil.copy(shipped["fer2013"], root / "fer2013.csv")
    run = ingest(str(root))
    ids = [e[IMAGE_ID] for split in SPLITS for e in run.examples[split]]
    assert sum(i.startswith("fer2013.csv:") for i in ids) == 120
    assert sum(i.endswith(".tiff") for i in ids) == shipped["jaffe_images"]


def test_documents_in_a_dataset_folder_and_trailing_blank_space_are_not_bad_records(shipped, tmp_path, ingest):
    root = tmp_path / "data"
    shutil.copytree(shipped["jaffe"], root / "jaffe")
    (root / "jaffe" / "jaffe_ratings.xls").write_bytes(b"\xd0\xcf\x11\xe0")  # the semantic ratings sheet
    with open(shipped["fer2013"]) as f:
        rows = f.readlines()[:4]
    (root / "fer2013.csv").write_text("".join(rows) + "   \n\t\n")  # an editor's trailing blank lines
    run = ingest(str(root))
    assert run.summary["rejected"]["count"] == 0
    assert "jaffe/jaffe_ratings.xls (not an image (by its name))" in run.summary["unrecognised"]
    assert run.summary["examples"]["total"] == shipped["jaffe_images"] + 3


@pytest.mark.parametrize("sorted_by", ["expression", "poser", "expression, one image misfiled"])
def test_jaffe_sorted_into_folders_is_one_dataset(shipped, tmp_path, sorted_by):
    """Common repacks: jaffe/<expression>/KA.AN1.39.tiff, jaffe/<poser>/... The names keep the
    labels; two whole copies side by side are still two copies."""
    root = tmp_path / "data"
    for i, name in enumerate(sorted(os.listdir(shipped["jaffe"]))):
        poser, code = name.split(".")[0], name.split(".")[1][:2]
        folder = poser if sorted_by == "poser" else ("SA" if i == 0 and "misfiled" in sorted_by else code)
        (root / "jaffe" / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(shipped["jaffe"], name), root / "jaffe" / folder / name)
    plan = _plan(root)
    assert len(plan.image_tasks) == shipped["jaffe_images"] and not plan.rejects
    assert plan.datasets == [f"jaffe/: JAFFE ({shipped['jaffe_images']} images)"]
    assert {t.emotion for t in plan.image_tasks} == set(range(7))
    labels = {os.path.basename(t.name): t.emotion for t in plan.image_tasks}
    assert labels == {os.path.basename(t.name): t.emotion for t in _plan(shipped["jaffe"]).image_tasks}
    copies = tmp_path / "copies"
    shutil.copytree(shipped["jaffe"], copies / "jaffe")
    shutil.copytree(shipped["jaffe"], copies / "jaffe (1)")
    with pytest.raises(IngestError, match=r"holds JAFFE twice: jaffe and jaffe \(1\)"):
        _plan(copies)


def test_a_ckplus_label_without_its_images_is_noted(shipped, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(shipped["ckplus-original"], root / "CK+")
    label = sorted((root / "CK+" / "Emotion").glob("*/*/*_emotion.txt"))[0]
    subject, sequence = label.parent.parent.name, label.parent.name
    shutil.rmtree(root / "CK+" / "cohn-kanade-images" / subject / sequence)
    plan = _plan(root)
    assert len(plan.image_tasks) < shipped["ckplus_original_images"]
    assert (f"CK+/Emotion/: 1 CK+ emotion label(s) without their image sequence in CK+/cohn-kanade-images/, "
            f"e.g. {subject.upper()}/{sequence}") in plan.notes


def test_a_zip_made_on_windows_with_backslashes_is_read(shipped, tmp_path, ingest):
    """Windows PowerShell's Compress-Archive stores 'CK+48\\anger\\S010_....png'."""
    root = tmp_path / "data"
    root.mkdir()
    folder = shipped["ckplus"]
    with zipfile.ZipFile(root / "CK+48.zip", "w") as z:
        z.writestr(zipfile.ZipInfo("CK+48\\"), b"")
        for dirpath, _, names in os.walk(folder):
            for name in names:
                inside = "\\".join(["CK+48", *os.path.relpath(os.path.join(dirpath, name), folder).split(os.sep)])
                z.write(os.path.join(dirpath, name), inside)
        z.writestr("..\\escape.png", b"x")
    run = ingest(str(root), bad_record_budget=1)
    ids = [e[IMAGE_ID] for split in SPLITS for e in run.examples[split]]
    plain = _plan(shipped["ckplus"])
    assert len(ids) == len(plain.image_tasks) > 0 and all(i.startswith("CK+48.zip!/CK+48/") for i in ids)
    assert run.summary["rejected"]["count"] == 1  # the '..' member, refused by name


@pytest.mark.parametrize("suffix, mode", [(".tar.xz", "w:xz"), (".tar.bz2", "w:bz2")])
def test_xz_and_bz2_tars_are_archives_too(shipped, tmp_path, ingest, suffix, mode):
    root = tmp_path / "data"
    root.mkdir()
    with tarfile.open(root / f"jaffedbase{suffix}", mode) as t:
        t.add(shipped["jaffe"], arcname="jaffedbase")
    run = ingest(str(root))
    ids = [e[IMAGE_ID] for split in SPLITS for e in run.examples[split]]
    assert len(ids) == shipped["jaffe_images"] and all(i.startswith(f"jaffedbase{suffix}!/jaffedbase/") for i in ids)


def test_a_bucket_root_reads_its_csvs_and_zips(shipped, tmp_path, ingest):
    """A data root in a bucket goes through tf.io.gfile. Stand-in for gs:// or s3:// (no bucket here):
    TensorFlow's in-memory ram:// filesystem, the same GFile API."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    root = f"ram://{tmp_path.name}/data"
    tf.io.gfile.makedirs(root)
    tf.io.gfile.copy(shipped["fer2013"], f"{root}/fer2013.csv")
    _zip(shipped["jaffe"], str(tmp_path / "jaffe.zip"), "jaffe")
    tf.io.gfile.copy(str(tmp_path / "jaffe.zip"), f"{root}/jaffe.zip")
    run = ingest(root)
    ids = [e[IMAGE_ID] for split in SPLITS for e in run.examples[split]]
    assert sum(i.startswith("fer2013.csv:") for i in ids) == 120
    assert sum(i.startswith("jaffe.zip!/jaffe/") for i in ids) == shipped["jaffe_images"]


def test_ckplus_unpacked_beside_its_zip_is_two_copies_named(shipped, tmp_path):
    """Unzipped in place with the zip kept: each part is there twice, an error that says so (it
    was "nothing under the root is a dataset")."""
    root = tmp_path / "data"
    shutil.copytree(shipped["ckplus-original"], root)
    _zip(os.path.join(shipped["ckplus-original"], "Emotion"), str(root / "Emotion_labels.zip"), "Emotion")
    with pytest.raises(IngestError, match=r"holds CK\+'s Emotion twice: Emotion and Emotion_labels.zip!/Emotion "
                                          r"\(a zip and the folder unpacked from it are two copies\)"):
        _plan(root)


def test_ckplus48_beside_the_original_frames_is_noted(shipped, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(shipped["ckplus-original"], root / "CK+")
    shutil.copytree(shipped["ckplus"], root / "CK+48")
    plan = _plan(root)
    assert {t.source for t in plan.image_tasks} == {"ckplus"}
    assert any(note.startswith("CK+48 and CK+'s original frames are both ingested") for note in plan.notes)


@pytest.mark.parametrize("unpacked", ["ckplus-original", "jaffe"])
@pytest.mark.parametrize("fer2013_as", ["fer2013.tar.gz", "fer2013/ folder"])
def test_fer2013_in_a_folder_or_archive_beside_a_dataset_unpacked_into_the_root_is_read(
        shipped, tmp_path, unpacked, fer2013_as):
    """A folder or archive beside an unpacked dataset was handed over only when it held an image
    dataset: Kaggle's fer2013.tar.gz (fer2013/fer2013.csv inside) beside CK+'s folders was listed
    as unrecognised and the run passed without FER2013."""
    root = tmp_path / "data"
    shutil.copytree(shipped[unpacked], root)
    if fer2013_as == "fer2013.tar.gz":
        with tarfile.open(root / "fer2013.tar.gz", "w:gz") as tar:
            tar.add(shipped["fer2013"], "fer2013/fer2013.csv")
        expected = "fer2013.tar.gz!/fer2013/fer2013.csv"
    else:
        (root / "fer2013").mkdir()
        shutil.copy(shipped["fer2013"], root / "fer2013" / "fer2013.csv")
        expected = "fer2013/fer2013.csv"
    plan = _plan(root)
    assert [task.name for task in plan.csv_tasks] == [expected]
    assert not [u for u in plan.unrecognised if "fer2013" in u]


def test_two_datasets_unpacked_into_one_folder_is_an_error_naming_both(shipped, tmp_path):
    """JAFFE's images loose in the root with CK+48's emotion folders beside them: each lister took
    the other's files for strays, and the run passed with JAFFE alone."""
    root = tmp_path / "data"
    shutil.copytree(shipped["jaffe"], root)
    for emotion_folder in os.listdir(shipped["ckplus"]):
        shutil.copytree(os.path.join(shipped["ckplus"], emotion_folder), root / emotion_folder)
    with pytest.raises(IngestError, match=r"the data root .* holds JAFFE and CK\+48 crops side by side.*"
                                          r"Move each into a folder of its own"):
        _plan(root)


def test_a_symlink_out_of_the_root_fails_the_run_whatever_the_budget(shipped, tmp_path, ingest):
    """It loses everything behind it (a whole dataset stored elsewhere): it used to count as one bad
    record, which a budget of 1 excused."""
    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    shutil.copytree(shipped["jaffe"], elsewhere / "jaffe")
    root.mkdir()
    shutil.copy(shipped["fer2013"], root / "fer2013.csv")
    os.symlink(elsewhere / "jaffe", root / "jaffe")
    with pytest.raises(IngestError, match=r"symlink leads outside the data root"):
        ingest(str(root), bad_record_budget=5)


def test_an_empty_fer2013_csv_fails_the_run_whatever_the_budget(shipped, tmp_path, ingest):
    root = tmp_path / "data"
    shutil.copytree(shipped["jaffe"], root / "jaffe")
    (root / "fer2013.csv").write_bytes(b"")
    with pytest.raises(IngestError, match=r"fer2013.csv.*empty file.*interrupted download"):
        ingest(str(root), bad_record_budget=5)


def test_ckplus_frames_without_their_emotion_labels_are_counted_with_one_note(shipped, tmp_path):
    """cohn-kanade-images/ alone (Emotion_labels.zip not downloaded): no label may be invented, and
    the frames used to come out as one "not a dataset file" line each."""
    root = tmp_path / "data"
    shutil.copytree(os.path.join(shipped["ckplus-original"], "cohn-kanade-images"), root / "cohn-kanade-images")
    shutil.copytree(shipped["jaffe"], root / "jaffe")
    frames = sum(len(names) for _, _, names in os.walk(root / "cohn-kanade-images"))
    plan = _plan(root)
    assert {task.source for task in plan.image_tasks} == {"jaffe"}
    assert plan.excluded[("ckplus", "CK+ sequence without an Emotion label, not ingested")] == frames
    assert [n for n in plan.notes if "cohn-kanade-images/: CK+'s frames without its Emotion labels" in n]
    assert not [u for u in plan.unrecognised if "cohn-kanade-images" in u]


def test_an_empty_archive_is_named_as_such(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    zipfile.ZipFile(root / "CK+48.zip", "w").close()
    with pytest.raises(IngestError, match=r"CK\+48.zip \(an empty archive: no members\)"):
        _plan(root)


def test_a_second_download_of_fer2013_under_another_name_is_an_error_naming_both(shipped, tmp_path):
    """A browser's "fer2013 (1).csv" beside fer2013.csv was ingested too: every face twice, a note only."""
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(shipped["fer2013"], root / "fer2013.csv")
    shutil.copy(shipped["fer2013"], root / "fer2013 (1).csv")
    with pytest.raises(IngestError, match=r"holds the same faces twice: fer2013 \(1\).csv and fer2013.csv start "
                                          r"with the same row"):
        _plan(root)


def test_kaggles_train_csv_in_another_folder_than_the_whole_file_is_left_out(shipped, tmp_path):
    """train.csv is FER2013's Training rows again: in another folder than fer2013.csv it used to be
    ingested too, hash-split, putting the same faces in train through one file and eval/test through
    the other."""
    root = tmp_path / "data"
    (root / "fer2013").mkdir(parents=True)
    (root / "kaggle").mkdir()
    shutil.copy(shipped["fer2013"], root / "fer2013" / "fer2013.csv")
    lines = open(shipped["fer2013"]).read().splitlines()
    training = [line.rsplit(",", 1)[0] for line in lines[1:] if line.endswith(",Training")]
    (root / "kaggle" / "train.csv").write_text("emotion,pixels\n" + "\n".join(training) + "\n")
    plan = _plan(root)
    [task] = [t for t in plan.csv_tasks if t.name == "kaggle/train.csv"]
    assert task.excluded == "Kaggle's train.csv, FER2013's Training rows again (ingested from fer2013/fer2013.csv)"
    assert [t.name for t in plan.csv_tasks if not t.excluded] == ["fer2013/fer2013.csv"]


def test_a_gzipped_fer2013_csv_stops_the_run_saying_how_to_read_it(shipped, tmp_path, ingest):
    """fer2013.csv.gz was one 'not a dataset file' line, and a run with other data passed without FER2013."""
    import gzip  # pylint: disable=import-outside-toplevel

    root = tmp_path / "data"
    shutil.copytree(shipped["jaffe"], root / "jaffe")
    with open(shipped["fer2013"], "rb") as source, gzip.open(root / "fer2013.csv.gz", "wb") as target:
        target.write(source.read())
    (root / "notes.csv.bz2").write_bytes(b"BZh9")
    plan = _plan(root)
    assert [r.defect for r in plan.rejects] == [
        "a compressed CSV, not read: decompress it (gunzip fer2013.csv.gz), or put it in a .zip or .tar.gz, which "
        "are read in place"]
    assert "notes.csv.bz2 (a compressed CSV, not read: decompress it (bunzip2 notes.csv.bz2), or put it in a .zip " \
           "or .tar.gz, which are read in place)" in plan.unrecognised
    with pytest.raises(IngestError, match=r"fer2013.csv.gz: a compressed CSV"):
        ingest(str(root), bad_record_budget=5)


def test_many_os_metadata_files_read_as_one_line_of_the_summary(shipped, tmp_path, ingest):
    """Unpacked by a tool that keeps macOS's `._` files, every image has one beside it: they were one
    summary line each. The JSON summary keeps every one."""
    from components.example_gen import summary as summary_lib  # pylint: disable=import-outside-toplevel

    root = tmp_path / "data"
    shutil.copytree(shipped["jaffe"], root / "jaffe")
    for name in os.listdir(root / "jaffe"):
        (root / "jaffe" / f"._{name}").write_bytes(b"\0\5\26\7")
    run = ingest(str(root))
    assert len(run.summary["unrecognised"]) == shipped["jaffe_images"]
    lines = [line for line in summary_lib.format_table(run.summary).splitlines() if line.startswith("unrecognised")]
    assert len(lines) == 1 and lines[0].startswith(
        f"unrecognised  {shipped['jaffe_images']} entries of operating-system metadata, not data (__MACOSX/, ._*, "
        ".DS_Store...), e.g. jaffe/._")
