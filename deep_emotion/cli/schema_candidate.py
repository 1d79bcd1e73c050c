"""`deep-emotion schema-candidate`: the latest run's inferred schema beside the curated one, with the diff."""
import os

import click


@click.command("schema-candidate")
@click.option("--out", "out_dir", default=None, help="Folder to write to (default: <output root>/schema-candidate).")
def command(out_dir):
    """Write the latest run's inferred schema next to the curated one and print their differences."""
    from deep_emotion.schema_review import write_candidate
    from pipeline import configs

    out_dir = out_dir or os.path.join(configs.OUTPUT_ROOT, "schema-candidate")
    try:
        run_id, diff = write_candidate(configs.METADATA_PATH, configs.PIPELINE_NAME, configs.SCHEMA_PATH, out_dir)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Candidate schema (run {run_id}): {os.path.join(out_dir, 'schema.pbtxt')}")
    click.echo("\n".join(diff) if diff else "No differences from the curated schema.")
