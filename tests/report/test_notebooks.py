"""The notebooks as users get them from git (no outputs, a parameters cell) and executed headless
against a real pipeline run."""
import json
import sys

import nbformat
import pytest

from tests.report.conftest import NOTEBOOKS, execute_notebook, run_notebook

DATA_SECTIONS = ["run", "statistics", "schema", "anomalies", "class-counts", "samples", "pixels", "face-crops",
                 "drift-skew"]
MODEL_SECTIONS = ["run", "metrics", "confusion-matrix", "per-class", "calibration", "misclassified", "attention",
                  "model-card"]
NAMES = ["data_validation", "model_analysis"]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs_and_with_a_tagged_parameters_cell(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c for c in code if c.outputs or c.execution_count is not None] == []
    assert code[0].metadata.get("tags") == ["parameters"]
    assert {"metadata_path", "pipeline_name", "pipeline_root", "run_id"} <= {
        line.split("=")[0].strip() for line in code[0].source.splitlines() if "=" in line and not line.startswith("#")}
    assert notebook.metadata.kernelspec.name == "python3"


def _html_outputs(notebook) -> str:
    return "\n".join(o.get("data", {}).get("text/html", "") for c in notebook.cells if c.cell_type == "code"
                     for o in c.outputs)


def _errors(notebook):
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def test_data_validation_notebook_executes_against_the_latest_run(report_runs):
    notebook = execute_notebook("data_validation", {"metadata_path": report_runs.metadata_path,
                                                    "pipeline_name": report_runs.sandbox.name})
    assert _errors(notebook) == []
    html = _html_outputs(notebook)
    assert [s for s in DATA_SECTIONS if f'<section id="{s}">' not in html] == []
    assert report_runs.complete.run_id in html
    # drift against the run before it (the one the DataGate stopped) is measured
    assert "previous run vs this run (drift)" in html


def test_model_analysis_notebook_executes_against_the_latest_run(report_runs):
    notebook = execute_notebook("model_analysis", {"metadata_path": report_runs.metadata_path,
                                                   "pipeline_name": report_runs.sandbox.name,
                                                   "misclassified_shown": 5})
    assert _errors(notebook) == []
    html = _html_outputs(notebook)
    assert [s for s in MODEL_SECTIONS if f'<section id="{s}">' not in html] == []
    assert 'id="attention-grid"' in html and 'id="confusion-matrix-plot"' in html
    assert "Not available" not in html


def test_notebooks_run_in_this_interpreter():
    """The project's venv Python, not whatever "python3" kernelspec the machine has elsewhere."""
    notebook = run_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import json, sys\nprint(json.dumps(sys.executable))")]))
    assert json.loads(notebook.cells[0].outputs[0].text) == sys.executable
