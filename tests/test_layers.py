"""One-way layers: contract <- faces <- components | trainer <- pipeline <- deep_emotion (.importlinter).

import-linter (lint-imports) reads every import of the five packages, lazy ones inside functions
included. The second test copies the packages, adds one import that runs back up, and checks that
the same contract then fails and names it.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
PACKAGES = ("contract", "faces", "components", "trainer", "pipeline", "deep_emotion")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_code_keeps_the_layers():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module, bad_import, shown", [
    ("contract/data.py", "from pipeline import configs", "contract.data -> pipeline.configs"),
    ("components/pusher/serving_dir.py", "from trainer import export", "components.pusher.serving_dir -> trainer.export"),
    ("trainer/model.py", "def later():\n    from deep_emotion import runs", "trainer.model -> deep_emotion.runs"),
    ("faces/crop.py", "from components.example_gen import files", "faces.crop -> components.example_gen.files"),
])
def test_an_import_that_runs_back_up_breaks_the_contract(tmp_path, module, bad_import, shown):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    with open(tmp_path / module, "a", encoding="utf-8") as f:
        f.write(f"\n{bad_import}\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "Contracts: 0 kept, 1 broken." in result.stdout
    assert shown in result.stdout
