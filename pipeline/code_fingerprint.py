"""A fingerprint of every module of ours that a component's user code runs, for TFX's cache key.

Transform and Trainer run our code by dotted path (trainer.preprocessing.preprocessing_fn,
trainer.task.run_fn). TFX's cache key covers a component's inputs and exec properties, not the code
behind a dotted path; and with a module file TFX fingerprints only that file's folder, so an edit to
contract/ (which both run) would leave stale cached outputs. So the pipeline passes this fingerprint
in the components' custom_config: it follows the imports from the entry module through every
module of this project it reaches (import statements anywhere in a module, lazy ones included),
hashing each file's path and bytes. Third-party modules are not followed: the lock pins them.

Static (ast, nothing is imported): an import done by name at run time (importlib) is not seen.
"""
import ast
import hashlib
from pathlib import Path
from typing import Iterable, List, Optional, Set

SOURCE_ROOT = Path(__file__).resolve().parents[1]


def _module_file(name: str, root: Path) -> Optional[Path]:
    parts = name.split(".")
    for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path, module: str) -> Iterable[str]:
    """Every module name an import in this file may load (for `from a import b`, both a and a.b)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def module_files(entry_modules: Iterable[str], root: Path = SOURCE_ROOT) -> List[Path]:
    """The files of our modules reachable by import from the entry modules, parents' __init__ included."""
    pending = list(entry_modules)
    missing = [name for name in pending if _module_file(name, root) is None]
    if missing:
        raise ValueError(f"{', '.join(missing)}: not a module under {root}")
    seen: Set[Path] = set()
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py too
            prefix = ".".join(parts[:depth])
            path = _module_file(prefix, root)
            if path is None or path in seen:
                continue
            seen.add(path)
            pending.extend(_imported_names(path, prefix))
    return sorted(seen)


def code_fingerprint(entry_modules: Iterable[str], root: Path = SOURCE_ROOT) -> str:
    """sha256 over the relative path and bytes of every file module_files finds."""
    digest = hashlib.sha256()
    for path in module_files(entry_modules, root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
