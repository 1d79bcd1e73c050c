"""One pipeline with two runs on tiny generated data, shared by the notebook and report tests:

1. FER2013 rows only, validated against a schema that allows emotions 0..5 only: ExampleValidator
   finds the neutral faces (6) out of range and the DataGate stops the run (a report must explain
   a failed validation);
2. the full demo data (all four sources) and the curated schema: a complete run, whose drift
   against run 1 is large (run 1 had one source).
"""
import json
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from deep_emotion import runs
from deep_emotion.demo_data.generate import generate
from tests.e2e.harness import PipelineSandbox, explain

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
FAST = json.dumps({"epochs": 2, "batch_size": 64, "early_stopping_patience": 2})


@dataclass
class ReportRuns:
    sandbox: PipelineSandbox
    stopped: runs.PipelineRun    # run 1: stopped by the DataGate
    complete: runs.PipelineRun   # run 2: every component ran

    @property
    def metadata_path(self) -> str:
        return self.sandbox.metadata_path


@pytest.fixture(scope="session")
def report_runs(tmp_path_factory) -> ReportRuns:
    root = tmp_path_factory.mktemp("report")
    good, fer2013_only = root / "data-good", root / "data-fer2013"
    generate(str(good), n=120, seed=5)
    fer2013_only.mkdir()
    (fer2013_only / "fer2013.csv").write_text((good / "fer2013.csv").read_text())
    curated = (REPO / "schema" / "schema.pbtxt").read_text()
    emotion_domain = 'int_domain { name: "emotion" min: 0 max: '
    stricter = curated.replace(emotion_domain + "6", emotion_domain + "5")
    assert stricter != curated, "schema/schema.pbtxt changed: update the stricter schema of run 1"
    (root / "stricter-schema.pbtxt").write_text(stricter)

    box = PipelineSandbox(root, "report-deep-emotion", fer2013_only, profile="demo", hparams=FAST,
                          accuracy_floor="0.0")
    created = box.create()
    assert created.returncode == 0, explain(created)
    first = box.run(schema_path=str(root / "stricter-schema.pbtxt"))
    assert first.returncode != 0 and box.latest_run().states()["DataGate"] == "FAILED", explain(first)
    stopped = box.latest_run()
    second = box.run(data_root=str(good), schema_path=str(REPO / "schema" / "schema.pbtxt"))
    assert second.returncode == 0, explain(second)
    return ReportRuns(box, stopped, box.latest_run())


def execute_notebook(name: str, parameters: dict) -> nbformat.NotebookNode:
    """Runs a notebook headless as papermill would: the parameters go in a cell after the one tagged
    `parameters`."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in parameters.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, injected)
    return run_notebook(notebook)


def run_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Executes in notebooks/ with ipykernel's own "python3" spec (kernel_dirs=[]), which starts this
    interpreter (the venv's), never a "python3" kernelspec installed elsewhere on the machine."""
    kernel = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    NotebookClient(notebook, km=kernel, timeout=600, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook
