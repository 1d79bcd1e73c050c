"""Read-only file access for a data root that is a local folder or a bucket (gs://, s3://...), and
for members of archives inside it (`<archive>!/<member>`, archives.py).

Local paths use the OS directly (fast, and symlinks can be checked); anything with a scheme goes
through tf.io.gfile, which is what TFX itself uses for artifact URIs.
"""
import os
from typing import BinaryIO, List, Optional, Tuple

from components.example_gen import archives


def is_local(path: str) -> bool:
    return "://" not in path


def _open_file(path: str) -> BinaryIO:
    if is_local(path):
        return open(path, "rb")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile.GFile(path, "rb")


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
