"""The schema the latest run's SchemaGen inferred, beside the curated schema/schema.pbtxt, for a
maintainer to review before changing the curated one (`deep-emotion schema-candidate`).

Both are written in one canonical text layout (features sorted by name, comments dropped) so that
the printed diff shows content, not formatting.
"""
import difflib
import os
from typing import Dict, List

from deep_emotion import runs


def canonical_text(schema) -> str:
    from google.protobuf import text_format

    ordered = type(schema)()
    ordered.CopyFrom(schema)
    ordered.ClearField("feature")
    ordered.feature.extend(sorted(schema.feature, key=lambda f: f.name))
    return text_format.MessageToString(ordered)


def write_candidate(metadata_path: str, pipeline_name: str, curated_path: str, out_dir: str):
    """Writes curated.pbtxt and schema.pbtxt (canonical text) to out_dir; returns (run id, diff lines).

    LookupError when the latest run has no SchemaGen output.
    """
    import tensorflow_data_validation as tfdv

    run = runs.latest_run(metadata_path, pipeline_name)
    node = run.nodes.get("SchemaGen") if run else None
    if node is None or "schema" not in node.outputs:
        raise LookupError(f"No SchemaGen output in the latest run of '{pipeline_name}' ({metadata_path}): "
                          "run the pipeline first.")
    inferred = tfdv.load_schema_text(os.path.join(node.output("schema").uri, "schema.pbtxt"))
    curated = tfdv.load_schema_text(curated_path)
    os.makedirs(out_dir, exist_ok=True)
    texts: Dict[str, str] = {"curated.pbtxt": canonical_text(curated), "schema.pbtxt": canonical_text(inferred)}
    for name, text in texts.items():
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(text)
    diff: List[str] = list(difflib.unified_diff(
        texts["curated.pbtxt"].splitlines(), texts["schema.pbtxt"].splitlines(),
        f"curated ({curated_path})", "inferred from the data", lineterm=""))
    return run.run_id, diff
