"""`deep-emotion report`: one offline HTML file whose numbers are the artifacts' numbers."""
import base64
import collections
import glob
import io
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from click.testing import CliRunner
from PIL import Image
from tensorflow_metadata.proto.v0 import anomalies_pb2

from contract import data as dc
from deep_emotion.report import artifacts
from deep_emotion.cli.report import command as report
from tests.report import html_tables

SECTIONS = ["run", "statistics", "schema", "anomalies", "class-counts", "samples", "pixels", "face-crops", "drift-skew",
            "metrics", "confusion-matrix", "per-class", "calibration", "misclassified", "attention", "model-card"]
PLOTS = ["class-counts-plot", "samples-grid", "pixel-histograms", "face-crops-grid", "confusion-matrix-plot", "per-class-plot",
         "calibration-plot", "misclassified-grid", "attention-grid"]


def _write_report(tmp_path_factory, report_runs, *extra):
    out = tmp_path_factory.mktemp("html") / "report.html"
    result = CliRunner().invoke(report, ["--metadata-path", report_runs.metadata_path,
                                         "--pipeline-name", report_runs.sandbox.name, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(tmp_path_factory, report_runs):
    return _write_report(tmp_path_factory, report_runs)


@pytest.fixture(scope="module")
def soup(page):
    return html_tables.parse(page)


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _examples(run, split):
    """(source, emotion) of every example of a split, read straight from ExampleGen's records."""
    uri = run.nodes["DeepEmotionExampleGen"].output("examples").uri
    spec = {dc.LABEL: tf.io.FixedLenFeature([], tf.int64), dc.SOURCE: tf.io.FixedLenFeature([], tf.string)}
    files = glob.glob(os.path.join(uri, f"Split-{split}", "*"))
    pairs = []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(256):
        parsed = tf.io.parse_example(batch, spec)
        pairs += zip(parsed[dc.SOURCE].numpy().astype(str), parsed[dc.LABEL].numpy().tolist())
    return pairs


def test_every_section_is_there_and_nothing_loads_from_elsewhere(soup, page):
    assert [s["id"] for s in soup.find_all("section")] == SECTIONS
    assert [a["href"] for a in soup.nav.find_all("a")] == [f"#{s}" for s in SECTIONS]
    assert soup.find_all(["script", "link", "iframe"]) == []
    external = [t for t in soup.find_all(src=True) + soup.find_all(href=True)
                if re.match(r"(https?:)?//", t.get("src") or t.get("href"))]
    assert external == []
    assert "Not available" not in page  # the complete run has every artifact


def test_the_run_section_says_which_data_was_ingested(soup, report_runs):
    run_section = soup.find("section", id="run").get_text(" ")
    examples = report_runs.complete.nodes["DeepEmotionExampleGen"].output("examples")
    total = examples.custom_properties["num_examples"].int_value
    assert "Data: the whole data root (no span folders) of " in run_section and f", {total} examples." in run_section


def test_plots_are_embedded_png_images(soup):
    figures = {f["id"]: f.img["src"] for f in soup.find_all("figure")}
    assert sorted(figures) == sorted(PLOTS)
    for figure_id, src in figures.items():
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), figure_id
        image = Image.open(io.BytesIO(base64.b64decode(src[len(prefix):])))
        assert image.format == "PNG" and min(image.size) > 100, (figure_id, image.size)


def test_statistics_and_class_counts_equal_the_artifacts(soup, report_runs):
    run = report_runs.complete
    statistics_uri = run.nodes["StatisticsGen"].output("statistics").uri
    table = html_tables.records(soup, "statistics-table", index_levels=2)
    counted = collections.Counter()
    for split in dc.SPLITS:
        stats = tfdv.load_stats_binary(os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")).datasets[0]
        pixels = next(f for f in stats.features if f.path.step == [dc.PIXELS])
        assert int(table["(dataset)", "examples"][split]) == stats.num_examples
        assert _number(table[dc.PIXELS, "mean"][split]) == pytest.approx(pixels.num_stats.mean, abs=1e-4)
        assert _number(table[dc.PIXELS, "std dev"][split]) == pytest.approx(pixels.num_stats.std_dev, abs=1e-4)
        counted.update((split, source, emotion) for source, emotion in _examples(run, split))

    by_source = html_tables.records(soup, "class-counts-by-source", index_levels=2)
    reported = {(split, source, e): int(row[dc.EMOTIONS[e]])
                for (split, source), row in by_source.items() for e in range(dc.NUM_CLASSES)}
    assert {k: v for k, v in reported.items() if v} == dict(counted)
    by_split = html_tables.records(soup, "class-counts-by-split")
    for split in dc.SPLITS:
        assert int(by_split[(split,)]["total"]) == sum(n for (s, _, _), n in counted.items() if s == split)


def test_drift_since_the_previous_run_is_the_change_in_source_shares(soup, report_runs):
    # Run 1 had FER2013 only; run 2 all four sources: L-infinity = the largest change of a source's share.
    def shares(run):
        sources = collections.Counter(source for source, _ in _examples(run, "train"))
        return {s: n / sum(sources.values()) for s, n in sources.items()}

    before, after = shares(report_runs.stopped), shares(report_runs.complete)
    expected = max(abs(before.get(s, 0) - after.get(s, 0)) for s in set(before) | set(after))
    comparisons = {(r[0], r[1]): r for r in html_tables.rows(soup, "comparisons-table")}
    drift = comparisons["train: previous run vs this run (drift)", dc.SOURCE]
    assert drift[2] == "L-infinity"
    assert _number(drift[3]) == pytest.approx(expected, abs=1e-4)
    assert expected > _number(drift[4]) and drift[5] == "ABOVE"
    sizes = html_tables.records(soup, "examples-vs-previous")
    for split in dc.SPLITS:
        assert int(sizes[(split,)]["previous run"]) == len(_examples(report_runs.stopped, split))
        assert int(sizes[(split,)]["this run"]) == len(_examples(report_runs.complete, split))
    findings = html_tables.rows(soup, "comparison-findings")
    assert ["train: previous run vs this run (drift)", dc.SOURCE] in [f[:2] for f in findings]
    # every split is compared with train for skew, and with its previous self for drift
    assert {c for c, _ in comparisons} == {"train vs eval (skew)", "train vs test (skew)",
                                           *(f"{s}: previous run vs this run (drift)" for s in dc.SPLITS)}


def test_model_numbers_equal_the_evaluation(soup, page, report_runs):
    evaluation_uri = report_runs.complete.nodes["Evaluator"].output("evaluation").uri
    expected = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        keys = per_slice.slice_key.single_slice_keys
        name = f"source={keys[0].bytes_value.decode()}" if keys else "Overall"
        for kv in per_slice.metric_keys_and_values:
            if kv.key.is_diff or kv.key.model_name == "baseline":
                continue
            if kv.key.name in ("sparse_categorical_accuracy", "example_count"):
                expected.setdefault(name, {})[kv.key.name] = kv.value.double_value.value
    metrics = html_tables.records(soup, "metrics-table")
    assert sorted(n for (n,) in metrics) == sorted(expected)
    for (name,), row in metrics.items():
        assert _number(row["accuracy"]) == pytest.approx(expected[name]["sparse_categorical_accuracy"], abs=1e-4)
        assert int(row["examples"]) == expected[name]["example_count"]

    confusion_rows = html_tables.rows(soup, "confusion-matrix-table")
    assert [r[0] for r in confusion_rows] == list(dc.EMOTIONS)
    assert html_tables.header(soup, "confusion-matrix-table")[1:] == list(dc.EMOTIONS)
    assert soup.find(id="confusion-matrix-table").thead.find_all("tr")[1].th.get_text() == "true"
    matrix = np.array([[int(c) for c in r[1:]] for r in confusion_rows])
    eval_examples = len(_examples(report_runs.complete, "eval"))
    assert matrix.shape == (dc.NUM_CLASSES, dc.NUM_CLASSES) and matrix.sum() == eval_examples
    accuracy = expected["Overall"]["sparse_categorical_accuracy"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(accuracy, abs=1e-6)
    per_class = html_tables.records(soup, "per-class-table")
    for e, name in enumerate(dc.EMOTIONS):
        row = per_class[(name,)]
        assert int(row["examples"]) == matrix[e].sum() and int(row["predicted"]) == matrix[:, e].sum()
        if matrix[e].sum():
            assert _number(row["recall"]) == pytest.approx(matrix[e, e] / matrix[e].sum(), abs=1e-4)
        if matrix[:, e].sum():
            assert _number(row["precision"]) == pytest.approx(matrix[e, e] / matrix[:, e].sum(), abs=1e-4)
    assert html_tables.header(soup, "per-class-table")[1:] == ["precision", "recall", "examples", "predicted"]
    for score in ("precision", "recall"):  # by slice: one row per slice of the metrics table, Overall's as above
        by_slice = html_tables.records(soup, f"{score}-by-source")
        assert sorted(by_slice) == sorted(metrics)
        assert by_slice[("Overall",)] == {name: per_class[(name,)][score] for name in dc.EMOTIONS}
    # The serving signature's mistakes on the eval split are the confusion matrix's off-diagonal.
    wrong = re.search(r"(\d+) of (\d+) eval examples misclassified", page)
    assert (int(wrong.group(1)), int(wrong.group(2))) == (matrix.sum() - np.trace(matrix), eval_examples)


def test_attention_view_shows_each_class_of_the_eval_split(soup, report_runs):
    per_class = collections.Counter(e for _, e in _examples(report_runs.complete, "eval"))
    thetas = html_tables.rows(soup, "attention-theta")
    assert collections.Counter(r[0] for r in thetas) == {dc.EMOTIONS[e]: min(n, 2) for e, n in per_class.items()}
    assert all(len(r) == 7 for r in thetas)


def test_report_of_a_run_the_data_gate_stopped_lists_the_anomalies(tmp_path_factory, report_runs):
    run = report_runs.stopped
    soup = html_tables.parse(_write_report(tmp_path_factory, report_runs, "--run-id", run.run_id))
    anomalies_uri = run.nodes["ExampleValidator"].output("anomalies").uri
    expected = set()
    for split in dc.SPLITS:
        with open(os.path.join(anomalies_uri, f"Split-{split}", "SchemaDiff.pb"), "rb") as f:
            anomalies = anomalies_pb2.Anomalies.FromString(f.read())
        expected |= {(split, feature) for feature in anomalies.anomaly_info}
        if anomalies.HasField("dataset_anomaly_info") or anomalies.data_missing:
            expected.add((split, "(dataset)"))
    assert ("train", dc.LABEL) in expected  # neutral (6) is outside the stricter schema's 0..5
    assert {(r[0], r[1]) for r in html_tables.rows(soup, "anomalies-table")} == expected
    assert [s["id"] for s in soup.find_all("section")] == SECTIONS
    for section in ["metrics", "confusion-matrix", "per-class", "calibration", "misclassified", "attention",
                    "model-card"]:
        assert "Not available" in soup.find("section", id=section).get_text()
    assert "DataGate" in soup.find("section", id="run").find(class_="alert").get_text()


def test_pipeline_root_scan_finds_the_newest_artifacts(report_runs):
    scanned = artifacts.locate(pipeline_root=str(report_runs.sandbox.pipeline_root))
    from_metadata = artifacts.locate(report_runs.metadata_path, report_runs.sandbox.name)
    for name in ("examples", "statistics", "anomalies", "model", "model_run", "evaluation"):
        assert getattr(scanned, name) == getattr(from_metadata, name), name
    assert scanned.previous_statistics == report_runs.stopped.nodes["StatisticsGen"].output("statistics").uri
    assert scanned.blessed == from_metadata.blessed


def test_unknown_metadata_or_run_is_an_error_that_names_it(tmp_path, report_runs):
    missing = tmp_path / "nothing.db"
    result = CliRunner().invoke(report, ["--metadata-path", str(missing), "--out", str(tmp_path / "r.html")])
    assert result.exit_code != 0 and str(missing) in result.output
    result = CliRunner().invoke(report, ["--metadata-path", report_runs.metadata_path, "--pipeline-name",
                                         report_runs.sandbox.name, "--run-id", "no-such-run"])
    assert result.exit_code != 0 and "no-such-run" in result.output and report_runs.complete.run_id in result.output
    assert not (tmp_path / "r.html").exists()


def test_calibration_and_the_model_card_are_the_runs_own(soup, report_runs):
    from contract import training_record

    run = report_runs.complete
    record = training_record.read(run.nodes["Trainer"].output("model_run").uri)
    calibration = soup.find("section", id="calibration").get_text()
    assert f"temperature of {record['calibration']['temperature']:.3f}" in calibration
    assert f"{record['calibration']['ece_before']:.4f} before, {record['calibration']['ece_after']:.4f} after" in calibration
    # TFMA's plot is of the same top-label confidence, through the served signature on the same split:
    # its calibration error is the Trainer's ECE after scaling, measured again.
    tfma_error = float(re.search(r"is right; calibration error (\d\.\d{4})", calibration).group(1))
    assert tfma_error == pytest.approx(record["calibration"]["ece_after"], abs=1e-3)
    [((split,), counts)] = html_tables.records(soup, "abstention-counts").items()
    examples = run.nodes["DeepEmotionExampleGen"].output("examples")
    assert split == "eval" and int(counts["faces"]) == examples.custom_properties["num_eval"].int_value
    assert 0 <= int(counts["flagged uncertain"]) <= int(counts["faces"])
    card = soup.find("section", id="model-card")
    assert card.find("h1").get_text().startswith("Model card: Deep-Emotion (paper)")
    assert "Article 5(1)(f)" in card.get_text() and card.find("script") is None
