"""Reading .zip, .tar, .tar.gz and .tgz downloads in place, streamed, as if they were folders.

Users have Kaggle's fer2013.tar.gz, icml_face_data.csv.zip, CK+48.zip, jaffedbase.zip: ingestion
lists an archive's members (index_archive) and reads them where they are, one member at a time,
never unpacking the archive into memory or onto disk. A member's path is written
`<archive path>!/<member name>`, so records, errors and image ids name the archive and the member.

Bad input follows the rules for files, plus what only archives can carry: a member with an absolute
path, a `..` component, or one that is a link (symlink or hard link), a device or a FIFO is refused
with its name; a member larger than `max_member_bytes` is refused before it is read (a zip can
claim a small size and hold more: reading stops at the limit, and the member is refused then);
an archive inside an archive is listed, not read. A tar must end with its end-of-archive marker
(a block of zeros): one cut short at a member boundary, which tarfile itself takes for a complete
tar, is refused as truncated rather than read in part. The standard library's zipfile and tarfile do
the reading; tarfile is opened in streaming mode ("r|*"), which reads a compressed tar front to
back without seeking, so a .tar.gz member costs a pass over the archive: the executor reads all of
a tar's members in one pass (members_in_order).
"""
import dataclasses
import io
import posixpath
import stat
import tarfile
import zipfile
from typing import BinaryIO, Dict, Iterator, List, Optional, Tuple

SEPARATOR = "!/"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MAX_MEMBERS = 2_000_000
SMALL_MEMBER_BYTES = 4096  # small text members (CK+ Emotion labels) are kept from the listing pass


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
    """The archive cannot be read at all (corrupt, truncated, not what its name says)."""


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


def _add(folders: Dict[str, List[Member]], name: str, is_dir: bool, size: int, content=None) -> None:
    """Adds a member and the folders above it (archives need not list their folders)."""
    name = member_name(name)
    parent, base = posixpath.split(name)
    entries = folders.setdefault(parent, [])
    if not any(m.name == name for m in entries if m.is_dir and is_dir):
        entries.append(Member(name, is_dir, size, content))
    if is_dir:
        folders.setdefault(name, [])
    while parent:
        grand, _ = posixpath.split(parent)
        siblings = folders.setdefault(grand, [])
        if not any(m.name == parent for m in siblings):
            siblings.append(Member(parent, True, 0))
        parent = grand


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


def index_archive(path: str, open_binary) -> ArchiveIndex:
    """Lists an archive's members (for a tar: one streaming pass). ArchiveError if unreadable."""
    folders: Dict[str, List[Member]] = {"": []}
    refused: List[Tuple[str, str]] = []
    count = 0
    try:
        with open_binary(path) as raw:
            if path.lower().endswith(".zip"):
                kind = "zip"
                with zipfile.ZipFile(raw) as archive:
                    for info in archive.infolist():
                        count += 1
                        if count > MAX_MEMBERS:
                            raise ArchiveError(f"more than {MAX_MEMBERS:,} members")
                        why = _refusal(info.filename)
                        mode = info.external_attr >> 16
                        if why is None and stat.S_ISLNK(mode):
                            why = "a symbolic link"
                        elif why is None and info.flag_bits & 0x1:
                            why = "encrypted"
                        if why:
                            refused.append((info.filename, why))
                            continue
                        is_dir = info.is_dir() or info.filename.endswith("\\")
                        content = (archive.read(info) if not is_dir and info.file_size <= SMALL_MEMBER_BYTES
                                   and info.filename.lower().endswith(".txt") else None)
                        _add(folders, info.filename, is_dir, info.file_size, content)
            else:
                kind = "tar"
                with tarfile.open(fileobj=raw, mode="r|*", tarinfo=_EndCheckedTarInfo) as archive:
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
                        _add(folders, info.name, info.isdir(), info.size, content)
                    _check_tar_end(archive, count)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as error:
        if isinstance(error, ArchiveError):
            raise
        raise ArchiveError(f"cannot read the archive ({type(error).__name__}: {error})") from error
    return ArchiveIndex(path, kind, folders, refused)


class MemberTooLarge(ValueError):
    """A member over the byte budget: refused, not read."""


class _Capped(io.RawIOBase):
    """A member's stream that refuses to give more than `limit` bytes."""

    def __init__(self, stream: BinaryIO, limit: int, name: str):
        super().__init__()
        self._stream, self._left, self._name, self._limit = stream, limit, name, limit

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._stream.read(min(len(buffer), self._left + 1))
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
            info = next((i for i in archive.infolist() if member_name(i.filename) == member), None)
            if info is None:
                raise FileNotFoundError(f"{member} is not in {archive_path}")
            if info.file_size > limit:
                raise MemberTooLarge(f"archive member {member} is {info.file_size:,} bytes, over {limit:,}")
            return MemberStream(archive.open(info), raw, limit, member)
        archive = tarfile.open(fileobj=raw, mode="r|*")
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
    (zip: in the archive's order, each member read by itself; tar: streamed front to back)."""
    wanted_set = set(wanted)
    with open_binary(archive_path) as raw:
        if archive_path.lower().endswith(".zip"):
            with zipfile.ZipFile(raw) as archive:
                for info in archive.infolist():
                    name = member_name(info.filename)
                    if name in wanted_set:
                        yield name, _read_zip_member(archive, info, max_bytes)
            return
        with tarfile.open(fileobj=raw, mode="r|*") as archive:
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
    try:
        with archive.open(info) as stream:
            data = stream.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:  # a corrupt member, not a crash
        return error
    if len(data) > max_bytes:
        return MemberTooLarge(f"archive member {info.filename} holds more than {max_bytes:,} bytes")
    return data
