"""Read-only file access for a data root that is a local folder or a bucket (gs://, s3://...), and
for members of archives inside it (`<archive>!/<member>`, archives.py).

Local paths use the OS directly (fast, and symlinks can be checked); anything with a scheme goes
through tf.io.gfile, which is what TFX itself uses for artifact URIs.
"""
import io
import os
from typing import BinaryIO, List, Optional, Tuple

from components.example_gen import archives


def is_local(path: str) -> bool:
    return "://" not in path


class _GFileRaw(io.RawIOBase):
    """tf.io.gfile.GFile as a raw stream, so that a bucket's file reads as a local one does: buffered,
    and with readline(limit), which GFile lacks (the CSV reader bounds each line with it); zipfile's
    seeks pass through."""

    def __init__(self, gfile):
        super().__init__()
        self._gfile = gfile

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._gfile.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._gfile.seek(offset, whence)
        return self._gfile.tell()

    def tell(self) -> int:
        return self._gfile.tell()

    def close(self) -> None:
        if not self.closed:
            self._gfile.close()
        super().close()


def _open_file(path: str) -> BinaryIO:
    if is_local(path):
        return open(path, "rb")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return io.BufferedReader(_GFileRaw(tf.io.gfile.GFile(path, "rb")), buffer_size=1 << 20)


def open_binary(path: str, max_member_bytes: Optional[int] = None) -> BinaryIO:
    """A file, or an archive member (at most max_member_bytes of it), as a binary stream."""
    if archives.SEPARATOR in path:
        return archives.open_member(path, _open_file, max_member_bytes)
    return _open_file(path)


def list_dir(path: str) -> List[Tuple[str, bool]]:
    """(name, is_dir) of a remote folder's children, sorted (local folders are scanned by DataRootWalker)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    children = []
    for name in tf.io.gfile.listdir(path):
        name = name.rstrip("/")
        children.append((name, tf.io.gfile.isdir(os.path.join(path, name))))
    return sorted(children)


def is_file(path: str) -> bool:
    """A file (not a folder, nor an object-store prefix) at path."""
    if is_local(path):
        return os.path.isfile(path)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)


def exists(path: str) -> bool:
    if is_local(path):
        return os.path.exists(path)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile.exists(path)


def index_archive(path: str) -> "archives.ArchiveIndex":
    return archives.index_archive(path, _open_file)


def archive_members(archive_path: str, wanted: List[str], max_bytes: int):
    """(member name, bytes or the exception that refused it) of wanted members, one pass."""
    return archives.members_in_order(archive_path, wanted, _open_file, max_bytes)
