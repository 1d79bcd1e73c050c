"""Dataset-validation sections: TFDV statistics side by side, the schema, ExampleValidator's
anomalies, classes per split and source, sample faces, pixel intensities, and skew between
splits / drift since the previous run measured with TFDV's comparators."""
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from components.data_gate import anomalies_report
from contract import data as dc
from deep_emotion.report import examples as examples_lib
from deep_emotion.report import plots
from deep_emotion.report.artifacts import RunArtifacts
from deep_emotion.report.render import Plot, Section, Table, Text

STATISTICS_FILE = "FeatureStats.pb"  # StatisticsGen's per-split binary DatasetFeatureStatisticsList

# Comparator thresholds used where the curated schema sets none (schema/schema.pbtxt may carry its own).
# L-infinity: the largest change of one value's share (0.1 = a class or source moves by 10 points).
# Jensen-Shannon: divergence of the pixel-intensity histograms (0 same, 1 disjoint).
DEFAULT_L_INFINITY = 0.1
DEFAULT_JENSEN_SHANNON = 0.05
COMPARED_FEATURES = (dc.LABEL, dc.SOURCE, dc.PIXELS)
SKEW_PAIRS = (("train", "eval"), ("train", "test"))


# --- Loading -----------------------------------------------------------------------------------------

def available_splits(uri: str, splits: Sequence[str] = dc.SPLITS) -> List[str]:
    return [s for s in splits if os.path.isdir(os.path.join(uri, f"Split-{s}"))]


def load_statistics(statistics_uri: str):
    """{split: DatasetFeatureStatisticsList} of a StatisticsGen artifact."""
    import tensorflow_data_validation as tfdv

    return {split: tfdv.load_stats_binary(os.path.join(statistics_uri, f"Split-{split}", STATISTICS_FILE))
            for split in available_splits(statistics_uri)}


def load_schema(schema_uri: str):
    import tensorflow_data_validation as tfdv

    return tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))


# --- Tables ------------------------------------------------------------------------------------------

def _feature_stats(stats_list) -> Dict[str, object]:
    return {".".join(f.path.step) or f.name: f for f in stats_list.datasets[0].features}


def is_categorical(feature_stats) -> bool:
    """TFDV computes string statistics (value counts) for strings and for ints the schema marks
    categorical, numeric statistics (histograms) otherwise."""
    return feature_stats.WhichOneof("stats") == "string_stats"


def statistics_table(stats_by_split) -> pd.DataFrame:
    """Each feature's TFDV statistics, one column per split (index: feature, statistic)."""
    columns = {}
    for split, stats_list in stats_by_split.items():
        column = {("(dataset)", "examples"): stats_list.datasets[0].num_examples}
        for name, f in sorted(_feature_stats(stats_list).items()):
            if is_categorical(f):
                s = f.string_stats
                top = s.top_values[0] if s.top_values else None
                column.update({
                    (name, "present in"): s.common_stats.num_non_missing,
                    (name, "missing"): s.common_stats.num_missing,
                    (name, "unique values"): s.unique,
                    (name, "most frequent"): f"{top.value or '(empty)'} ({int(top.frequency)})" if top else "",
                    (name, "avg length"): s.avg_length,
                })
            else:
                s = f.num_stats
                column.update({
                    (name, "present in"): s.common_stats.num_non_missing,
                    (name, "missing"): s.common_stats.num_missing,
                    (name, "values per example"): s.common_stats.avg_num_values,
                    (name, "mean"): s.mean,
                    (name, "std dev"): s.std_dev,
                    (name, "zeros"): s.num_zeros,
                    (name, "min"): s.min,
                    (name, "median"): s.median,
                    (name, "max"): s.max,
                })
        columns[split] = column
    table = pd.DataFrame(columns)
    table.index.names = ["feature", "statistic"]
    return table


def schema_tables(schema) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(features, string domains) as TFDV's display_schema shows them, plus what each feature must satisfy."""
    from tensorflow_data_validation.utils import display_util

    features, domains = display_util.get_schema_dataframe(schema)
    features["Requirement"] = [anomalies_report.expectation(schema, f.name) for f in schema.feature]
    return features, domains


def findings_table(findings: Sequence[anomalies_report.Finding]) -> pd.DataFrame:
    return pd.DataFrame([{"split": f.split, "feature": f.feature, "found": f.found, "expected": f.expected}
                         for f in findings], columns=["split", "feature", "found", "expected"])


# --- Skew and drift (TFDV comparators) ---------------------------------------------------------------

@dataclass
class Comparisons:
    measurements: pd.DataFrame                  # comparison, feature, measure, value, threshold, verdict
    findings: List[anomalies_report.Finding]    # the comparator anomalies, in TFDV's words
    notes: List[str]


_MEASURE_NAMES = {"L_INFTY": "L-infinity", "JENSEN_SHANNON_DIVERGENCE": "Jensen-Shannon"}


def schema_with_comparators(schema, stats_list):
    """A copy of the schema with a skew and a drift comparator on emotion, source and pixels.

    Thresholds: the schema's own where it has the comparator, else the defaults above. The kind
    follows the statistics: L-infinity for categorical ones, Jensen-Shannon for histograms
    (TFDV's L-infinity silently measures 0 on numeric statistics: an `emotion` computed without
    the schema is numeric). Returns (schema, notes).
    """
    import tensorflow_data_validation as tfdv

    schema_copy = type(schema)()
    schema_copy.CopyFrom(schema)
    features = _feature_stats(stats_list)
    notes = []
    for name in COMPARED_FEATURES:
        if name not in features:
            notes.append(f"'{name}' has no statistics: not compared.")
            continue
        feature = tfdv.get_feature(schema_copy, name)
        categorical = is_categorical(features[name])
        if name == dc.LABEL and not categorical:
            notes.append(f"'{name}' was summarised as numbers (StatisticsGen ran without the schema), so it is "
                         f"compared by its histogram (Jensen-Shannon) instead of its class shares (L-infinity).")
        for comparator in (feature.skew_comparator, feature.drift_comparator):
            if categorical:
                threshold = (comparator.infinity_norm.threshold if comparator.HasField("infinity_norm")
                             else DEFAULT_L_INFINITY)
                comparator.Clear()
                comparator.infinity_norm.threshold = threshold
            else:
                threshold = (comparator.jensen_shannon_divergence.threshold
                             if comparator.HasField("jensen_shannon_divergence") else DEFAULT_JENSEN_SHANNON)
                comparator.Clear()
                comparator.jensen_shannon_divergence.threshold = threshold
    return schema_copy, notes


def compare(stats_by_split, schema, previous_stats_by_split=None) -> Comparisons:
    """Skew: train against eval and test. Drift: each split against the previous run's same split."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    comparator_schema, notes = schema_with_comparators(schema, stats_by_split.get("train") or
                                                       next(iter(stats_by_split.values())))
    rows, findings = [], []

    def record(label: str, anomalies, kind: str):
        for info in anomalies.drift_skew_info:
            for m in (info.skew_measurements if kind == "skew" else info.drift_measurements):
                measure = _MEASURE_NAMES.get(anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type), str(m.type))
                rows.append({"comparison": label, "feature": ".".join(info.path.step), "measure": measure,
                             "value": m.value, "threshold": m.threshold,
                             "verdict": "ABOVE" if m.value > m.threshold else "within"})
        for feature, info in sorted(anomalies.anomaly_info.items()):
            for reason in info.reason:
                if anomalies_pb2.AnomalyInfo.Type.Name(reason.type).startswith("COMPARATOR_"):
                    findings.append(anomalies_report.Finding(label, feature, "within the threshold",
                                                             reason.description))

    for baseline, other in SKEW_PAIRS:
        if baseline in stats_by_split and other in stats_by_split:
            record(f"{baseline} vs {other} (skew)", tfdv.validate_statistics(
                stats_by_split[baseline], comparator_schema, serving_statistics=stats_by_split[other]), "skew")
    for split, stats_list in stats_by_split.items():
        if previous_stats_by_split and split in previous_stats_by_split:
            record(f"{split}: previous run vs this run (drift)", tfdv.validate_statistics(
                stats_list, comparator_schema, previous_statistics=previous_stats_by_split[split]), "drift")
    columns = ["comparison", "feature", "measure", "value", "threshold", "verdict"]
    return Comparisons(pd.DataFrame(rows, columns=columns), findings, notes)


def examples_per_split(stats_by_split, previous_stats_by_split) -> pd.DataFrame:
    def count(stats, split):
        return stats[split].datasets[0].num_examples if split in stats else None

    splits = list(dict.fromkeys([*previous_stats_by_split, *stats_by_split]))
    table = pd.DataFrame({"previous run": [count(previous_stats_by_split, s) for s in splits],
                          "this run": [count(stats_by_split, s) for s in splits]},
                         index=pd.Index(splits, name="split"), dtype="Int64")
    table["change"] = table["this run"] - table["previous run"]
    return table


# --- Sections ----------------------------------------------------------------------------------------

def ingested_data(examples_uri: str) -> Optional[str]:
    """'Data: span 2 (span-2/) of /data/faces, 1234 examples.', from the ExampleGen's ingestion summary."""
    import tensorflow as tf

    from components.example_gen import spans
    from components.example_gen.executor import SUMMARY_FILE

    path = os.path.join(examples_uri, SUMMARY_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        summary = json.load(f)
    read = spans.describe(spans.from_json(json.dumps(summary.get("spans", []))))
    return f"Data: {read} of {summary['data_root']}, {summary['examples']['total']} examples."


def run_overview(run: RunArtifacts) -> Section:
    blocks = [Text(f"Report on {run.describe()}.")]
    data = ingested_data(run.examples) if run.examples else None
    if data:
        blocks.append(Text(data, "note"))
    if run.states:
        states = pd.DataFrame({"node": list(run.states), "state": list(run.states.values())})
        blocks.append(Table("node-states", states, "Each component's execution in this run (ML Metadata).",
                           index=False, text=True))
        failed = [n for n, s in run.states.items() if s not in ("COMPLETE", "CACHED")]
        if failed:
            blocks.append(Text(f"Not completed: {', '.join(failed)}. Sections that need their outputs say so.",
                               "alert"))
    else:
        blocks.append(Text("Located by scanning the pipeline root without ML Metadata: each artifact is the "
                           "newest of its kind, which may mix runs if the latest one stopped early.", "note"))
    artifacts = pd.DataFrame({"artifact": list(run.uris), "uri": [u or "(not produced)" for u in run.uris.values()]})
    blocks.append(Table("artifact-uris", artifacts, "Artifacts read for this report.", index=False, text=True))
    if run.blessed is not None:
        blocks.append(Text(f"Evaluator verdict: {'BLESSED' if run.blessed else 'NOT BLESSED'}.",
                           "note" if run.blessed else "alert"))
    return Section("run", "Run", blocks)


def _missing(section_id: str, title: str, what: str) -> Section:
    return Section(section_id, title, [Text(f"Not available: this run produced no {what}.", "alert")])


def statistics_section(run: RunArtifacts, stats_by_split=None) -> Section:
    title = "Statistics per split (TFDV)"
    if not run.statistics:
        return _missing("statistics", title, "statistics (StatisticsGen)")
    stats_by_split = stats_by_split or load_statistics(run.statistics)
    return Section("statistics", title, [
        Text(f"StatisticsGen's statistics ({run.statistics}), train / eval / test side by side."),
        Table("statistics-table", statistics_table(stats_by_split))])


def schema_section(run: RunArtifacts, schema=None) -> Section:
    title = "Schema"
    if not run.schema:
        return _missing("schema", title, "schema (ImportSchemaGen)")
    features, domains = schema_tables(schema or load_schema(run.schema))
    return Section("schema", title, [
        Text(f"The curated schema every split is validated against ({run.schema}; source: schema/schema.pbtxt)."),
        Table("schema-features", features, text=True),
        Table("schema-domains", domains, "String domains.", text=True)])


def anomalies_section(run: RunArtifacts, schema=None) -> Section:
    title = "Anomalies (ExampleValidator)"
    if not run.anomalies or not run.schema:
        return _missing("anomalies", title, "anomalies (ExampleValidator)")
    schema = schema or load_schema(run.schema)
    splits = available_splits(run.anomalies)
    findings = anomalies_report.load_findings(run.anomalies, splits, schema)
    if not findings:
        verdict = Text(f"No anomalies in {', '.join(splits)}: every split matches the schema.", "note")
    else:
        verdict = Text(anomalies_report.format_findings(findings, run.anomalies), "alert")
    return Section("anomalies", title,
                   [verdict, Table("anomalies-table", findings_table(findings), index=False, text=True)])


def examples_sections(run: RunArtifacts, overview: Optional[examples_lib.ExamplesOverview] = None) -> List[Section]:
    """Class counts, sample faces and pixel intensities: one pass over the examples."""
    titles = {"class-counts": "Classes per split and source", "samples": "Sample faces per class",
              "pixels": "Pixel intensities"}
    if not run.examples:
        return [_missing(i, t, "examples (ExampleGen)") for i, t in titles.items()]
    overview = overview or examples_lib.overview(run.examples)
    per_split = examples_lib.totals_by_split(overview.counts)
    counts = Section("class-counts", titles["class-counts"], [
        Table("class-counts-by-split", per_split, "Examples per class and split, all sources."),
        Table("class-counts-by-source", overview.counts, "Examples per class, split and source."),
        Plot.of("class-counts-plot", plots.class_distribution(per_split), "Share of each class per split.")])
    samples = Section("samples", titles["samples"], [
        Plot.of("samples-grid", plots.faces_grid(overview.samples),
                "Train split; faces taken in turn from each source that has the class (source under each face).")])
    pixels = Section("pixels", titles["pixels"], [
        Plot.of("pixel-histograms", plots.pixel_histograms(overview.pixel_histograms),
                "Share of pixels at each intensity, per split and per source.")])
    return [counts, samples, pixels]


def face_crops_section(run: RunArtifacts) -> Section:
    """For uncropped datasets (whole frames that went through the face stage): source frames with
    the detector's box and the crop square, beside the crop."""
    title = "Faces found in uncropped images"
    if not run.examples:
        return _missing("face-crops", title, "examples (ExampleGen)")
    import json

    import tensorflow as tf

    from components.example_gen import files
    from faces import crop
    from faces.detect import Face as DetectedFace

    picked = examples_lib.face_cropped(run.examples)
    if not picked:
        return Section("face-crops", title, [Text("No example of this run went through the face stage (face_crop "
                                                  "covers the original CK+ frames by default).", "note")])
    with tf.io.gfile.GFile(f"{run.examples}/ingest_summary.json") as f:
        data_root = json.load(f)["data_root"]
    frames, squares = [], []
    for face, box in picked:
        try:
            with files.open_binary(f"{data_root}/{face.image_id}") as stream:
                from PIL import Image

                frames.append(np.asarray(Image.open(stream).convert("L")))
        except (OSError, ValueError):
            frames.append(None)
        cx, cy, side = crop.crop_box(DetectedFace(tuple(box), 1.0, ((0, 0), (1, 0))))
        squares.append((cx - side / 2, cy - side / 2, side, side))
    return Section("face-crops", title, [
        Text(f"Images whose face the face stage found and cut to FER2013's framing at ingestion (data root "
             f"{data_root}); orange: the detector's box, blue: the crop square (before levelling the eyes)."),
        Plot.of("face-crops-grid", plots.frames_with_boxes(
            frames, [b for _, b in picked], squares, [f.pixels for f, _ in picked],
            [f"{f.image_id} ({dc.EMOTIONS[f.emotion]})" for f, _ in picked]))])


def comparisons_section(run: RunArtifacts, stats_by_split=None, schema=None) -> Section:
    title = "Skew between splits, drift since the previous run"
    if not run.statistics or not run.schema:
        return _missing("drift-skew", title, "statistics or schema")
    stats_by_split = stats_by_split or load_statistics(run.statistics)
    previous = load_statistics(run.previous_statistics) if run.previous_statistics else None
    result = compare(stats_by_split, schema or load_schema(run.schema), previous)
    blocks = [Text("TFDV's comparators (tfdv.validate_statistics with serving_statistics for skew between splits, "
                   "previous_statistics for drift). Thresholds come from the schema, else L-infinity "
                   f"{DEFAULT_L_INFINITY} for categorical features and Jensen-Shannon {DEFAULT_JENSEN_SHANNON} "
                   "for histograms.")]
    if previous is None:
        blocks.append(Text("No previous run with statistics: drift is not measured.", "note"))
    elif run.previous_statistics == run.statistics:
        blocks.append(Text(f"The previous run ({run.previous_run_id}) used the same statistics artifact "
                           f"(reused from the cache): the data has not changed.", "note"))
    else:
        blocks.append(Text(f"Previous run: {run.previous_run_id} ({run.previous_statistics}).", "note"))
    blocks += [Text(n, "note") for n in result.notes]
    if previous is not None:
        blocks.append(Table("examples-vs-previous", examples_per_split(stats_by_split, previous),
                            "Examples per split, previous run and this run."))
    blocks.append(Table("comparisons-table", result.measurements, index=False))
    if result.findings:
        blocks.append(Text(f"{len(result.findings)} comparison(s) above threshold:", "alert"))
        blocks.append(Table("comparison-findings", findings_table(result.findings).rename(
            columns={"split": "comparison"}).drop(columns="expected"), index=False, text=True))
    else:
        blocks.append(Text("All comparisons within their thresholds.", "note"))
    return Section("drift-skew", title, blocks)


def data_sections(run: RunArtifacts) -> List[Section]:
    """Every data-validation section, loading each artifact once."""
    stats = load_statistics(run.statistics) if run.statistics else None
    schema = load_schema(run.schema) if run.schema else None
    return [run_overview(run), statistics_section(run, stats), schema_section(run, schema),
            anomalies_section(run, schema), *examples_sections(run), face_crops_section(run),
            comparisons_section(run, stats, schema)]
