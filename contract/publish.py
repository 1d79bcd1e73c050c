"""How every output of this project appears: whole or not at all.

A writer fills a staging path beside the final one and `staged(...)` renames it into place when
the block succeeds; on failure the staging copy is removed and the previous output is untouched.
One rule for the demo data, `deep-emotion ingest --out` and the Pusher's serving versions, so
readers (TF Serving polling a model directory, a pipeline reading a data root) never see half a
file or folder.

Replacing an existing folder takes two renames (old aside, new in): POSIX has no atomic swap of
non-empty directories. An interruption between them leaves `.<name>.old` and no `<name>`; the next
`staged` call on that path (or `recover`) puts the old one back first, so nothing is lost.
Local filesystems only: object stores have no rename (the Pusher copies saved_model.pb last there).
"""
import contextlib
import glob
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator, List, Union

PathLike = Union[str, "os.PathLike[str]"]


_STAGING = ".partial-"


def staging_path(final: PathLike) -> Path:
    """A fresh staging path for `final`, unique to this process and call (hidden: TF Serving ignores
    non-numeric names, globs skip dot files); the writer's pid lets `recover` tell a stale one."""
    final = Path(final)
    return final.with_name(f".{final.name}{_STAGING}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _aside_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def remove(path: PathLike) -> None:
    """Remove a file, a link or a whole folder; nothing if absent."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _writer_alive(staging_name: str) -> bool:
    pid = staging_name.rsplit(_STAGING, 1)[-1].split("-", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def stale_staging(folder: PathLike, name: str = "*") -> List[Path]:
    """Staging copies in `folder` (of outputs called `name`) whose writer process is gone."""
    return sorted(p for p in Path(folder).glob(f".{name}{_STAGING}*") if not _writer_alive(p.name))


def recover(final: PathLike) -> None:
    """Undo what an interrupted `staged` left beside `final`: restore a folder set aside but not
    replaced, drop an aside copy whose replacement is in place, drop stale staging copies (a writer
    still running keeps its own)."""
    final = Path(final)
    aside = _aside_path(final)
    if aside.exists() and not final.exists():
        os.rename(aside, final)
    remove(aside)
    if final.parent.is_dir():
        for leftover in stale_staging(final.parent, glob.escape(final.name)):
            remove(leftover)


@contextlib.contextmanager
def staged(final: PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a staging path for `final` (nothing exists there yet); publish it when the block ends.

    replace=False: refuse (FileExistsError) when `final` exists, before and at publication: a second
    writer that lost a race never overwrites the first one's output.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover(final)
    if final.exists() and not replace:
        raise FileExistsError(f"{final} exists")
    staging = staging_path(final)
    try:
        yield staging
        if not staging.exists():
            raise FileNotFoundError(f"nothing was written to the staging path {staging}")
        publish(staging, final, replace)
    finally:
        remove(staging)


def publish(staging: PathLike, final: PathLike, replace: bool = True) -> None:
    """Rename a complete staging file or folder to `final` (see the module docstring)."""
    staging, final = Path(staging), Path(final)
    if not final.exists() and not final.is_symlink():
        try:
            if not replace and staging.is_dir():
                os.rename(staging, final)  # fails if another writer filled final in the meantime
            elif not replace:
                os.link(staging, final)  # a hard link fails on an existing name, unlike rename
                staging.unlink()
            else:
                os.replace(staging, final)
        except OSError as error:
            if final.exists() and not replace:
                raise FileExistsError(f"{final} exists: another writer published it first") from error
            raise
        return
    if not replace:
        raise FileExistsError(f"{final} exists: another writer published it first")
    if final.is_dir() and not final.is_symlink():
        aside = _aside_path(final)
        os.rename(final, aside)
        os.rename(staging, final)
        remove(aside)
    else:
        os.replace(staging, final)
