"""Untrusted downloads: damaged archive members, decompression bombs, archives of 100,000 members,
names twice in one zip, a fer2013.csv cut mid-row or with no rows, FER+ labels out of step. Each
is named, with its file (and member, line); what loses a whole file or archive fails whatever the
bad-record budget; what costs time is bounded."""
import gzip
import io
import os
import struct
import tarfile
import time
import warnings
import zipfile

import numpy as np
import pytest
from apache_beam.pvalue import TaggedOutput
from PIL import Image

from components.example_gen import archives
from components.example_gen.data_root import plan_ingestion
from components.example_gen.fer2013_csv import CsvTask, ReadCsvFile
from components.example_gen.options import IngestOptions
from components.example_gen.records import IngestError
from contract.data import IMAGE_ID, PIXELS, SPLITS

_FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _damage(path: str, member: str, how: str, start_fraction: float = 1 / 3) -> None:
    """Damages one member's stored bytes in place, from start_fraction of them on; the zip's
    directories stay intact."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", f.read(4))
        start = info.header_offset + 30 + name_length + extra_length
        if how == "deflate stream overwritten":  # zlib.error, not a CRC mismatch
            skip = max(2, int(info.compress_size * start_fraction))
            f.seek(start + skip)
            f.write(np.random.default_rng(0).integers(0, 256, info.compress_size - skip - 2, dtype=np.uint8).tobytes())
        else:  # "a digit changed" (a stored member): the data reads, the CRC-32 does not match
            f.seek(start + info.compress_size // 2)
            at = next(i for i, byte in enumerate(f.read(100)) if chr(byte) in "023456789")
            f.seek(start + info.compress_size // 2 + at)
            f.write(b"1")


def _fer_rows(data_root, usages) -> str:
    return "".join(f"{i % 7},{data_root.text(data_root.pixels())},{usage}\n" for i, usage in enumerate(usages))


def _read_csv(path: str, layout: str = "fer2013", ferplus_path=None, **options):
    """ReadCsvFile on one file, without Beam: (examples, rejects)."""
    outputs = list(ReadCsvFile(IngestOptions(**options)).process(
        CsvTask(path, os.path.basename(path), layout, ferplus_path)))
    examples = [o for o in outputs if not isinstance(o, TaggedOutput)]
    return examples, [o.value for o in outputs if isinstance(o, TaggedOutput) and o.tag == "rejected"]


# 1. A damaged member of an intact zip


def test_a_damaged_image_member_is_one_named_reject_not_a_crash(data_root, ingest):
    """A broken deflate stream raised zlib.error, which nothing caught: the whole run crashed."""
    path = os.path.join(data_root.path, "CK+48.zip")
    os.makedirs(data_root.path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i in (1, 2, 3):
            z.writestr(f"CK+48/happy/S00{i}_001_00000001.png", _png(i) + bytes(4000))  # deflate has work to do
    _damage(path, "CK+48/happy/S002_001_00000001.png", "deflate stream overwritten", start_fraction=0)
    run = ingest(data_root.path, bad_record_budget=1)
    [reject] = run.quarantine()
    assert reject["file"] == f"{path}!/CK+48/happy/S002_001_00000001.png" and not reject["fatal"]
    assert reject["defect"].startswith("cannot read the archive member (its compressed data is damaged (zlib.error: ")
    assert sorted(e[IMAGE_ID] for split in SPLITS for e in run.examples[split]) == [
        "CK+48.zip!/CK+48/happy/S001_001_00000001.png", "CK+48.zip!/CK+48/happy/S003_001_00000001.png"]


@pytest.mark.parametrize("how, error", [("deflate stream overwritten", "zlib.error"),
                                        ("a digit changed", "BadZipFile: Bad CRC-32 for file 'fer2013.csv'")])
def test_a_damaged_csv_member_loses_the_rest_of_the_file_whatever_the_budget(data_root, ingest_into, tmp_path,
                                                                            how, error):
    """zipfile.BadZipFile and zlib.error came out of ReadCsvFile, which caught only OSError."""
    path = os.path.join(data_root.path, "fer2013.zip")
    os.makedirs(data_root.path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if how.startswith("deflate") else zipfile.ZIP_STORED) as z:
        z.writestr("fer2013.csv", "emotion,pixels,Usage\n" + _fer_rows(data_root, ["Training"] * 40))
    _damage(path, "fer2013.csv", how)
    data_root.image("CK+48/happy/S001_001_00000001.png")  # something else to ingest
    with pytest.raises(IngestError) as failure:
        ingest_into(data_root.path, str(tmp_path / "out"), bad_record_budget=100)
    message = str(failure.value)
    assert "1 defect(s) that no bad-record budget excuses" in message
    [line] = [line for line in message.splitlines() if "cannot be read after" in line]
    assert line.startswith(f"  {path}!/fer2013.csv line ")
    assert (": the file cannot be read after this line, so the rest of it is lost (and what was read may be damaged "
            f"too): its compressed data is damaged ({error}") in line
    assert os.listdir(tmp_path / "out") == []


def test_a_damaged_label_file_read_while_listing_is_refused_by_name(tmp_path):
    """CK+'s Emotion labels are read while listing: zlib.error crashed the listing, a bad CRC lost the
    whole archive."""
    path = str(tmp_path / "Emotion_labels.zip")
    label = "Emotion/S005/001/S005_001_00000011_emotion.txt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(label, "   3.0000000e+00\n" * 20)
        z.writestr("Emotion/S010/002/S010_002_00000014_emotion.txt", "   7.0000000e+00\n")
    _damage(path, label, "deflate stream overwritten", start_fraction=0)
    index = archives.index_archive(path, lambda p: open(p, "rb"))
    [(name, why)] = index.refused
    assert name == label and why.startswith("cannot be read: its compressed data is damaged (zlib.error: ")
    assert [m.content for m in index.children("Emotion/S010/002")] == [b"   7.0000000e+00\n"]
    assert index.children("Emotion/S005/001") == []


# 2. Listing is linear in the members of a folder


def test_a_zip_of_many_members_in_one_folder_is_listed_in_linear_time():
    """Each member scanned its folder's whole list: 40,000 members took 12 s to list, 160,000 would take minutes."""
    members = 40_000
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as z:
        z.writestr("CK+48/", b"")
        z.writestr("CK+48/happy/", b"")
        for i in range(members):
            z.writestr(f"CK+48/happy/S{i:06d}_001_00000001.png", b"")
        z.writestr("CK+48/happy/", b"")  # a folder listed twice is still one folder
    data = blob.getvalue()
    started = time.perf_counter()
    index = archives.index_archive("CK+48.zip", lambda path: io.BytesIO(data))
    elapsed = time.perf_counter() - started
    assert len(index.children("CK+48/happy")) == members and not index.refused
    assert [(m.name, m.is_dir) for m in index.children("")] == [("CK+48", True)]
    assert [(m.name, m.is_dir) for m in index.children("CK+48")] == [("CK+48/happy", True)]
    assert elapsed < 3, f"{elapsed:.1f} s to list {members:,} members"


def test_folders_that_an_archive_does_not_list_are_added_once_each():
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as z:
        for name in ("a/b/c/1.png", "a/b/c/2.png", "a/b/d/3.png", "a/4.png", "e/", "a\\b\\c\\5.png"):
            z.writestr(name, b"")
    data = blob.getvalue()
    index = archives.index_archive("x.zip", lambda path: io.BytesIO(data))
    listing = {folder: sorted((m.name, m.is_dir) for m in members) for folder, members in index.folders.items()}
    assert listing == {"": [("a", True), ("e", True)], "a": [("a/4.png", False), ("a/b", True)],
                       "a/b": [("a/b/c", True), ("a/b/d", True)], "e": [],
                       "a/b/c": [("a/b/c/1.png", False), ("a/b/c/2.png", False), ("a/b/c/5.png", False)],
                       "a/b/d": [("a/b/d/3.png", False)]}


# 3. Decompression bombs


class _Zeros(io.RawIOBase):
    def __init__(self, size: int):
        super().__init__()
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


_BOMB_BYTES = 300 * 2 ** 20


def _write_tar_gz(path: str, members) -> None:
    """members: (name, size, stream) streamed into a .tar.gz, never held whole."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as out, \
            tarfile.open(fileobj=out, mode="w|") as tar:
        for name, size, stream in members:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BufferedReader(stream, 1 << 20) if size else None)


class _WatchedFile(io.BufferedReader):
    """A file that notes how far into it reading went when it is closed."""
    read_to = []

    def close(self):
        if not self.closed:
            self.read_to.append(self.tell())
        super().close()


@pytest.fixture(scope="module")
def tar_bombs(tmp_path_factory):
    """{case: path} of .tar.gz files holding 300 MiB of zeros (about 300 KB each), at the start or
    after 16 MiB of real (incompressible) data."""
    folder = tmp_path_factory.mktemp("bombs")
    real = np.random.default_rng(0).integers(0, 256, 16 * 2 ** 20, dtype=np.uint8).tobytes()
    paths = {"a bomb first": str(folder / "first" / "CK+48.tar.gz"),
             "a bomb after real images": str(folder / "after" / "CK+48.tar.gz")}
    for case, path in paths.items():
        os.makedirs(os.path.dirname(path))
        before = [("CK+48/happy/S001_001_00000001.png", len(real), io.BytesIO(real))] if "after" in case else []
        _write_tar_gz(path, before + [("CK+48/happy/S002_001_00000001.png", _BOMB_BYTES, _Zeros(_BOMB_BYTES))])
    return paths


@pytest.mark.parametrize("case", ["a bomb first", "a bomb after real images"])
def test_a_tar_gz_bomb_is_refused_whole_before_it_is_decompressed(tar_bombs, case):
    """A 300 KB .tar.gz holding 300 MiB of zeros (a 2 MB one held 2 GiB: 45 s to list, 110 s to ingest)."""
    path = tar_bombs[case]
    assert os.path.getsize(path) < _BOMB_BYTES / 500 + (16 * 2 ** 20 * 1.01 if "after" in case else 0)
    _WatchedFile.read_to.clear()
    started = time.perf_counter()
    with pytest.raises(archives.ArchiveError) as refused:
        archives.index_archive(path, lambda p: _WatchedFile(io.FileIO(p)))
    elapsed = time.perf_counter() - started
    message = str(refused.value)
    assert message.startswith("cannot read the archive (decompression bomb: CK+48.tar.gz expands ")
    assert ":1, " in message and f"the limit is {archives.MAX_EXPANSION_RATIO}:1 over " in message
    assert message.endswith("refused whole, before reading further")
    # stopped within two windows of the bomb (the zeros deflate about 1000:1), far from its end
    [read_to] = _WatchedFile.read_to
    assert os.path.getsize(path) - read_to > _BOMB_BYTES / 1000 / 3
    assert elapsed < 5


def test_a_tar_gz_bomb_fails_the_run_naming_the_archive(tar_bombs):
    """Refused whole: a defect no bad-record budget excuses."""
    path = tar_bombs["a bomb first"]
    [reject] = plan_ingestion(os.path.dirname(path), IngestOptions()).rejects
    assert reject.file == path and reject.fatal
    assert reject.defect.startswith("cannot read the archive (decompression bomb: CK+48.tar.gz expands ")


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.bz2", ".tar.xz", ".tar"])
def test_an_ordinary_compressed_tar_still_reads(tmp_path, suffix):
    mode = {".tar.gz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz", ".tar": "w"}[suffix]
    path = str(tmp_path / f"CK+48{suffix}")
    images = {f"CK+48/happy/S00{i}_001_00000001.png": _png(i) for i in range(1, 4)}
    label = b"   3.0000000e+00\n"
    with tarfile.open(path, mode) as tar:
        for name, data in list(images.items()) + [("Emotion/S001/001/S001_001_00000011_emotion.txt", label)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    index = archives.index_archive(path, lambda p: open(p, "rb"))
    assert sorted(m.name for m in index.children("CK+48/happy")) == sorted(images) and not index.refused
    assert [m.content for m in index.children("Emotion/S001/001")] == [label]
    assert dict(archives.members_in_order(path, list(images), lambda p: open(p, "rb"), 1 << 20)) == images
    with archives.open_member(f"{path}!/CK+48/happy/S002_001_00000001.png", lambda p: open(p, "rb")) as f:
        assert f.read() == images["CK+48/happy/S002_001_00000001.png"]


def test_a_zip_member_whose_sizes_say_bomb_is_refused_by_name_unread(tmp_path):
    path = str(tmp_path / "CK+48.zip")
    size = 80 * 2 ** 20  # zeros: about 80 KB deflated
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("CK+48/happy/S001_001_00000001.png", _png(1))
        with z.open("CK+48/happy/S002_001_00000001.png", "w") as member:
            for _ in range(size // 2 ** 20):
                member.write(bytes(2 ** 20))
        z.writestr("CK+48/happy/S003_001_00000001.png", bytes(2 ** 20))  # 1000:1, but small: no bomb
        compressed = z.getinfo("CK+48/happy/S002_001_00000001.png").compress_size
    index = archives.index_archive(path, lambda p: open(p, "rb"))
    assert sorted(m.name for m in index.children("CK+48/happy")) == [
        "CK+48/happy/S001_001_00000001.png", "CK+48/happy/S003_001_00000001.png"]
    [(name, why)] = index.refused
    assert name == "CK+48/happy/S002_001_00000001.png" and size > archives.EXPANSION_WINDOW_BYTES
    assert why == (f"decompression bomb: {size:,} bytes from {compressed:,} compressed ({size / compressed:,.0f}:1, "
                   f"over the limit of 100:1 for a member over {archives.EXPANSION_WINDOW_BYTES:,} bytes; images "
                   "and CSVs compress 1.5-5:1): not read")


# 4. A name twice in one archive


def test_a_name_twice_in_a_zip_is_read_once_the_later_copy(data_root, ingest):
    """Both copies were read: two examples with one image_id, each another face."""
    path = os.path.join(data_root.path, "CK+48.zip")
    os.makedirs(data_root.path)
    first, later = _png(1), _png(2)
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as z:
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        z.writestr("CK+48/happy/S001_001_00000001.png", first)
        z.writestr("CK+48/happy/S002_001_00000001.png", _png(3))
        z.writestr("CK+48\\happy\\S001_001_00000001.png", later)  # the same member, as Windows tools name it
    run = ingest(data_root.path, bad_record_budget=1)
    ids = sorted(e[IMAGE_ID] for split in SPLITS for e in run.examples[split])
    assert ids == ["CK+48.zip!/CK+48/happy/S001_001_00000001.png", "CK+48.zip!/CK+48/happy/S002_001_00000001.png"]
    [reject] = run.quarantine()
    assert reject == {"source": "data root", "file": f"{path}!/CK+48/happy/S001_001_00000001.png", "line": None,
                      "fatal": False, "defect": "archive member refused: appears again later in the archive; the "
                                                "later copy is read (as unzip and zipfile read it)"}
    examples = {e[IMAGE_ID]: e for split in SPLITS for e in run.examples[split]}
    expected = np.asarray(Image.open(io.BytesIO(later)), dtype=np.int64).reshape(-1)
    np.testing.assert_array_equal(examples["CK+48.zip!/CK+48/happy/S001_001_00000001.png"][PIXELS], expected)


def test_a_name_twice_in_a_tar_is_refused_in_every_copy(tmp_path):
    path = str(tmp_path / "CK+48.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("CK+48/happy/S001_001_00000001.png", _png(1)), ("CK+48/happy/S002_001_00000001.png",
                                                                             _png(2)),
                           ("./CK+48/happy/S001_001_00000001.png", _png(3))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    index = archives.index_archive(path, lambda p: open(p, "rb"))
    assert [m.name for m in index.children("CK+48/happy")] == ["CK+48/happy/S002_001_00000001.png"]
    why = "the archive holds 2 members of this name: which is meant is unclear, none is read"
    assert sorted(index.refused) == [("./CK+48/happy/S001_001_00000001.png", why),
                                     ("CK+48/happy/S001_001_00000001.png", why)]


# 5. A fer2013.csv cut short, or with no rows


def test_an_interrupted_fer2013_download_fails_whatever_the_budget(data_root, ingest_into, tmp_path):
    """fer2013.csv holds Training, then PublicTest, then PrivateTest rows: cut at half, it lost all of
    eval and test, and passed as 1 bad record within a budget of 3."""
    text = "emotion,pixels,Usage\n" + _fer_rows(data_root, ["Training"] * 16 + ["PublicTest"] * 2
                                                + ["PrivateTest"] * 2)
    path = data_root.write("fer2013.csv", text[:len(text) // 2])
    with pytest.raises(IngestError) as failure:
        ingest_into(data_root.path, str(tmp_path / "out"), bad_record_budget=3)
    message = str(failure.value)
    assert "1 defect(s) that no bad-record budget excuses (1 bad record(s) in all)" in message
    last = text[:len(text) // 2].count("\n") + 1
    assert (f"  {path} line {last}: truncated last line (the file ends without a newline): 2 fields, expected 3 "
            "(emotion,pixels,usage); the file ends mid-row: an interrupted download or copy, and the rest of the file "
            "is lost: download it again") in message
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("name, last_row, defect", [
    ("fer2013.csv", "3,1 2 3", "2 fields, expected 3 (emotion,pixels,usage)"),
    ("fer2013.csv", "3", "1 fields, expected 3 (emotion,pixels,usage)"),
    ("fer2013.csv", "3,{pixels},Trai", "Usage 'Trai' is cut short"),
    ("fer2013.csv", "3,{pixels},", "Usage '' is cut short"),
    ("icml_face_data.csv", "3,Training,1 2 3", "2303 pixel values, expected 2304"),
    ("train.csv", "3,1 2 3", "3 pixel values, expected 2304"),
])
def test_a_file_that_ends_mid_row_is_fatal(data_root, name, last_row, defect):
    header = {"fer2013.csv": "emotion,pixels,Usage", "icml_face_data.csv": "emotion,Usage,pixels",
              "train.csv": "emotion,pixels"}[name]
    pixels = data_root.text(data_root.pixels())
    good = {"fer2013.csv": f"0,{pixels},Training", "icml_face_data.csv": f"0,Training,{pixels}",
            "train.csv": f"0,{pixels}"}[name]
    if name == "icml_face_data.csv":
        last_row = f"3,Training,{' '.join(pixels.split()[:-1])}"  # the last value lost
    path = data_root.write(name, "\n".join([header, good, last_row.format(pixels=pixels)]))
    examples, rejects = _read_csv(path, "labelled" if name == "train.csv" else "fer2013")
    assert len(examples) == 1
    [reject] = rejects
    assert (reject.file, reject.line, reject.fatal) == (path, 3, True)
    assert reject.defect == (f"truncated last line (the file ends without a newline): {defect}; the file ends mid-row: "
                             "an interrupted download or copy, and the rest of the file is lost: download it again")


@pytest.mark.parametrize("last_row, defect", [
    ("3,{pixels},Training,x", "4 fields, expected 3 (emotion,pixels,usage)"),  # too many: not a cut
    ("3,{pixels} 7,Training", "2305 pixel values, expected 2304"),
    ("3,{pixels},Validation", "Usage 'Validation' is not one of Training, PublicTest, PrivateTest"),
])
def test_a_bad_last_row_without_a_newline_is_one_bad_record(data_root, last_row, defect):
    pixels = data_root.text(data_root.pixels())
    path = data_root.write("fer2013.csv", f"emotion,pixels,Usage\n0,{pixels},Training\n"
                                          + last_row.format(pixels=pixels))
    examples, [reject] = _read_csv(path)
    assert len(examples) == 1 and (reject.line, reject.defect, reject.fatal) == (3, defect, False)


def test_a_complete_last_row_without_a_newline_is_a_row(data_root):
    pixels = [data_root.text(data_root.pixels()) for _ in range(2)]
    path = data_root.write("fer2013.csv", f"emotion,pixels,Usage\n0,{pixels[0]},Training\n6,{pixels[1]},PrivateTest")
    examples, rejects = _read_csv(path)
    assert rejects == [] and [split for split, _ in examples] == ["train", "test"]


@pytest.mark.parametrize("name", ["fer2013.csv", "train.csv"])
def test_a_header_only_csv_fails_whatever_the_budget(data_root, ingest_into, tmp_path, name):
    path = data_root.write(f"faces/{name}", "emotion,pixels,Usage\n" if name == "fer2013.csv" else "emotion,pixels\n")
    data_root.image("CK+48/happy/S001_001_00000001.png")  # something else to ingest
    with pytest.raises(IngestError) as failure:
        ingest_into(data_root.path, str(tmp_path / "out"), bad_record_budget=100)
    assert "1 defect(s) that no bad-record budget excuses" in str(failure.value)
    assert (f"  {path}: header only: no data rows (an interrupted download or copy?): the whole file is lost; "
            "download it again") in str(failure.value)


# 6. FER+ labels in another order than the rows they label


def _ferplus_rows(usages) -> str:
    return _FERPLUS_HEADER + "".join(f"{usage},fer{i:07d}.png,0,10,0,0,0,0,0,0,0,0\n" for i, usage in enumerate(usages))


def test_ferplus_labels_out_of_order_with_fer2013_fail_whatever_the_budget(data_root, ingest_into, tmp_path):
    """fer2013.csv sorted by something else: FER+ labelled every row with another face's votes, silently."""
    usages = ["Training"] * 4 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    fer = data_root.write("fer2013.csv", "emotion,pixels,Usage\n" + _fer_rows(data_root, usages[::-1]))
    ferplus = data_root.write("fer2013new.csv", _ferplus_rows(usages))
    with pytest.raises(IngestError) as failure:
        ingest_into(data_root.path, str(tmp_path / "out"), use_ferplus_labels=True, bad_record_budget=100)
    assert "1 defect(s) that no bad-record budget excuses (1 bad record(s) in all)" in str(failure.value)
    assert (f"  {ferplus} line 2: FER+ labels rows by their order: this row's Usage is Training, where the row it "
            f"would label, {fer} line 2, is PrivateTest; the two files are not in the same order (fer2013.csv sorted "
            "or filtered?), so every label from here on would be another face's: use both files as published"
            ) in str(failure.value)


def test_ferplus_labels_in_the_same_order_label_every_row(data_root):
    usages = ["Training"] * 4 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    fer = data_root.write("fer2013.csv", "emotion,pixels,Usage\n" + _fer_rows(data_root, usages))
    ferplus = data_root.write("fer2013new.csv", _ferplus_rows(usages))
    examples, rejects = _read_csv(fer, ferplus_path=ferplus, use_ferplus_labels=True)
    assert rejects == [] and [split for split, _ in examples] == ["train"] * 4 + ["eval"] * 2 + ["test"] * 2


def test_a_csv_syntax_error_in_fer2013new_names_fer2013new(data_root):
    """The error named fer2013.csv (the task's file), at fer2013new.csv's line."""
    usages = ["Training"] * 2
    fer = data_root.write("fer2013.csv", "emotion,pixels,Usage\n" + _fer_rows(data_root, usages))
    ferplus = data_root.write("fer2013new.csv", _FERPLUS_HEADER + "Training,\"" + "1" * 200_000 + "\n")
    _, [reject] = _read_csv(fer, ferplus_path=ferplus, use_ferplus_labels=True)
    assert (reject.file, reject.line, reject.fatal) == (ferplus, 2, True)
    assert reject.defect.startswith("CSV syntax error (line 2: field larger than field limit")
