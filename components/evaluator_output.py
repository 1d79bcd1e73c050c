"""The Evaluator's output (TFMA) read once, for everyone who shows or records it: the model card,
`deep-emotion summary`, the report and the notebooks. Metrics per slice, confusion matrices (and
from them each class's precision and recall of the top prediction), calibration buckets and the
validation verdict in words.
"""
import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from contract import data as dc

OVERALL = "Overall"
ACCURACY, EXAMPLE_COUNT = "sparse_categorical_accuracy", "example_count"
TOP_LABEL = 1  # the calibration plot's TFMA sub-key (BinarizationOptions.k_list): the highest probability


def slice_name(slice_key) -> str:
    """TFMA's SliceKey as "Overall" or "source=ckplus"."""
    parts = []
    for key in slice_key.single_slice_keys:
        kind = key.WhichOneof("kind")
        value = getattr(key, kind)
        parts.append(f"{key.column}={value.decode() if isinstance(value, bytes) else value}")
    return ", ".join(parts) or OVERALL


def slice_order(name: str):
    source = name.split("=", 1)[-1]
    return (name != OVERALL, dc.SOURCES.index(source) if source in dc.SOURCES else len(dc.SOURCES), name)


@dataclass
class Evaluation:
    metrics: pd.DataFrame           # index slice; examples, accuracy (+ baseline columns when compared)
    confusion: Dict[str, pd.DataFrame]  # slice -> true class x predicted class counts
    validation_ok: Optional[bool]
    failures: List[str]
    # slice -> reliability buckets of the top-label confidence (TFMA's CalibrationPlot at sub-key k=1):
    # lower, upper, entries, mean probability, share of those answers that are right
    calibration: Dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)


def calibration_error(buckets: pd.DataFrame) -> Optional[float]:
    """Expected calibration error of a reliability table: sum over buckets of |share of true labels -
    mean probability|, weighted by entries (the top-label ECE, as the Trainer computes it on eval)."""
    total = buckets["entries"].sum()
    if not total:
        return None
    return float((buckets["entries"] * (buckets["true share"] - buckets["mean probability"]).abs()).sum() / total)


def failure_reason(failure) -> str:
    """Why a TFMA threshold failed, in words (TFMA 0.47 leaves the failure's own message empty)."""
    value = failure.metric_value.double_value.value
    if failure.metric_key.is_diff:
        return f"{failure.metric_key.name} {value:+.4f} against the baseline (must not drop)"
    if failure.metric_threshold.HasField("value_threshold"):
        floor = failure.metric_threshold.value_threshold.lower_bound.value
        return f"{failure.metric_key.name} {value:.4f} is below the floor {floor:.4f}"
    return failure.message or str(failure.metric_key)


def load_evaluation(evaluation_uri: str) -> Evaluation:
    """The Evaluator's output read with TFMA's loaders."""
    import tensorflow_model_analysis as tfma

    metrics = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        name = slice_name(per_slice.slice_key)
        row = metrics.setdefault(name, {})
        for kv in per_slice.metric_keys_and_values:
            if not kv.value.HasField("double_value"):
                continue
            key, value = kv.key, kv.value.double_value.value
            baseline = key.model_name == "baseline"
            if key.name == EXAMPLE_COUNT and not baseline and not key.is_diff:
                row["examples"] = int(value)
            elif key.name == ACCURACY:
                column = "accuracy change" if key.is_diff else "baseline accuracy" if baseline else "accuracy"
                row[column] = value
    confusion, calibration = {}, {}
    for per_slice in tfma.load_plots(evaluation_uri):
        for kv in per_slice.plot_keys_and_values:
            if kv.key.model_name == "baseline":
                continue
            if kv.value.HasField("calibration_histogram_buckets") and kv.key.sub_key.k.value == TOP_LABEL:
                calibration[slice_name(per_slice.slice_key)] = _reliability(kv.value.calibration_histogram_buckets)
                continue
            if not kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                continue
            matrices = kv.value.multi_class_confusion_matrix_at_thresholds.matrices
            argmax = min(matrices, key=lambda m: abs(m.threshold))  # threshold 0: the top prediction
            counts = np.zeros((dc.NUM_CLASSES, dc.NUM_CLASSES))
            for entry in argmax.entries:
                if 0 <= entry.predicted_class_id < dc.NUM_CLASSES:
                    counts[entry.actual_class_id, entry.predicted_class_id] += entry.num_weighted_examples
            frame = pd.DataFrame(counts.astype(int), index=pd.Index(dc.EMOTIONS, name="true"),
                                 columns=pd.Index(dc.EMOTIONS, name="predicted"))
            confusion[slice_name(per_slice.slice_key)] = frame
    validation = tfma.load_validation_result(evaluation_uri)
    failures = [f"{slice_name(v.slice_key)}: {failure_reason(f)}" for v in validation.metric_validations_per_slice
                for f in v.failures]

    def frame(rows, columns=None):
        ordered = sorted(rows, key=slice_order)
        return pd.DataFrame([rows[n] for n in ordered], index=pd.Index(ordered, name="slice"), columns=columns)

    metric_columns = [c for c in ("examples", "accuracy", "baseline accuracy", "accuracy change")
                      if any(c in r for r in metrics.values())]
    return Evaluation(frame(metrics, metric_columns), confusion, validation.validation_ok, failures, calibration)


def _reliability(histogram) -> pd.DataFrame:
    """TFMA's calibration buckets (an underflow and an overflow bucket around the [0, 1] ones) as a table."""
    rows = []
    for bucket in histogram.buckets:
        n = bucket.num_weighted_examples.value
        if not n or not (0.0 <= bucket.lower_threshold_inclusive < 1.0):
            continue
        rows.append({"lower": bucket.lower_threshold_inclusive, "upper": min(bucket.upper_threshold_exclusive, 1.0),
                     "entries": n, "mean probability": bucket.total_weighted_refined_prediction.value / n,
                     "true share": bucket.total_weighted_label.value / n})
    return pd.DataFrame(rows, columns=["lower", "upper", "entries", "mean probability", "true share"])


def top_prediction_scores(confusion: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of each class when the top prediction counts (from a confusion matrix)."""
    hits = pd.Series(np.diag(confusion.values), index=confusion.index)
    predicted, actual = confusion.sum(axis=0).values, confusion.sum(axis=1).values
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({"precision": np.where(predicted > 0, hits / predicted, np.nan),
                             "recall": np.where(actual > 0, hits / actual, np.nan)}, index=confusion.index)


def by_slice(evaluation: Evaluation, score: str) -> pd.DataFrame:
    """One top-prediction score ("precision" or "recall") per slice and class."""
    names = sorted(evaluation.confusion, key=slice_order)
    return pd.DataFrame([top_prediction_scores(evaluation.confusion[n])[score] for n in names],
                        index=pd.Index(names, name="slice"))
