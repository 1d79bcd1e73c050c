"""`deep-emotion report`: the data-validation and model-analysis notebooks' content as one offline
HTML file (deep_emotion/report)."""
import os

import click


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
def command(pipeline_root, metadata_path, pipeline_name, run_id, out_path):
    """Write the dataset-validation and model-analysis report of a pipeline run as one offline HTML file."""
    from deep_emotion.report import artifacts, html

    try:
        run = artifacts.locate(metadata_path, pipeline_name, pipeline_root, run_id)
    except (FileNotFoundError, LookupError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"Reporting on {run.describe()}")
    html.write_report(run, out_path)
    click.echo(f"Report written: {os.path.abspath(out_path)}")
