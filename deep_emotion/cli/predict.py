"""`deep-emotion predict`: JSON lines for photos (one per face), videos (one per frame), 48x48 crops
and FER2013-style CSV rows, as the served model answers them (deep_emotion/predict.py)."""
import json
import sys

import click

from contract.data import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS


@click.command("predict")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="A SavedModel, or a serving directory (its newest version is used).")
@click.option("--no-detect", is_flag=True,
              help="Inputs are face crops already: classify each whole image, no face detection.")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Videos: answer every K-th frame.")
@click.option("--max-image-pixels", type=click.IntRange(min=1), default=None,
              help=f"Refuse an image whose header claims more pixels, before decoding it [default: the budget the "
                   f"model was exported with, {MAX_IMAGE_PIXELS:,} unless set otherwise].")
@click.option("--max-image-bytes", type=click.IntRange(min=1), default=None,
              help=f"Refuse an image file larger than this [default: the model's budget, {MAX_IMAGE_BYTES:,}].")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def command(model_path, no_detect, every, max_image_pixels, max_image_bytes, paths):
    """Predict the emotion of the faces in photos, videos and folders, of 48x48 crops, or of
    FER2013-style CSV rows (JSON lines on stdout)."""
    from components.pusher.serving_dir import resolve_model_dir
    from deep_emotion.predict import predict_lines

    try:
        model_dir = resolve_model_dir(model_path)
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"model: {model_dir}", err=True)
    bars = []

    def progress(name, frames):
        if not frames:  # the container does not say (mkv, webm) or cannot be read: no bar to fill
            return lambda n: None
        bar = click.progressbar(length=frames, label=f"{name} (frames)", file=click.get_text_stream("stderr"))
        bars.append(bar.__enter__())
        return bars[-1].update

    failures = 0
    try:
        for answer in predict_lines(model_dir, list(paths), detect=not no_detect, every=every,
                                    max_pixels=max_image_pixels, max_bytes=max_image_bytes, progress=progress,
                                    notice=lambda message: click.echo(message, err=True)):
            failures += "error" in answer
            click.echo(json.dumps(answer))
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
    if failures:
        click.echo(f"{failures} input(s) could not be read (see their 'error' lines)", err=True)
        sys.exit(1)
