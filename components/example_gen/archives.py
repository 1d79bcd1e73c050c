"""Reading .zip, .tar, .tar.gz and .tgz downloads in place, streamed, as if they were folders.

Users have Kaggle's fer2013.tar.gz, icml_face_data.csv.zip, CK+48.zip, jaffedbase.zip: ingestion
lists an archive's members (index_archive) and reads them where they are, one member at a time,
never unpacking the archive into memory or onto disk. A member's path is written
`<archive path>!/<member name>`, so records, errors and image ids name the archive and the member.

Bad input follows the rules for files, plus what only archives can carry: a member with an absolute
path, a `..` component, or one that is a link (symlink or hard link), a device or a FIFO is refused
with its name; a member larger than `max_member_bytes` is refused before it is read (a zip can
claim a small size and hold more: reading stops at the limit, and the member is refused then);
an archive inside an archive is listed, not read. A zip member whose deflate stream or CRC is damaged
is refused by name when it is read (a CSV member loses the rest of its rows: a fatal defect there).
Two members of one name in a zip: the later is read, as unzip and zipfile.getinfo do, and the earlier
refused by name; in a tar, read front to back, every copy is refused (which one is meant is known only
at its end). Decompression is bounded (MAX_EXPANSION_RATIO): a compressed tar that expands like a bomb
is refused whole, a zip member whose sizes say so is refused before it is read. A tar must end with
its end-of-archive marker (a block of zeros): one cut short at a member boundary, which tarfile itself
takes for a complete tar, is refused as truncated rather than read in part. The standard library's
zipfile and tarfile do the reading; a tar is read in tarfile's streaming mode ("r|", from the gzip,
bz2 or lzma reader where it is compressed), which reads it front to back without seeking, so a
.tar.gz member costs a pass over the archive: the executor reads all of a tar's members in one pass
(members_in_order).
"""
import bz2
import dataclasses
import gzip
import io
import lzma
import posixpath
import stat
import tarfile
import zipfile
import zlib
from typing import BinaryIO, Dict, Iterator, List, Optional, Set, Tuple

SEPARATOR = "!/"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MAX_MEMBERS = 2_000_000
SMALL_MEMBER_BYTES = 4096  # small text members (CK+ Emotion labels) are kept from the listing pass

# Decompression bombs. What these datasets hold compresses 1.5-5:1 (PNG and JPEG barely at all, FER2013's
# pixel text about 3:1, uncompressed TIFFs a little more); zeros deflate about 1000:1, and bzip2 or xz
# far more. So a stretch of EXPANSION_WINDOW_BYTES of decompressed data (64 MiB: more than any one image
# or label file here, a fraction of a second to decompress) that came from less than 1/MAX_EXPANSION_RATIO
# of it is no dataset: a compressed tar is refused whole at that point (measured window by window, so a
# bomb after GBs of real images is caught as fast as one at the start, at a cost of at most two windows),
# a zip member over EXPANSION_WINDOW_BYTES is refused from the sizes in the central directory, unread
# (zipfile never gives more than those sizes say).
MAX_EXPANSION_RATIO = 100
EXPANSION_WINDOW_BYTES = 64 * 2 ** 20
# What a damaged compressed stream raises: zipfile (a bad CRC, a deflate stream cut or overwritten), the
# gzip, bz2 and lzma readers, tarfile; a method zipfile cannot decompress (Deflate64) is one too.
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, tarfile.TarError, NotImplementedError)


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def split_path(path: str) -> Tuple[str, Optional[str]]:
    """(archive path, member name) of a member path; (path, None) for anything else."""
    if SEPARATOR in path:
        archive, member = path.split(SEPARATOR, 1)
        return archive, member
    return path, None


def member_path(archive: str, member: str) -> str:
    return f"{archive}{SEPARATOR}{member}"


class ArchiveError(ValueError):
    """The archive cannot be read at all (corrupt, truncated, not what its name says, a bomb)."""


class DamagedMember(OSError):
    """A member's compressed bytes are damaged: it cannot be read (on), though the archive lists it."""


def _damaged(error: BaseException) -> DamagedMember:
    kind = "zlib.error" if isinstance(error, zlib.error) else type(error).__name__
    return DamagedMember(f"its compressed data is damaged ({kind}: {error}): the archive was damaged in a download "
                         "or copy; fetch it again")


def _expansion_refusal(uncompressed: int, compressed: int) -> Optional[str]:
    """Why a zip member is refused as a decompression bomb, from its sizes; None if it is not one."""
    if uncompressed <= EXPANSION_WINDOW_BYTES or uncompressed <= MAX_EXPANSION_RATIO * max(compressed, 1):
        return None
    return (f"decompression bomb: {uncompressed:,} bytes from {compressed:,} compressed "
            f"({uncompressed / max(compressed, 1):,.0f}:1, over the limit of {MAX_EXPANSION_RATIO}:1 for a member "
            f"over {EXPANSION_WINDOW_BYTES:,} bytes; images and CSVs compress 1.5-5:1): not read")


@dataclasses.dataclass
class Member:
    name: str                      # normalised, relative, "/"-separated
    is_dir: bool
    size: int
    content: Optional[bytes] = None  # small files, read during the listing pass


@dataclasses.dataclass
class ArchiveIndex:
    """What an archive holds: its members by folder, and the members it refuses (with why)."""
    path: str
    kind: str                                   # "zip" or "tar"
    folders: Dict[str, List[Member]]            # "" is the archive's top level; "a/b" a folder
    refused: List[Tuple[str, str]]              # (member name as stored, why)

    def children(self, folder: str) -> List[Member]:
        return self.folders.get(folder.strip("/"), [])


def _refusal(name: str) -> Optional[str]:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "'..' in its path (it would land outside the archive's folder)"
    return None


def member_name(stored: str) -> str:
    """A member's name as paths here spell it: '/'-separated (zips made by Windows tools, PowerShell's
    Compress-Archive among them, store '\\'), without './' or a trailing '/'."""
    return posixpath.normpath(stored.replace("\\", "/")).strip("/")


def _add(folders: Dict[str, List[Member]], known: Set[str], name: str, is_dir: bool, size: int,
         content=None) -> None:
    """Adds a member and the folders above it (archives need not list their folders), each folder once:
    `known` holds the folders added so far, so that a folder of 100,000 members costs no scans of it."""
    name = member_name(name)
    if not is_dir:
        folders.setdefault(posixpath.dirname(name), []).append(Member(name, False, size, content))
        name = posixpath.dirname(name)
    while name and name not in known:
        known.add(name)
        folders.setdefault(name, [])
        parent = posixpath.dirname(name)
        folders.setdefault(parent, []).append(Member(name, True, 0))
        name = parent


def _last_copies(infos: List[zipfile.ZipInfo]) -> Dict[str, int]:
    """A zip's file names -> the position of the last member of that name (the copy that is read)."""
    return {member_name(info.filename): i for i, info in enumerate(infos) if not _zip_is_dir(info)}


def _zip_is_dir(info: zipfile.ZipInfo) -> bool:
    return info.is_dir() or info.filename.endswith("\\")


class _EndCheckedTarInfo(tarfile.TarInfo):
    """A TarInfo that notes on the TarFile reading it how its last header read went.

    tarfile takes a tar that stops right after a member (no end-of-archive marker), or at a block
    that is no header, for a complete one: a .tar cut at a member boundary would be listed, and
    ingested, in part without a word. A tar ends with zero blocks (POSIX: two, then padding to
    the record; one is accepted here); tarfile reads the block after the last member to find
    them, so this costs no read of its own, for compressed tars too.
    """

    @classmethod
    def fromtarfile(cls, tarfile_):
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.EOFHeaderError:
            tarfile_.end_problem = None  # a block of zeros: the end-of-archive marker
            raise
        except tarfile.EmptyHeaderError:
            tarfile_.end_problem = ("truncated", "the file ends there")
            raise
        except tarfile.TruncatedHeaderError:
            tarfile_.end_problem = ("truncated", "the file ends inside the block that should hold it")
            raise
        except tarfile.InvalidHeaderError:
            tarfile_.end_problem = ("corrupt", "the block there is neither a member's header nor zeros")
            raise


def _check_tar_end(archive: tarfile.TarFile, members: int) -> None:
    """ArchiveError unless the listing pass that just ended stopped at the end-of-archive marker."""
    problem = getattr(archive, "end_problem", ("truncated", "no block after the last member was read"))
    if problem is not None:
        kind, why = problem
        raise ArchiveError(f"cannot read the archive ({kind} tar: no end-of-archive marker after its {members:,} "
                           f"member(s), at byte {archive.offset:,} of the tar: {why}); the download or copy was "
                           "probably cut short, and only part of the dataset is in it: fetch or copy it again")


class _BoundedExpansion:
    """A compressed tar's decompressed bytes, for tarfile's streaming mode ("r|"), refused with
    ArchiveError where a window of EXPANSION_WINDOW_BYTES came from under 1/MAX_EXPANSION_RATIO of it in
    the compressed file (its position: `compressed.tell()`).

    tarfile's own decompression ("r|*") skips a member by decompressing all of it, and asks zlib,
    bz2 or lzma for everything a 10 KB block holds (GBs for a bzip2 bomb); the stdlib's gzip, bz2 and
    lzma readers used here give at most what is asked for, so each window is checked as it fills.
    """

    def __init__(self, decompressed: BinaryIO, compressed: BinaryIO, name: str):
        self._decompressed, self._compressed, self._name = decompressed, compressed, name
        self._out = 0
        self._window = (0, 0)  # (decompressed, compressed) bytes where the current window started

    def read(self, size: int = -1) -> bytes:
        data = self._decompressed.read(size)
        self._out += len(data)
        if self._out - self._window[0] >= EXPANSION_WINDOW_BYTES:
            read_in = self._compressed.tell()
            grown, used = self._out - self._window[0], max(read_in - self._window[1], 1)
            if grown > MAX_EXPANSION_RATIO * used:
                raise ArchiveError(
                    f"cannot read the archive (decompression bomb: {self._name} expands {grown / used:,.0f}:1, "
                    f"{grown:,} bytes of tar from {used:,} compressed bytes, at byte {self._out:,} of the tar; the "
                    f"limit is {MAX_EXPANSION_RATIO}:1 over {EXPANSION_WINDOW_BYTES:,} bytes, where images and CSVs "
                    "compress 1.5-5:1): refused whole, before reading further")
            self._window = (self._out, read_in)
        return data


def _compression(raw: BinaryIO) -> Optional[str]:
    """gz, bz2 or xz from a tar stream's first bytes (as tarfile's "r|*" tells them), None for a plain tar."""
    head = raw.peek(10)[:10] if hasattr(raw, "peek") else None
    if head is None or len(head) < 10:
        position = raw.tell()
        head = raw.read(10)
        raw.seek(position)
    if head.startswith(b"\x1f\x8b\x08"):
        return "gz"
    if head[0:3] == b"BZh" and head[4:10] == b"1AY&SY":
        return "bz2"
    if head.startswith((b"\x5d\x00\x00\x80", b"\xfd7zXZ")):
        return "xz"
    return None


def _open_tar(raw: BinaryIO, path: str, tarinfo=tarfile.TarInfo) -> tarfile.TarFile:
    """A (compressed) tar opened for one streaming pass, its expansion bounded (_BoundedExpansion)."""
    kind = _compression(raw)
    if kind is None:
        return tarfile.open(fileobj=raw, mode="r|", tarinfo=tarinfo)
    decompressed = {"gz": lambda: gzip.GzipFile(fileobj=raw, mode="rb"), "bz2": lambda: bz2.BZ2File(raw),
                    "xz": lambda: lzma.LZMAFile(raw)}[kind]()
    return tarfile.open(fileobj=_BoundedExpansion(decompressed, raw, posixpath.basename(path)), mode="r|",
                        tarinfo=tarinfo)


def index_archive(path: str, open_binary) -> ArchiveIndex:
    """Lists an archive's members (for a tar: one streaming pass). ArchiveError if unreadable."""
    folders: Dict[str, List[Member]] = {"": []}
    known: Set[str] = set()
    refused: List[Tuple[str, str]] = []
    count = 0
    try:
        with open_binary(path) as raw:
            if path.lower().endswith(".zip"):
                kind = "zip"
                with zipfile.ZipFile(raw) as archive:
                    infos = archive.infolist()
                    last = _last_copies(infos)
                    for position, info in enumerate(infos):
                        count += 1
                        if count > MAX_MEMBERS:
                            raise ArchiveError(f"more than {MAX_MEMBERS:,} members")
                        is_dir = _zip_is_dir(info)
                        why = _refusal(info.filename)
                        mode = info.external_attr >> 16
                        if why is None and stat.S_ISLNK(mode):
                            why = "a symbolic link"
                        elif why is None and info.flag_bits & 0x1:
                            why = "encrypted"
                        elif why is None and not is_dir and last[member_name(info.filename)] != position:
                            why = ("appears again later in the archive; the later copy is read (as unzip and "
                                   "zipfile read it)")
                        elif why is None and not is_dir:
                            why = _expansion_refusal(info.file_size, info.compress_size)
                        content = None
                        if why is None and not is_dir and info.file_size <= SMALL_MEMBER_BYTES \
                                and info.filename.lower().endswith(".txt"):
                            try:
                                content = archive.read(info)
                            except _DAMAGED as error:
                                why = f"cannot be read: {_damaged(error)}"
                        if why:
                            refused.append((info.filename, why))
                            continue
                        _add(folders, known, info.filename, is_dir, info.file_size, content)
            else:
                kind = "tar"
                copies: Dict[str, List[str]] = {}  # a file's name -> its members' names as stored
                with _open_tar(raw, path, _EndCheckedTarInfo) as archive:
                    for info in archive:
                        count += 1
                        if count > MAX_MEMBERS:
                            raise ArchiveError(f"more than {MAX_MEMBERS:,} members")
                        why = _refusal(info.name)
                        if why is None and (info.issym() or info.islnk()):
                            why = f"a {'symbolic' if info.issym() else 'hard'} link (to {info.linkname})"
                        elif why is None and not (info.isfile() or info.isdir()):
                            why = "not a regular file or folder (a device or FIFO)"
                        if why:
                            refused.append((info.name, why))
                            continue
                        content = None
                        if info.isfile() and info.size <= SMALL_MEMBER_BYTES and info.name.lower().endswith(".txt"):
                            content = archive.extractfile(info).read()
                        if info.isfile():
                            copies.setdefault(member_name(info.name), []).append(info.name)
                        _add(folders, known, info.name, info.isdir(), info.size, content)
                    _check_tar_end(archive, count)
                _refuse_tar_copies(folders, refused, copies)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError, zlib.error,
            lzma.LZMAError) as error:
        if isinstance(error, ArchiveError):
            raise
        raise ArchiveError(f"cannot read the archive ({type(error).__name__}: {error})") from error
    return ArchiveIndex(path, kind, folders, refused)


def _refuse_tar_copies(folders: Dict[str, List[Member]], refused: List[Tuple[str, str]],
                       copies: Dict[str, List[str]]) -> None:
    """Every copy of a name a tar holds more than once is refused: a tar is read in one pass, front to
    back, and which copy is meant (`tar -r` appends a newer one) is known only at its end."""
    for name, stored in copies.items():
        if len(stored) > 1:
            folder = folders[posixpath.dirname(name)]
            folder[:] = [m for m in folder if m.name != name or m.is_dir]
            refused.extend((s, f"the archive holds {len(stored)} members of this name: which is meant is unclear, "
                               "none is read") for s in stored)


class MemberTooLarge(ValueError):
    """A member over the byte budget: refused, not read."""


class _Capped(io.RawIOBase):
    """A member's stream that refuses to give more than `limit` bytes, and raises DamagedMember (an
    OSError, as a damaged file's read raises) where the archive's decompression finds damage."""

    def __init__(self, stream: BinaryIO, limit: int, name: str):
        super().__init__()
        self._stream, self._left, self._name, self._limit = stream, limit, name, limit

    def readable(self):
        return True

    def readinto(self, buffer):
        try:
            data = self._stream.read(min(len(buffer), self._left + 1))
        except _DAMAGED as error:
            raise _damaged(error) from error
        if len(data) > self._left:
            raise MemberTooLarge(f"archive member {self._name} holds more than {self._limit:,} bytes")
        self._left -= len(data)
        buffer[:len(data)] = data
        return len(data)


class MemberStream(io.BufferedReader):
    """A member's bytes (read, readline, iteration by line); closing it closes the archive file."""

    def __init__(self, stream: BinaryIO, owner: BinaryIO, limit: int, name: str):
        super().__init__(_Capped(stream, limit, name))
        self._owner = owner

    def close(self):
        try:
            super().close()
        finally:
            self._owner.close()


def open_member(path: str, open_binary, max_bytes: Optional[int] = None) -> BinaryIO:
    """A member's content as a stream, at most max_bytes (MemberTooLarge beyond). For tars this
    reads up to the member: use members_in_order for many members of one tar."""
    archive_path, member = split_path(path)
    limit = max_bytes if max_bytes is not None else 1 << 62
    raw = open_binary(archive_path)
    try:
        if archive_path.lower().endswith(".zip"):
            archive = zipfile.ZipFile(raw)
            # the last member of the name, as zipfile.getinfo gives (earlier copies are refused when listed)
            info = next((i for i in reversed(archive.infolist())
                         if member_name(i.filename) == member and not _zip_is_dir(i)), None)
            if info is None:
                raise FileNotFoundError(f"{member} is not in {archive_path}")
            if info.file_size > limit:
                raise MemberTooLarge(f"archive member {member} is {info.file_size:,} bytes, over {limit:,}")
            bomb = _expansion_refusal(info.file_size, info.compress_size)
            if bomb:
                raise MemberTooLarge(f"archive member {member}: {bomb}")
            try:
                stream = archive.open(info)
            except _DAMAGED as error:
                raise _damaged(error) from error
            return MemberStream(stream, raw, limit, member)
        archive = _open_tar(raw, archive_path)
        for info in archive:
            if member_name(info.name) == member and info.isfile():
                if info.size > limit:
                    raise MemberTooLarge(f"archive member {member} is {info.size:,} bytes, over {limit:,}")
                return MemberStream(archive.extractfile(info), raw, limit, member)
        raise FileNotFoundError(f"{member} is not in {archive_path}")
    except BaseException:
        raw.close()
        raise


def members_in_order(archive_path: str, wanted: List[str], open_binary,
                     max_bytes: int) -> Iterator[Tuple[str, object]]:
    """(member name, bytes or an exception) for each wanted member, in one pass over the archive
    (zip: in the archive's order, each member read by itself, the last copy of a name only; tar:
    streamed front to back)."""
    wanted_set = set(wanted)
    with open_binary(archive_path) as raw:
        if archive_path.lower().endswith(".zip"):
            with zipfile.ZipFile(raw) as archive:
                infos = archive.infolist()
                last = _last_copies(infos)
                for position, info in enumerate(infos):
                    name = member_name(info.filename)
                    if name in wanted_set and last.get(name) == position:
                        yield name, _read_zip_member(archive, info, max_bytes)
            return
        with _open_tar(raw, archive_path) as archive:
            for info in archive:
                name = member_name(info.name)
                if name in wanted_set and info.isfile():
                    if info.size > max_bytes:
                        yield name, MemberTooLarge(f"archive member {name} is {info.size:,} bytes, over {max_bytes:,}")
                    else:
                        yield name, archive.extractfile(info).read()


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int):
    if info.file_size > max_bytes:
        return MemberTooLarge(f"archive member {info.filename} is {info.file_size:,} bytes, over {max_bytes:,}")
    bomb = _expansion_refusal(info.file_size, info.compress_size)
    if bomb:
        return MemberTooLarge(f"archive member {info.filename}: {bomb}")
    try:
        with archive.open(info) as stream:
            data = stream.read(max_bytes + 1)
    except _DAMAGED as error:  # a damaged member (bad CRC, broken deflate stream): refused by name, not a crash
        return _damaged(error)
    except (OSError, ValueError) as error:
        return error
    if len(data) > max_bytes:
        return MemberTooLarge(f"archive member {info.filename} holds more than {max_bytes:,} bytes")
    return data
