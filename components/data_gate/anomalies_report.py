"""Human-readable anomaly reports from ExampleValidator output (one place, used by the gate,
the HTML report and the notebooks)."""
import os
from dataclasses import dataclass
from typing import List, Sequence

from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

ANOMALIES_FILE = "SchemaDiff.pb"  # tfx.components.example_validator.executor.DEFAULT_FILE_NAME


@dataclass(frozen=True)
class Finding:
    """One anomaly: where (split, feature), what the schema expects, what the data showed."""
    split: str
    feature: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"split '{self.split}', feature '{self.feature}': found {self.found}; expected {self.expected}"


def expectation(schema: schema_pb2.Schema, feature_name: str) -> str:
    """What the schema requires of a feature (or of the dataset), in words."""
    if feature_name == "(dataset)":
        c = schema.dataset_constraints
        return f"at least {c.min_examples_count} examples" if c.HasField("min_examples_count") else "dataset constraints"
    feature = next((f for f in schema.feature if f.name == feature_name), None)
    if feature is None:
        return "no such feature in the schema"
    parts = [schema_pb2.FeatureType.Name(feature.type)]
    if feature.HasField("int_domain"):
        parts.append(f"values in {feature.int_domain.min}..{feature.int_domain.max}")
    if feature.HasField("domain"):
        values = next((list(d.value) for d in schema.string_domain if d.name == feature.domain), [])
        parts.append(f"one of {values}")
    if feature.HasField("shape"):
        parts.append("shape [" + ", ".join(str(d.size) for d in feature.shape.dim) + "]")
    if feature.HasField("value_count"):
        parts.append(f"{feature.value_count.min}..{feature.value_count.max} values")
    if feature.presence.min_fraction:
        parts.append(f"present in {feature.presence.min_fraction:.0%} of examples")
    return ", ".join(parts)


def _found(info: anomalies_pb2.AnomalyInfo) -> str:
    reasons = [f"{r.short_description} ({r.description})" if r.description else r.short_description
               for r in info.reason]
    return "; ".join(reasons) or info.description or info.short_description


def load_findings(anomalies_uri: str, splits: Sequence[str], schema: schema_pb2.Schema) -> List[Finding]:
    """Reads ExampleValidator's per-split SchemaDiff.pb files into findings (empty: no anomalies)."""
    findings = []
    for split in splits:
        path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
        anomalies = anomalies_util.load_anomalies_binary(path)
        if anomalies.data_missing:  # TFDV reports an empty split this way, not as an anomaly
            findings.append(Finding(split, "(dataset)", "examples in every split", "no examples at all"))
        for feature, info in sorted(anomalies.anomaly_info.items()):
            findings.append(Finding(split, feature, expectation(schema, feature), _found(info)))
        if anomalies.HasField("dataset_anomaly_info"):
            findings.append(Finding(split, "(dataset)", expectation(schema, "(dataset)"),
                                    _found(anomalies.dataset_anomaly_info)))
    return findings


def format_findings(findings: Sequence[Finding], anomalies_uri: str) -> str:
    splits = sorted({f.split for f in findings})
    lines = [f"Data validation failed: {len(findings)} anomal{'y' if len(findings) == 1 else 'ies'} "
             f"in split{'s' if len(splits) > 1 else ''} {', '.join(splits)} (schema: the curated schema/schema.pbtxt)."]
    lines += [f"  - {f}" for f in findings]
    lines.append(f"ExampleValidator's report: {anomalies_uri}")
    lines.append("Fix the data, or if the data is right and the schema is stale, review `make schema-candidate`.")
    return "\n".join(lines)
