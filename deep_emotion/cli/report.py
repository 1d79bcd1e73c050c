"""`deep-emotion report`: the data-validation and model-analysis notebooks' content as one
self-contained HTML file (tables and embedded PNG plots, no scripts: it works offline, as a CI
artefact or an e-mail attachment)."""
import os
from typing import List

import click

from deep_emotion.runtime import quiet_tensorflow

TITLE = "Deep-Emotion: data validation and model analysis"


def build_sections(run) -> List:
    from deep_emotion.report import data_validation, model_analysis

    return [*data_validation.data_sections(run), *model_analysis.model_sections(run)]


def write_report(run, out_path: str) -> str:
    """Writes the report of a located run (artifacts.RunArtifacts) to out_path; returns the path."""
    from deep_emotion.report import render

    page = render.document(TITLE, run.describe(), build_sections(run))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(page)
    return out_path


@click.command("report")
@click.option("--pipeline-root", default=None, type=click.Path(file_okay=False),
              help="Scan this pipeline root for the newest artifacts instead of reading ML Metadata "
                   "(e.g. artifacts copied from a Kubeflow bucket); ignored with --metadata-path.")
@click.option("--metadata-path", default=None, help="MLMD SQLite file (default: configs.METADATA_PATH unless "
                                                   "only --pipeline-root is given).")
@click.option("--pipeline-name", default=None, help="Pipeline name in MLMD (default: configs.PIPELINE_NAME).")
@click.option("--run-id", default=None, help="A pipeline_run id from MLMD (default: the latest run).")
@click.option("--out", "out_path", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="HTML file to write.")
def report(pipeline_root, metadata_path, pipeline_name, run_id, out_path):
    """Write the dataset-validation and model-analysis report of a pipeline run as one offline HTML file."""
    quiet_tensorflow()
    from deep_emotion.report import artifacts

    try:
        run = artifacts.locate(metadata_path, pipeline_name, pipeline_root, run_id)
    except (FileNotFoundError, LookupError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"Reporting on {run.describe()}")
    write_report(run, out_path)
    click.echo(f"Report written: {os.path.abspath(out_path)}")
