"""A TF Serving model base directory: `<base>/<version>/saved_model.pb`, versions are numbers.

The one place that knows the layout: the Pusher publishes versions into it, ServedModel and
`deep-emotion predict` find the version TF Serving serves (the highest complete one).

Beside each model, `training_data/` says what it was trained on: `training_data.json` (its spans,
the input fingerprint of their files, the fingerprint of the training settings) and
`statistics/Split-*/FeatureStats.pb` (StatisticsGen's statistics of that data). The DataGate compares
a new span with them (drift) and the Kubeflow SpanResolver reads them to know whether anything is
new. TF Serving ignores the folder, and comparing two models ignores it too.

Pushes appear whole: locally a version is built in a hidden staging folder (TF Serving ignores
names that are not numbers) and renamed into place (contract.publish). Object stores (gs://) have
no rename: there saved_model.pb is copied last, as TFX's own Pusher does, and a version counts as
complete only once it holds saved_model.pb.

Concurrent pushes (two runs of one pipeline at once) are serialised locally by an exclusive lock
on `<base>/.push.lock`: the second one then sees the first one's version, so an identical model is
published once and a different one becomes the next complete version; nothing is half-written or
lost either way.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from tfx.dsl.io import fileio
from tfx.utils import io_utils

from contract import publish

SAVED_MODEL_FILE = "saved_model.pb"
TRAINING_DATA_DIR = "training_data"
TRAINING_DATA_RECORD = f"{TRAINING_DATA_DIR}/training_data.json"
TRAINING_STATISTICS_DIR = f"{TRAINING_DATA_DIR}/statistics"
_PUSH_ATTEMPTS = 20
_LOCK_FILE = ".push.lock"  # hidden: TF Serving and versions() only look at numeric names


def saved_model_digest(model_dir: str, ignore: Iterable[str] = ()) -> str:
    """sha256 over every file's relative path and content: equal digests, identical models.
    ignore: relative paths left out (a model card describes a model, it is not part of it), and
    always the training_data/ folder."""
    digest = hashlib.sha256()
    ignore = set(ignore)
    for root, _, files in sorted(fileio.walk(model_dir)):
        for name in sorted(files):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, model_dir)
            if relative in ignore or relative.startswith(TRAINING_DATA_DIR + "/"):
                continue
            digest.update(relative.encode())
            with fileio.open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def versions(base_dir: str) -> List[int]:
    """Version numbers present under a base directory, ascending (complete or not)."""
    if not fileio.exists(base_dir):
        return []
    return sorted(int(n.rstrip("/")) for n in fileio.listdir(base_dir) if n.rstrip("/").isdigit())


def newest_complete_version(base_dir: str) -> Optional[int]:
    """The version TF Serving serves: the highest numeric directory with saved_model.pb in it."""
    for version in reversed(versions(base_dir)):
        if fileio.exists(os.path.join(base_dir, str(version), SAVED_MODEL_FILE)):
            return version
    return None


def complete_versions(base_dir: str) -> List[int]:
    """The versions TF Serving may serve (with saved_model.pb), newest first."""
    return [v for v in reversed(versions(base_dir)) if fileio.exists(os.path.join(base_dir, str(v), SAVED_MODEL_FILE))]


def read_training_data(version_dir: str) -> Optional[Dict]:
    """A version's training_data.json (see the module docstring); None for a version without one
    (pushed by hand, or before versions carried it)."""
    path = os.path.join(version_dir, TRAINING_DATA_RECORD)
    if not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        return json.loads(f.read())


def training_data_files(record: Dict, statistics_uri: Optional[str]) -> Dict[str, bytes]:
    """The training_data/ files of a version: the record and a copy of the statistics' splits."""
    contents = {TRAINING_DATA_RECORD: json.dumps(record, indent=1, sort_keys=True).encode()}
    if statistics_uri:
        for split_dir in sorted(fileio.glob(os.path.join(statistics_uri, "Split-*"))):
            for name in sorted(fileio.listdir(split_dir)):
                with fileio.open(os.path.join(split_dir, name), "rb") as f:
                    contents[f"{TRAINING_STATISTICS_DIR}/{os.path.basename(split_dir.rstrip('/'))}/{name}"] = f.read()
    return contents


def resolve_model_dir(path: str) -> str:
    """A SavedModel directory as given, or a base directory's served version; FileNotFoundError if neither."""
    if fileio.exists(os.path.join(path, SAVED_MODEL_FILE)):
        return path
    version = newest_complete_version(path) if fileio.isdir(path) else None
    if version is None:
        raise FileNotFoundError(f"{path}: neither a SavedModel nor a serving directory with numbered versions")
    return os.path.join(path, str(version))


def push(model_dir: str, base_dir: str, now: Optional[int] = None,
         extra_files: Optional[Callable[[str], Dict[str, bytes]]] = None) -> Tuple[str, bool]:
    """Publishes model_dir as a new version under base_dir unless the newest version is identical.

    Returns (version, pushed_new). Versions are unix seconds, kept strictly increasing so that TF
    Serving always serves the latest push even when two pushes fall within one second; a push that
    loses a race for a version number to a concurrent one takes the next number. Staging left by a
    killed push is removed first. extra_files(version) -> {relative path: bytes}: files written into
    the version beside the model (its model card, training_data/); they do not count when comparing
    models.
    """
    extra_names = set(extra_files("0")) if extra_files else set()
    digest = saved_model_digest(model_dir, extra_names)
    with _push_lock(base_dir):
        return _push_locked(model_dir, base_dir, digest, extra_names, now, extra_files)


@contextlib.contextmanager
def _push_lock(base_dir: str):
    """An exclusive flock on a hidden file in a local base dir (released by the kernel if the
    holder dies); object stores have no locks: there the version-number race below is the guard."""
    if "://" in base_dir:
        yield
        return
    os.makedirs(base_dir, exist_ok=True)
    with open(os.path.join(base_dir, _LOCK_FILE), "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _push_locked(model_dir, base_dir, digest, extra_names, now, extra_files) -> Tuple[str, bool]:
    for _ in range(_PUSH_ATTEMPTS):
        existing = versions(base_dir)
        newest = newest_complete_version(base_dir)
        if newest is not None and saved_model_digest(os.path.join(base_dir, str(newest)), extra_names) == digest:
            return str(newest), False
        version = str(max(int(now if now is not None else time.time()), existing[-1] + 1 if existing else 0))
        final = os.path.join(base_dir, version)
        extras = extra_files(version) if extra_files else {}
        if "://" in base_dir:
            io_utils.copy_dir(model_dir, final, deny_regex_patterns=[r"saved_model\.pb"])
            _write_files(final, extras)
            io_utils.copy_file(os.path.join(model_dir, SAVED_MODEL_FILE), os.path.join(final, SAVED_MODEL_FILE))
            return version, True
        os.makedirs(base_dir, exist_ok=True)
        for leftover in publish.stale_staging(base_dir):
            publish.remove(leftover)
        try:
            with publish.staged(final, replace=False) as staging:
                io_utils.copy_dir(model_dir, str(staging))
                _write_files(str(staging), extras)
            return version, True
        except FileExistsError:
            continue  # a concurrent push took this number
    raise RuntimeError(f"could not claim a new version under {base_dir} in {_PUSH_ATTEMPTS} attempts")


def _write_files(folder: str, contents: Dict[str, bytes]) -> None:
    for name, content in contents.items():
        if os.path.dirname(name):
            fileio.makedirs(os.path.join(folder, os.path.dirname(name)))
        with fileio.open(os.path.join(folder, name), "wb") as f:
            f.write(content)
