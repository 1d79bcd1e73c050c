"""`deep-emotion schema-candidate`: the schema the latest run's SchemaGen inferred, beside the
curated schema/schema.pbtxt, for a maintainer to review before changing the curated one.

Both are written in one canonical text layout (features sorted by name, comments dropped) so that
the printed diff shows content, not formatting.
"""
import difflib
import os

import click

from deep_emotion import runs


def canonical_text(schema) -> str:
    from google.protobuf import text_format

    ordered = type(schema)()
    ordered.CopyFrom(schema)
    ordered.ClearField("feature")
    ordered.feature.extend(sorted(schema.feature, key=lambda f: f.name))
    return text_format.MessageToString(ordered)


@click.command("schema-candidate")
@click.option("--out", "out_dir", default=None, help="Folder to write to (default: <output root>/schema-candidate).")
def schema_candidate(out_dir):
    """Write the latest run's inferred schema next to the curated one and print their differences."""
    import tensorflow_data_validation as tfdv

    from pipeline import configs

    run = runs.latest_run(configs.METADATA_PATH, configs.PIPELINE_NAME)
    node = run.nodes.get("SchemaGen") if run else None
    if node is None or "schema" not in node.outputs:
        raise click.ClickException(f"No SchemaGen output in the latest run of '{configs.PIPELINE_NAME}' "
                                   f"({configs.METADATA_PATH}): run the pipeline first.")
    inferred = tfdv.load_schema_text(os.path.join(node.output("schema").uri, "schema.pbtxt"))
    curated = tfdv.load_schema_text(configs.SCHEMA_PATH)
    out_dir = out_dir or os.path.join(configs.OUTPUT_ROOT, "schema-candidate")
    os.makedirs(out_dir, exist_ok=True)
    texts = {"curated.pbtxt": canonical_text(curated), "schema.pbtxt": canonical_text(inferred)}
    for name, text in texts.items():
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(text)
    click.echo(f"Candidate schema (run {run.run_id}): {os.path.join(out_dir, 'schema.pbtxt')}")
    diff = list(difflib.unified_diff(texts["curated.pbtxt"].splitlines(), texts["schema.pbtxt"].splitlines(),
                                     f"curated ({configs.SCHEMA_PATH})", "inferred from the data", lineterm=""))
    click.echo("\n".join(diff) if diff else "No differences from the curated schema.")
