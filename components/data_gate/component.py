"""DataGate: the run stops here, before Transform and training, when the data broke the schema or
drifted from what the served model was trained on beyond the schema's drift comparators.

ExampleValidator in TFX 1.16 only records anomalies; it never fails a run, Transform does not wait
for it, and it never compares with earlier statistics. This gate reads the anomalies, compares the
statistics of this run's span with those of the served model's training data (drift.py), and fails
the run unless both are clean. Transform runs after it (pipeline.py: a task dependency), so Transform
and the Trainer cannot start on bad data. Its output, the gated schema, records in MLMD what the
gate passed (the drift baseline, an accepted drift); Transform and the Trainer read the curated schema,
so that dropping a one-off override re-executes the gate alone and retrains nothing.
tfx.dsl.Cond would skip the rest silently with exit code 0, which is not what an operator wants
from bad data.

A known drift is accepted for one span with `accept_drift` (DEEP_EMOTION_ACCEPT_DRIFT, on Kubeflow
the run parameter accept_drift): the report is logged as a warning and kept on the gated schema
(`drift_accepted`); a later span that drifts stops the run again.
"""
import os
import tempfile
from typing import Optional

from absl import logging
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.data_gate import anomalies_report, drift
from components.example_gen import spans as spans_lib

ACCEPT_SETTING = "DEEP_EMOTION_ACCEPT_DRIFT={span} (on Kubeflow: --param accept_drift={span})"


class DataValidationError(RuntimeError):
    """The examples do not satisfy the schema; the message lists every anomaly."""


class DataDriftError(DataValidationError):
    """This span drifted from the served model's training data; the message names both spans."""


def check_drift(statistics, schema_proto, serving_dir: str, accept_drift: str,
                examples=None) -> Optional[drift.Comparison]:
    """Raises DataDriftError on drift beyond the schema's comparators unless accepted for this span;
    returns the comparison made (None when there was nothing to compare with, which is logged).
    examples: this run's Examples; with a window of several spans, the statistics of its spans that
    the served version did not learn from are computed from them and compared instead of the window's."""
    accepted = drift.accepted_spans(accept_drift)
    span = statistics.span
    window = spans_lib.from_json(examples.get_string_custom_property("span_folders")) if examples else ()
    if not window and span == spans_lib.WHOLE_ROOT:  # a `span-0/` folder is a span like any other
        logging.info("DataGate: the data root has no span folders (span 0): no drift check between spans.")
        return None
    baseline = drift.served_baseline(serving_dir)
    if baseline is None:
        logging.info("DataGate: no served model with training statistics under %s: span %d is not compared.",
                     serving_dir, span)
        return None
    new = drift.new_spans(window, baseline)
    if len(window) > 1 and new and len(new) < len(window):
        with tempfile.TemporaryDirectory(prefix="new-spans-statistics-") as new_statistics:
            logging.info("DataGate: statistics of %s, the window's data that served version %s did not learn from",
                         spans_lib.describe(new), baseline.version)
            drift.write_statistics_of_spans(examples.uri, new, schema_proto, new_statistics)
            comparison = drift.compare(new_statistics, span, baseline, schema_proto,
                                       compared=f"{spans_lib.describe(new)}, the new data of the window "
                                                f"{spans_lib.describe(window)}")
    else:
        comparison = drift.compare(statistics.uri, span, baseline, schema_proto,
                                   compared=spans_lib.describe(window) if window else "")
    logging.info("DataGate: drift %s:\n%s", comparison.headline(), "\n".join(f"  {m}" for m in comparison.measurements))
    if comparison.findings:
        report = drift.format_drift(comparison, ACCEPT_SETTING)
        if span not in accepted:
            raise DataDriftError(report)
        logging.warning("DataGate: drift ACCEPTED for span %d by the operator's override accept_drift=%r; the run "
                        "goes on.\n%s", span, accept_drift, report)
    elif accepted:
        logging.info("DataGate: accept_drift=%r is set, but span %d has no drift beyond the schema's comparators.",
                     accept_drift, span)
    return comparison


@tfx.dsl.components.component
def DataGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    gated_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None,
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples] = None,
    serving_dir: tfx.dsl.components.Parameter[str] = "",
    accept_drift: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Raises DataValidationError listing every anomaly, or DataDriftError naming the spans and every
    drift finding; otherwise forwards the schema. statistics + serving_dir: compare this span with
    the served model's training data (examples: to single out a window's new spans); accept_drift:
    span numbers whose drift an operator accepted."""
    schema_file = io_utils.get_only_uri_in_dir(schema.uri)
    schema_proto = io_utils.SchemaReader().read(schema_file)
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    findings = anomalies_report.load_findings(anomalies.uri, splits, schema_proto)
    if findings:
        raise DataValidationError(anomalies_report.format_findings(findings, anomalies.uri))
    comparison = (check_drift(statistics, schema_proto, serving_dir, accept_drift, examples)
                  if statistics and serving_dir else None)
    io_utils.copy_file(schema_file, os.path.join(gated_schema.uri, os.path.basename(schema_file)))
    if comparison is not None:
        gated_schema.set_string_custom_property("drift_baseline", comparison.baseline.describe())
        if comparison.findings:
            gated_schema.set_string_custom_property("drift_accepted", drift.format_drift(comparison, ACCEPT_SETTING))
