"""`deep-emotion config`: the pipeline settings in effect and their DEEP_EMOTION_* variables."""
import click


@click.command("config")
def command():
    """Print the pipeline settings in effect and their DEEP_EMOTION_* variables."""
    from pipeline import configs

    click.echo(configs.describe())
