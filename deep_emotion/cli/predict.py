"""`deep-emotion predict`: one JSON line per input, as a TF Serving client would get them."""
import json
import sys

import click


@click.command("predict")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="A SavedModel, or a serving directory (its newest version is used).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def command(model_path, paths):
    """Predict the emotion of images, folders of images, or FER2013-style CSV rows (JSON lines)."""
    from components.pusher.serving_dir import resolve_model_dir
    from deep_emotion.predict import predict_lines

    try:
        model_dir = resolve_model_dir(model_path)
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"model: {model_dir}", err=True)
    failures = 0
    try:
        for answer in predict_lines(model_dir, list(paths)):
            failures += "error" in answer
            click.echo(json.dumps(answer))
    except ValueError as error:  # a CSV without a pixels column
        raise click.ClickException(str(error)) from None
    if failures:
        click.echo(f"{failures} input(s) could not be read (see their 'error' lines)", err=True)
        sys.exit(1)
