"""Drift between spans: this run's statistics against those of the data the served model was trained
on, through the drift comparators of the curated schema (schema/schema.pbtxt).

TFX 1.16's ExampleValidator never compares with earlier statistics, and its DistributionValidator
needs a Resolver for the baseline, which open-source Kubeflow Pipelines cannot run. The baseline here
is what the model in service learnt from: each pushed version carries its training data's statistics
(components/pusher/serving_dir.py, training_data/), the same locally and on Kubeflow. Normally that
is the previous span; after a span that was stopped, or trained but not blessed, it is the last span
a served model learnt from, which is the comparison that matters for the model in service.

Only the train split is compared: eval and test are a tenth of a span each, split by subject, and
their class shares move by chance. With a rolling window of several spans, StatisticsGen's statistics
cover the whole window, most of which the served version learnt from; the gate then computes the
statistics of the window's new spans alone (write_statistics_of_spans) and compares those.
"""
import dataclasses
import json
import os
from typing import List, Optional, Sequence, Tuple

from absl import logging
from tfx.dsl.io import fileio

from components.data_gate.anomalies_report import Finding
from components.example_gen import spans as spans_lib
from components.example_gen.spans import Span
from components.pusher import serving_dir as serving

DRIFT_SPLITS = ("train",)
STATISTICS_FILE = "FeatureStats.pb"  # StatisticsGen's per-split file
_MEASURES = {"L_INFTY": "L-infinity distance of the value shares",
             "JENSEN_SHANNON_DIVERGENCE": "Jensen-Shannon divergence of the histograms",
             "NORMALIZED_ABSOLUTE_DIFFERENCE": "normalized absolute difference"}


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The served version whose training data a new span is compared with."""
    version: int
    version_dir: str
    span: Optional[int]
    statistics_dir: str
    spans: Tuple[Span, ...] = ()  # its window's span folders (recorded by versions since spans were kept)

    def describe(self) -> str:
        """'span 2 (span-2/)', 'spans 1-3 (span-1/, ...)' or, for a version that recorded no span
        folders, 'span 2'; then which served version learnt from it. Folders, as dated spans
        ('2026-12-02/') mean nothing to a person by their span number (20789)."""
        if self.spans:
            what = spans_lib.describe(self.spans)
        else:
            what = f"span {self.span}" if self.span is not None else "its training data"
        return f"{what} (what served version {self.version} was trained on)"


@dataclasses.dataclass(frozen=True)
class Measurement:
    split: str
    feature: str
    measure: str
    value: float
    threshold: float

    def __str__(self) -> str:
        verdict = "ABOVE the threshold" if self.value > self.threshold else "within"
        return f"{self.split} {self.feature}: {self.measure} {self.value:.4f} (threshold {self.threshold:g}, {verdict})"


@dataclasses.dataclass
class Comparison:
    current_span: int
    baseline: Baseline
    findings: List[Finding]
    measurements: List[Measurement]
    compared: str = ""  # what of this run's data was compared, when not just "span <current_span>"

    def headline(self) -> str:
        return f"from {self.baseline.describe()} to {self.compared or f'span {self.current_span}'}"


def served_baseline(serving_dir: str) -> Optional[Baseline]:
    """The newest complete version under serving_dir with the statistics of its training data; None
    when nothing is served yet, or the served version has none (pushed by hand or before versions
    carried them: logged, as no drift check can be made)."""
    versions = serving.complete_versions(serving_dir) if serving_dir and fileio.isdir(serving_dir) else []
    if not versions:
        return None
    version_dir = os.path.join(serving_dir, str(versions[0]))
    statistics_dir = os.path.join(version_dir, serving.TRAINING_STATISTICS_DIR)
    if not fileio.isdir(statistics_dir):
        logging.warning("Served version %s has no %s/: no drift check against it.", versions[0],
                        serving.TRAINING_STATISTICS_DIR)
        return None
    record = serving.read_training_data(version_dir) or {}
    return Baseline(versions[0], version_dir, record.get("span"), statistics_dir,
                    spans_lib.from_json(json.dumps(record.get("spans") or [])))


def new_spans(window: Sequence[Span], baseline: Baseline) -> Tuple[Span, ...]:
    """The spans of this run's rolling window that the served version did not learn from: with a
    window of K spans, the window's statistics would show a new span's drift about K times smaller
    (the other K-1 spans are the served version's own data), so only these are compared. The whole
    window when the served version's spans are unknown."""
    if not baseline.spans:
        return tuple(window)
    served = {s.folder for s in baseline.spans}
    return tuple(s for s in window if s.folder not in served)


def write_statistics_of_spans(examples_uri: str, spans: Sequence[Span], schema, out_dir: str,
                              splits: Sequence[str] = DRIFT_SPLITS) -> None:
    """TFDV statistics, as StatisticsGen writes them (out_dir/Split-<split>/FeatureStats.pb), of the
    examples of some spans of a window: those whose image id starts with one of their folders
    (ingestion prefixes every id with its span folder). DirectRunner, in this process."""
    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    import pyarrow as pa  # pylint: disable=import-outside-toplevel
    import pyarrow.compute as pc  # pylint: disable=import-outside-toplevel
    import tensorflow_data_validation as tfdv  # pylint: disable=import-outside-toplevel
    from tfx_bsl.public import tfxio  # pylint: disable=import-outside-toplevel

    from contract.data import IMAGE_ID  # pylint: disable=import-outside-toplevel

    prefixes = [f"{s.folder}/" for s in spans]

    def of_spans(batch: pa.RecordBatch) -> pa.RecordBatch:
        ids = pc.list_flatten(batch.column(batch.schema.get_field_index(IMAGE_ID)))
        keep = pc.starts_with(ids, prefixes[0])
        for prefix in prefixes[1:]:
            keep = pc.or_(keep, pc.starts_with(ids, prefix))
        return batch.filter(keep)

    with beam.Pipeline() as pipeline:
        for split in splits:
            records = tfxio.TFExampleRecord(file_pattern=os.path.join(examples_uri, f"Split-{split}", "*"),
                                            telemetry_descriptors=["DataGate"])
            _ = (pipeline | f"Read[{split}]" >> records.BeamSource()
                 | f"OfSpans[{split}]" >> beam.Map(of_spans)
                 | f"NonEmpty[{split}]" >> beam.Filter(lambda batch: batch.num_rows > 0)
                 | f"Statistics[{split}]" >> tfdv.GenerateStatistics(tfdv.StatsOptions(schema=schema))
                 | f"Write[{split}]" >> tfdv.WriteStatisticsToBinaryFile(
                     os.path.join(out_dir, f"Split-{split}", STATISTICS_FILE)))


def _load(statistics_dir: str, split: str):
    import tensorflow_data_validation as tfdv  # pylint: disable=import-outside-toplevel

    path = os.path.join(statistics_dir, f"Split-{split}", STATISTICS_FILE)
    return tfdv.load_stats_binary(path) if fileio.exists(path) else None


def compare(statistics_uri: str, current_span: int, baseline: Baseline, schema,
            splits: Sequence[str] = DRIFT_SPLITS, compared: str = "") -> Comparison:
    """TFDV's validate_statistics with the baseline as previous_statistics: each drift comparator of
    the schema above its threshold is a finding; every measurement is kept for the log. compared:
    what statistics_uri describes, when not "span <current_span>" (the new spans of a window)."""
    import tensorflow_data_validation as tfdv  # pylint: disable=import-outside-toplevel
    from tensorflow_metadata.proto.v0 import anomalies_pb2  # pylint: disable=import-outside-toplevel

    findings, measurements = [], []
    for split in splits:
        current, previous = _load(statistics_uri, split), _load(baseline.statistics_dir, split)
        if current is None or previous is None:
            continue
        anomalies = tfdv.validate_statistics(current, schema, previous_statistics=previous)
        for info in anomalies.drift_skew_info:
            for m in info.drift_measurements:
                kind = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type)
                measurements.append(Measurement(split, ".".join(info.path.step), _MEASURES.get(kind, kind), m.value,
                                                m.threshold))
        for feature, info in sorted(anomalies.anomaly_info.items()):
            for reason in info.reason:
                if anomalies_pb2.AnomalyInfo.Type.Name(reason.type).startswith("COMPARATOR_"):
                    measured = [m for m in measurements if m.split == split and m.feature == feature]
                    served = spans_lib.describe(baseline.spans) if baseline.spans else f"span {baseline.span}"
                    expected = (f"{measured[0].measure} at most {measured[0].threshold:g} from {served}"
                                if measured else "within the schema's drift comparator")
                    found = (f"{measured[0].value:.4f} in {compared or f'span {current_span}'}" if measured
                             else reason.description)
                    findings.append(Finding(split, feature, expected, found))
        findings += vanished_classes(current, previous, split, compared or f"span {current_span}", baseline)
    return Comparison(current_span, baseline, findings, measurements, compared)


def _value_counts(statistics, feature: str) -> dict:
    """{value: count} of a categorical feature in a DatasetFeatureStatisticsList (its top values)."""
    for dataset in statistics.datasets:
        for stats in dataset.features:
            if ".".join(stats.path.step) == feature:
                return {v.value: v.frequency for v in stats.string_stats.top_values}
    return {}


def vanished_classes(current, previous, split: str, compared: str, baseline: Baseline) -> List[Finding]:
    """A class the served version learnt from with no example in the new data: the class-share
    comparator cannot see it when the class is rare (disgust is 1.5% of FER2013, far under its 0.1
    threshold), yet a model retrained on that data forgets the class. A finding, to fix or accept."""
    from contract.data import EMOTIONS, LABEL  # pylint: disable=import-outside-toplevel

    before, now = _value_counts(previous, LABEL), _value_counts(current, LABEL)
    gone = [value for value, count in before.items() if count and not now.get(value)]
    return [Finding(split, LABEL, f"class {EMOTIONS[int(v)] if v.isdigit() and int(v) < len(EMOTIONS) else v!r} "
                                  f"present ({before[v]:.0f} examples in {baseline.describe()})",
                    f"no example of it in {compared}") for v in sorted(gone)]


def format_drift(comparison: Comparison, accept_setting: str) -> str:
    """The gate's report: which spans, each finding, every measurement, and how to accept it.
    accept_setting: how to accept, with {span} for the span number."""
    lines = [f"Data drift {comparison.headline()}: {len(comparison.findings)} finding"
             f"{'' if len(comparison.findings) == 1 else 's'} beyond the drift comparators of the curated "
             "schema/schema.pbtxt."]
    lines += [f"  - {f}" for f in comparison.findings]
    lines.append("Measured (every drift comparator of the schema):")
    lines += [f"    {m}" for m in comparison.measurements]
    lines.append(f"Baseline statistics: {comparison.baseline.statistics_dir}")
    lines.append(f"If the change is expected (a new camera, a new dataset), accept it for span {comparison.current_span} "
                 f"only: {accept_setting.format(span=comparison.current_span)}, and run again. Otherwise fix the data.")
    return "\n".join(lines)


def accepted_spans(accept_drift: str) -> List[int]:
    """The spans an operator accepted the drift of: 'N' or 'N,M' (span numbers, as the report names them)."""
    spans = []
    for token in (accept_drift or "").replace(" ", "").split(","):
        if not token:
            continue
        if not token.isdigit():
            raise ValueError(f"accept_drift={accept_drift!r}: expected span numbers such as 2 or 2,3 "
                             f"(the numbers the drift report names), got {token!r}")
        spans.append(int(token))
    return spans
