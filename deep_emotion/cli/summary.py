"""`deep-emotion summary`: what the latest pipeline run did, where its outputs are, and the pushed
model's test accuracy (deep_emotion/summary.py); the gate of `make demo` with --min-test-accuracy."""
import click


@click.command("summary")
@click.option("--metadata-path", default=None, help="MLMD SQLite file (default: configs.METADATA_PATH).")
@click.option("--pipeline-name", default=None, help="Pipeline name (default: configs.PIPELINE_NAME).")
@click.option("--min-test-accuracy", type=float, default=None,
              help="Exit non-zero unless a model was pushed and reaches this test accuracy.")
def command(metadata_path, pipeline_name, min_test_accuracy):
    """Show what the latest pipeline run did, where its outputs are, and the pushed model's test accuracy."""
    from deep_emotion import summary
    from pipeline import configs

    try:
        result = summary.summarize(metadata_path or configs.METADATA_PATH, pipeline_name or configs.PIPELINE_NAME,
                                   echo=click.echo)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    if min_test_accuracy is not None:
        failure = summary.check_test_accuracy(result, min_test_accuracy)
        if failure:
            raise click.ClickException(failure[0].upper() + failure[1:])
