"""The whole report as one self-contained HTML file (tables and embedded PNG plots, no scripts:
it works offline, as a CI artefact or an e-mail attachment)."""
import os
from typing import List

TITLE = "Deep-Emotion: data validation and model analysis"


def build_sections(run) -> List:
    """Every section of the notebooks, for a located run (artifacts.RunArtifacts)."""
    from deep_emotion.report import data_validation, model_analysis

    return [*data_validation.data_sections(run), *model_analysis.model_sections(run)]


def write_report(run, out_path: str) -> str:
    """Writes the report of a located run to out_path; returns the path."""
    from deep_emotion.report import render

    page = render.document(TITLE, run.describe(), build_sections(run))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(page)
    return out_path
