"""DataGate: the run stops here, before Transform and training, when the data broke the schema.

ExampleValidator in TFX 1.16 only records anomalies; it never fails a run, and Transform does not
wait for it. This gate reads the anomalies and passes the schema on only when there are none, so
Transform and Trainer (which take the gated schema) cannot start on bad data, and lineage in MLMD
shows which validation every model's data passed. tfx.dsl.Cond would skip the rest silently with
exit code 0, which is not what an operator wants from bad data.
"""
import os

from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.data_gate import anomalies_report


class DataValidationError(RuntimeError):
    """The examples do not satisfy the schema; the message lists every anomaly."""


@tfx.dsl.components.component
def DataGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    gated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
) -> None:
    """Raises DataValidationError listing every anomaly; otherwise forwards the schema."""
    schema_file = io_utils.get_only_uri_in_dir(schema.uri)
    schema_proto = io_utils.SchemaReader().read(schema_file)
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    findings = anomalies_report.load_findings(anomalies.uri, splits, schema_proto)
    if findings:
        raise DataValidationError(anomalies_report.format_findings(findings, anomalies.uri))
    io_utils.copy_file(schema_file, os.path.join(gated_schema.uri, os.path.basename(schema_file)))
