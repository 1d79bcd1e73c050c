"""Skew/drift comparisons on hand-made statistics: the comparator kinds, the thresholds, the values."""
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

from contract import data as dc
from deep_emotion.report import data_validation as dv
from pipeline import configs


def _statistics(sources: dict, emotions: dict, categorical_emotion: bool = True):
    """DatasetFeatureStatisticsList with value counts for source (and emotion) and a pixel histogram."""
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = stats.datasets.add(num_examples=sum(sources.values()))

    def categorical(name, counts):
        feature = dataset.features.add(type=statistics_pb2.FeatureNameStatistics.STRING)
        feature.path.step.append(name)
        feature.string_stats.common_stats.num_non_missing = sum(counts.values())
        feature.string_stats.unique = len(counts)
        for rank, (value, count) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1])):
            feature.string_stats.rank_histogram.buckets.add(low_rank=rank, high_rank=rank, label=str(value),
                                                            sample_count=count)

    categorical(dc.SOURCE, sources)
    if categorical_emotion:
        categorical(dc.LABEL, emotions)
    else:
        feature = dataset.features.add(type=statistics_pb2.FeatureNameStatistics.INT)
        feature.path.step.append(dc.LABEL)
        feature.num_stats.common_stats.num_non_missing = sum(emotions.values())
        histogram = feature.num_stats.histograms.add(type=statistics_pb2.Histogram.STANDARD)
        for value, count in sorted(emotions.items()):
            histogram.buckets.add(low_value=value, high_value=value + 1, sample_count=count)
    pixels = dataset.features.add(type=statistics_pb2.FeatureNameStatistics.INT)
    pixels.path.step.append(dc.PIXELS)
    pixels.num_stats.common_stats.num_non_missing = dataset.num_examples
    histogram = pixels.num_stats.histograms.add(type=statistics_pb2.Histogram.STANDARD)
    for low in range(0, 256, 64):
        histogram.buckets.add(low_value=low, high_value=low + 64, sample_count=100)
    return stats


def test_comparator_kind_follows_the_statistics_and_thresholds_come_from_the_schema():
    schema = tfdv.load_schema_text(configs.SCHEMA_PATH)
    tfdv.get_feature(schema, dc.SOURCE).drift_comparator.infinity_norm.threshold = 0.25
    stats = _statistics({"fer2013": 10}, {0: 5, 1: 5})
    before = schema.SerializeToString()
    with_comparators, notes = dv.schema_with_comparators(schema, stats)
    source, emotion, pixels = (tfdv.get_feature(with_comparators, n) for n in (dc.SOURCE, dc.LABEL, dc.PIXELS))
    assert source.drift_comparator.infinity_norm.threshold == 0.25  # the schema's own
    assert source.skew_comparator.infinity_norm.threshold == dv.DEFAULT_L_INFINITY
    assert emotion.skew_comparator.infinity_norm.threshold == dv.DEFAULT_L_INFINITY
    assert pixels.drift_comparator.jensen_shannon_divergence.threshold == dv.DEFAULT_JENSEN_SHANNON
    assert notes == [] and schema.SerializeToString() == before  # the caller's schema is untouched

    numeric, notes = dv.schema_with_comparators(schema, _statistics({"fer2013": 10}, {0: 5, 1: 5}, False))
    assert tfdv.get_feature(numeric, dc.LABEL).drift_comparator.HasField("jensen_shannon_divergence")
    assert "Jensen-Shannon" in notes[0]


def test_drift_is_the_largest_change_of_a_share_and_is_reported_above_its_threshold():
    schema = tfdv.load_schema_text(configs.SCHEMA_PATH)
    previous = {"train": _statistics({"fer2013": 80, "jaffe": 20}, {0: 50, 1: 50})}
    current = {"train": _statistics({"fer2013": 50, "jaffe": 50}, {0: 45, 1: 55})}
    result = dv.compare(current, schema, previous)
    values = {row.feature: row for row in result.measurements.itertuples()}
    assert values[dc.SOURCE].value == pytest.approx(0.3) and values[dc.SOURCE].verdict == "ABOVE"
    assert values[dc.LABEL].value == pytest.approx(0.05) and values[dc.LABEL].verdict == "within"
    assert values[dc.PIXELS].value == pytest.approx(0.0)
    assert [(f.split, f.feature) for f in result.findings] == [("train: previous run vs this run (drift)", dc.SOURCE)]
