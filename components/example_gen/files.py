"""Read-only file access for a data root that is a local folder or a bucket (gs://, s3://...).

Local paths use the OS directly (fast, and symlinks can be checked); anything with a scheme goes
through tf.io.gfile, which is what TFX itself uses for artifact URIs.
"""
import os
from typing import BinaryIO, List, Tuple


def is_local(path: str) -> bool:
    return "://" not in path


def open_binary(path: str) -> BinaryIO:
    if is_local(path):
        return open(path, "rb")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile.GFile(path, "rb")


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
