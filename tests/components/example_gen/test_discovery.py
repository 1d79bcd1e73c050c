"""Data roots as downloads come: datasets found by what they hold at any depth, archives read in
place, the original CK+ layout, and archive members that must not be read refused by name."""
import collections
import gzip
import io
import os
import shutil
import subprocess
import tarfile
import zipfile

import pytest

from components.example_gen.data_root import plan_ingestion
from components.example_gen.options import IngestOptions
from components.example_gen.records import IngestError
from contract.data import EMOTIONS, IMAGE_ID, LABEL, SPLITS, SUBJECT
from deep_emotion.demo_data.generate import generate


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    """Each dataset once, as the demo writes it: {format: folder holding it}."""
    root = tmp_path_factory.mktemp("downloads")
    written = generate(str(root), n=300, seed=4, formats=("fer2013", "ckplus", "ckplus-original", "jaffe", "ferg"))
    return root, written["datasets"]


def _count(run):
    return sum(len(examples) for examples in run.examples.values())


def _copy(src, dst):
    shutil.copytree(src, dst) if os.path.isdir(src) else shutil.copy(src, dst)


@pytest.mark.parametrize("dataset, where", [
    ("jaffe", "jaffe/jaffe"),                          # a download unpacked into a folder of the same name
    ("jaffe", "images"),                               # recognised by its files, whatever the folder is called
    ("ferg", "ferg/FERG_DB_256"),
    ("ckplus", "datasets/ck/2015/CK+48"),
    ("ckplus-original", "CK+ extended/CK+"),
])
def test_a_dataset_is_found_by_what_it_holds_at_any_depth(downloads, ingest, tmp_path, dataset, where):
    root, datasets = downloads
    data_root = tmp_path / "jaffe" if dataset == "jaffe" else tmp_path / "data"  # a root called "jaffe" too
    _copy(datasets[dataset]["path"], data_root / where)
    run = ingest(str(data_root))
    expected = datasets[dataset]["images"] - (datasets[dataset]["by_class"].get("contempt", 0)
                                               if dataset == "ckplus" else 0)
    if dataset == "ckplus-original":
        labelled = datasets[dataset]["by_class"]
        expected = 3 * (sum(labelled.values()) - labelled["contempt"])
    assert _count(run) == expected
    assert all(e[IMAGE_ID].startswith(where + "/") for split in SPLITS for e in run.examples[split])


def test_two_copies_of_one_dataset_are_an_error_naming_both(downloads, tmp_path):
    root, datasets = downloads
    _copy(datasets["jaffe"]["path"], tmp_path / "data" / "a" / "jaffe")
    _copy(datasets["jaffe"]["path"], tmp_path / "data" / "b" / "jaffe_copy")
    with pytest.raises(IngestError, match=r"holds JAFFE twice: a/jaffe and b/jaffe_copy\. Keep one copy"):
        plan_ingestion(str(tmp_path / "data"), IngestOptions())


def _archive(folder, archive_path, arcname):
    if archive_path.endswith(".zip"):
        with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as z:
            for dirpath, _, names in os.walk(folder):
                for name in names:
                    path = os.path.join(dirpath, name)
                    z.write(path, os.path.join(arcname, os.path.relpath(path, folder)))
    else:
        mode = "w:gz" if archive_path.endswith(("gz", "tgz")) else "w"
        with tarfile.open(archive_path, mode) as t:
            t.add(folder, arcname=arcname)


@pytest.mark.parametrize("dataset, archive", [
    ("ckplus", "CK+48.zip"), ("jaffe", "jaffedbase.tar"), ("ferg", "FERG_DB_256.tar.gz"),
    ("ckplus-original", "CK+.tgz")])
def test_archives_are_read_in_place_with_the_same_counts_as_their_folders(downloads, ingest, tmp_path, dataset,
                                                                         archive):
    root, datasets = downloads
    folder = datasets[dataset]["path"]
    data_root = tmp_path / "data"
    data_root.mkdir()
    _archive(folder, str(data_root / archive), os.path.basename(folder))
    packed = ingest(str(data_root))
    unpacked = ingest(str(_alone(folder, tmp_path)))
    assert _count(packed) == _count(unpacked) > 0
    ids = {e[IMAGE_ID] for split in SPLITS for e in packed.examples[split]}
    assert all(i.startswith(f"{archive}!/{os.path.basename(folder)}/") for i in ids)
    assert {split: len(v) for split, v in packed.examples.items()} == {
        split: len(v) for split, v in unpacked.examples.items()}
    assert sorted(os.listdir(data_root)) == [archive]  # nothing unpacked beside it


def _alone(folder, tmp_path):
    alone = tmp_path / "alone"
    shutil.copytree(folder, alone / os.path.basename(folder))
    return alone


def test_a_kaggle_style_fer2013_tar_gz_is_read_row_by_row(downloads, ingest, tmp_path):
    root, datasets = downloads
    data_root = tmp_path / "data"
    data_root.mkdir()
    with tarfile.open(data_root / "fer2013.tar.gz", "w:gz") as t:
        t.add(datasets["fer2013"]["path"], arcname="fer2013/fer2013.csv")
    run = ingest(str(data_root))
    assert _count(run) == 300
    assert run.summary["datasets"] == ["fer2013.tar.gz!/fer2013/fer2013.csv: FER2013 rows, split by Usage "
                                       "(Training/PublicTest/PrivateTest)"]
    assert {e[IMAGE_ID] for e in run.examples["train"]} >= {"fer2013.tar.gz!/fer2013/fer2013.csv:2"}


def _member(archive, name, data=b"", kind="file", target=""):
    if isinstance(archive, zipfile.ZipFile):
        info = zipfile.ZipInfo(name)
        if kind == "symlink":
            info.external_attr = 0o120777 << 16
            data = target.encode()
        archive.writestr(info, data)
        return
    info = tarfile.TarInfo(name)
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, target
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, target
    else:
        info.size = len(data)
    archive.addfile(info, io.BytesIO(data) if kind == "file" else None)


def test_members_with_absolute_paths_dotdot_or_links_are_refused_by_name(data_root, ingest):
    data_root.image("staging/KA.HA1.1.tiff", size=(256, 256), format="TIFF")
    tiff = open(os.path.join(data_root.path, "staging", "KA.HA1.1.tiff"), "rb").read()
    os.makedirs(data_root.path + "/archives")
    with zipfile.ZipFile(data_root.path + "/archives/jaffe.zip", "w") as z:
        _member(z, "jaffe/KA.HA1.1.tiff", tiff)
        _member(z, "jaffe/KB.HA1.2.tiff", tiff)
        _member(z, "../KC.HA1.3.tiff", tiff)
        _member(z, "/etc/KD.HA1.4.tiff", tiff)
        _member(z, "jaffe/KE.HA1.5.tiff", kind="symlink", target="/etc/passwd")
    with tarfile.open(data_root.path + "/archives/more.tar.gz", "w:gz") as t:
        _member(t, "FERG_DB_256/aia/aia_joy/aia_joy_1.png", open(_png(data_root), "rb").read())
        _member(t, "FERG_DB_256/aia/aia_joy/aia_joy_2.png", kind="symlink", target="../../../../x.png")
        _member(t, "FERG_DB_256/aia/aia_joy/aia_joy_3.png", kind="hardlink", target="FERG_DB_256/aia/aia_joy/aia_joy_1.png")
        _member(t, "FERG_DB_256/../../aia_joy_4.png", open(_png(data_root), "rb").read())
    shutil.rmtree(data_root.path + "/staging")
    run = ingest(data_root.path, bad_record_budget=10)
    refused = {(r["file"].split("!/", 1)[-1], r["defect"]) for r in run.quarantine()}
    assert refused == {
        ("../KC.HA1.3.tiff", "archive member refused: '..' in its path (it would land outside the archive's folder)"),
        ("/etc/KD.HA1.4.tiff", "archive member refused: absolute path"),
        ("jaffe/KE.HA1.5.tiff", "archive member refused: a symbolic link"),
        ("FERG_DB_256/aia/aia_joy/aia_joy_2.png", "archive member refused: a symbolic link (to ../../../../x.png)"),
        ("FERG_DB_256/aia/aia_joy/aia_joy_3.png",
         "archive member refused: a hard link (to FERG_DB_256/aia/aia_joy/aia_joy_1.png)"),
        ("FERG_DB_256/../../aia_joy_4.png", "archive member refused: '..' in its path (it would land outside the "
                                            "archive's folder)"),
    }
    assert sorted(e[IMAGE_ID] for split in SPLITS for e in run.examples[split]) == [
        "archives/jaffe.zip!/jaffe/KA.HA1.1.tiff", "archives/jaffe.zip!/jaffe/KB.HA1.2.tiff",
        "archives/more.tar.gz!/FERG_DB_256/aia/aia_joy/aia_joy_1.png"]


def _png(data_root):
    data_root.image("tmp/face.png", size=(64, 64))
    return os.path.join(data_root.path, "tmp", "face.png")


def test_a_member_over_the_byte_budget_is_refused_before_it_is_read(data_root, ingest):
    data_root.image("CK+48/happy/S001_001_00000001.png")
    big = os.path.join(data_root.path, "CK+48", "happy", "S002_001_00000001.png")
    data_root.image("CK+48/happy/S002_001_00000001.png", size=(600, 600))
    with zipfile.ZipFile(data_root.path + "/CK+48.zip", "w") as z:
        for name in ("S001_001_00000001.png", "S002_001_00000001.png"):
            z.write(os.path.join(data_root.path, "CK+48", "happy", name), f"CK+48/happy/{name}")
    shutil.rmtree(data_root.path + "/CK+48")
    size = zipfile.ZipFile(data_root.path + "/CK+48.zip").getinfo("CK+48/happy/S002_001_00000001.png").file_size
    run = ingest(data_root.path, bad_record_budget=1, max_archive_member_bytes=size - 1)
    [reject] = run.quarantine()
    assert reject["file"].endswith("CK+48.zip!/CK+48/happy/S002_001_00000001.png") and big
    assert f"is {size:,} bytes, over {size - 1:,}" in reject["defect"]
    assert _count(run) == 1


def _ckplus48_tar(downloads, path, writer="tarfile"):
    """CK+48 as a .tar (written by Python's tarfile, or by GNU tar when it is there); its bytes and
    the offsets of its members' headers."""
    folder = downloads[1]["ckplus"]["path"]
    if writer == "GNU tar":
        if shutil.which("tar") is None:
            pytest.skip("no tar command here")
        subprocess.run(["tar", "cf", path, "-C", os.path.dirname(folder), os.path.basename(folder)], check=True)
    else:
        with tarfile.open(path, "w") as t:
            t.add(folder, arcname=os.path.basename(folder))
    with tarfile.open(path) as t:
        headers = [m.offset for m in t.getmembers()]
        end = t.offset  # where the last member's data ends and the end-of-archive marker starts
    with open(path, "rb") as f:
        return f.read(), headers, end


def _ckplus48_images(downloads):
    return downloads[1]["ckplus"]["images"] - downloads[1]["ckplus"]["by_class"].get("contempt", 0)


@pytest.mark.parametrize("writer", ["tarfile", "GNU tar"])
def test_a_complete_tar_is_read_whole(downloads, ingest, tmp_path, writer):
    data_root = tmp_path / "data"
    data_root.mkdir()
    data, _, end = _ckplus48_tar(downloads, str(data_root / "CK+48.tar"), writer)
    assert len(data) % 10240 == 0 and len(data) - end >= 1024 and not data[end:].strip(b"\0")  # record-padded
    run = ingest(str(data_root))
    assert _count(run) == _ckplus48_images(downloads) > 0


@pytest.mark.parametrize("ending, complete", [
    ("two zero blocks, padded to a 10240-byte record", True),  # POSIX, as GNU tar and tarfile write it
    ("two zero blocks", True),
    ("one zero block", True),                                   # short of POSIX, but nothing is missing
    ("cut at a member's header", False),                        # what tarfile alone takes for a complete tar
    ("cut inside a member's header", False),
    ("cut after the last member's data", False),
    ("a block that is neither a header nor zeros", False),
])
@pytest.mark.parametrize("compressed", [False, True])
def test_a_tar_is_listed_only_when_it_ends_with_its_end_of_archive_marker(downloads, tmp_path, ending, complete,
                                                                            compressed):
    from components.example_gen import archives  # pylint: disable=import-outside-toplevel

    data, headers, end = _ckplus48_tar(downloads, str(tmp_path / "CK+48.tar"))
    members, cut = len(headers), headers[len(headers) * 6 // 10]
    data = {
        "two zero blocks, padded to a 10240-byte record": data,
        "two zero blocks": data[:end + 1024],
        "one zero block": data[:end + 512],
        "cut at a member's header": data[:cut],
        "cut inside a member's header": data[:cut + 100],
        "cut after the last member's data": data[:end],
        "a block that is neither a header nor zeros": data[:cut] + b"\x01" * 512 + data[cut + 512:],
    }[ending]
    name = "CK+48.tar.gz" if compressed else "CK+48.tar"
    blob = gzip.compress(data) if compressed else data

    def open_binary(path):
        return io.BytesIO(blob)

    if complete:
        index = archives.index_archive(name, open_binary)
        assert sum(len(m) for m in index.folders.values()) == members
        return
    with pytest.raises(archives.ArchiveError) as refused:
        archives.index_archive(name, open_binary)
    kind = "corrupt" if ending.startswith("a block") else "truncated"
    listed = members if ending == "cut after the last member's data" else headers.index(cut)
    assert str(refused.value).startswith(f"cannot read the archive ({kind} tar: no end-of-archive marker after its "
                                         f"{listed} member(s), at byte ")


@pytest.mark.parametrize("archive", ["CK+48.tar", "CK+48.tar.gz"])
def test_a_tar_cut_at_a_member_boundary_is_refused_naming_the_archive_not_read_in_part(downloads, ingest, tmp_path,
                                                                                         archive):
    """`tar cf CK+48.tar CK+48`, then the copy stops at a member's header 60% in: tarfile lists the
    first 60% as if they were all, and ingestion took them without a word."""
    root, datasets = downloads
    data_root = tmp_path / "data"
    data_root.mkdir()
    data, headers, _ = _ckplus48_tar(downloads, str(tmp_path / "CK+48.tar"))
    data = data[:headers[len(headers) * 6 // 10]]
    (data_root / archive).write_bytes(gzip.compress(data) if archive.endswith(".gz") else data)
    _copy(datasets["jaffe"]["path"], data_root / "jaffe")  # something else to ingest beside it
    for budget in (0, 10):  # a whole dataset lost is not one bad record among many: no budget excuses it
        with pytest.raises(IngestError) as failure:
            ingest(str(data_root), bad_record_budget=budget)
        assert (f"1 defect(s) that no bad-record budget excuses (1 bad record(s) in all):\n  {data_root / archive}: "
                "cannot read the archive (truncated tar: no end-of-archive marker after its ") in str(failure.value)


def test_the_original_ckplus_layout_gives_its_peak_frames_by_subject(downloads, ingest):
    root, datasets = downloads
    written = datasets["ckplus-original"]
    run = ingest(written["path"])
    labelled = written["by_class"]
    counts = collections.Counter(EMOTIONS[e[LABEL]] for split in SPLITS for e in run.examples[split])
    expected = {{"anger": "angry", "sadness": "sad"}.get(k, k): 3 * n for k, n in labelled.items()
                if k != "contempt" and n}
    assert dict(counts) == expected
    excluded = run.summary["excluded"]["ckplus"]
    assert excluded["contempt: no FER2013 class (set contempt_as to map it)"] == 3 * labelled["contempt"]
    unlabelled = written["sequences"] - written["labelled_sequences"]
    assert unlabelled > 0 and excluded["CK+ sequence without an Emotion label, not ingested"] > 0
    subjects = collections.defaultdict(set)
    for split in SPLITS:
        for e in run.examples[split]:
            subjects[e[SUBJECT]].add(split)
    assert all(len(s) == 1 for s in subjects.values()) and len({s for v in subjects.values() for s in v}) == 3
    assert all("face_box" in e["features"] for split in SPLITS for e in run.examples[split])


def test_peak_frames_and_the_neutral_first_frame_are_options(downloads, ingest):
    root, datasets = downloads
    written = datasets["ckplus-original"]
    kept = sum(n for k, n in written["by_class"].items() if k != "contempt")
    run = ingest(written["path"], ckplus_peak_frames=1, ckplus_first_frame_neutral=True)
    counts = collections.Counter(EMOTIONS[e[LABEL]] for split in SPLITS for e in run.examples[split])
    assert counts["neutral"] == sum(written["by_class"].values())  # every labelled sequence's first frame
    assert sum(counts.values()) - counts["neutral"] == kept
