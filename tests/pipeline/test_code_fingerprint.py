"""The cache key of Transform and Trainer follows every module of ours they run, and nothing else."""
import shutil
from pathlib import Path

import pytest

from pipeline.code_fingerprint import code_fingerprint, module_files

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("contract", "components", "trainer", "pipeline", "deep_emotion")


@pytest.fixture
def tree(tmp_path):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _relative(files, root):
    return {str(p.relative_to(root)) for p in files}


def test_the_trainer_runs_the_model_the_data_contract_and_nothing_of_the_command_line():
    files = _relative(module_files(["trainer.task"]), REPO)
    assert {"trainer/task.py", "trainer/export.py", "trainer/model.py", "trainer/stn.py", "trainer/train.py",
            "trainer/lite.py", "trainer/preprocessing.py", "trainer/__init__.py", "contract/data.py",
            "contract/runtime.py", "contract/__init__.py"} <= files
    assert not {f for f in files if f.startswith(("deep_emotion/", "pipeline/", "components/"))}
    assert _relative(module_files(["trainer.preprocessing"]), REPO) == {
        "trainer/__init__.py", "trainer/preprocessing.py", "contract/__init__.py", "contract/data.py"}


@pytest.mark.parametrize("edited, transform_changes, trainer_changes", [
    ("contract/data.py", True, True),        # both run the data contract
    ("trainer/stn.py", False, True),         # the model's sampler: Trainer only
    ("trainer/preprocessing.py", True, True),
    ("deep_emotion/cli/summary.py", False, False),
    ("pipeline/kubeflow.py", False, False),
    ("components/pusher/serving_dir.py", False, False),
])
def test_an_edit_changes_the_fingerprint_of_the_code_that_runs_it(tree, edited, transform_changes, trainer_changes):
    before = {m: code_fingerprint([m], tree) for m in ("trainer.preprocessing", "trainer.task")}
    with open(tree / edited, "a", encoding="utf-8") as f:
        f.write("\n# an edit\n")
    after = {m: code_fingerprint([m], tree) for m in before}
    assert (before["trainer.preprocessing"] != after["trainer.preprocessing"]) == transform_changes
    assert (before["trainer.task"] != after["trainer.task"]) == trainer_changes


def test_a_lazy_import_inside_a_function_is_followed(tree):
    before = code_fingerprint(["trainer.preprocessing"], tree)
    with open(tree / "trainer" / "preprocessing.py", "a", encoding="utf-8") as f:
        f.write("\ndef later():\n    from trainer import stn\n")
    assert "trainer/stn.py" in _relative(module_files(["trainer.preprocessing"], tree), tree)
    with open(tree / "trainer" / "stn.py", "a", encoding="utf-8") as f:
        f.write("\n# an edit\n")
    assert code_fingerprint(["trainer.preprocessing"], tree) != before


def test_an_unknown_module_is_an_error():
    with pytest.raises(ValueError, match="trainer.nowhere: not a module under"):
        code_fingerprint(["trainer.nowhere"])
