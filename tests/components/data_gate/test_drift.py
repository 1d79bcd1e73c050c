"""Drift between spans at the DataGate: real TFDV statistics of generated faces, the curated schema's
drift comparators, a served version carrying its training data's statistics, and the override."""
import itertools
import json
import logging
import os

import numpy as np
import pyarrow as pa
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tfx.types import artifact_utils, standard_artifacts

from components.data_gate import anomalies_report, drift
from components.data_gate.component import DataDriftError, DataGate
from components.pusher import serving_dir as serving
from contract import data as dc
from pipeline import configs

SCHEMA = tfdv.load_schema_text(configs.SCHEMA_PATH)
_RUNS = itertools.count()


def _faces(n, seed, brighten=0, sources=(("fer2013", 0.5), ("ckplus", 0.5))):
    """n faces: a bright oval on a darker background, with noise; `brighten` adds to every pixel."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:dc.IMAGE_SIZE, 0:dc.IMAGE_SIZE]
    oval = ((x - 24) / 16.0) ** 2 + ((y - 24) / 20.0) ** 2 < 1
    pixels = np.where(oval, 150, 60)[None] + rng.normal(0, 25, (n, dc.IMAGE_SIZE, dc.IMAGE_SIZE))
    pixels = np.clip(pixels + brighten, 0, 255).astype(np.int64).reshape(n, -1)
    names, shares = zip(*sources)
    source = rng.choice(names, size=n, p=shares)
    emotion = rng.integers(0, dc.NUM_CLASSES, n)
    return pa.RecordBatch.from_arrays(
        [pa.array([list(p) for p in pixels], pa.list_(pa.int64())), pa.array([[int(e)] for e in emotion]),
         pa.array([[s.encode()] for s in source], pa.list_(pa.binary())),
         pa.array([[f"{s}:{i}".encode()] for i, s in enumerate(source)], pa.list_(pa.binary()))],
        [dc.PIXELS, dc.LABEL, dc.SOURCE, dc.IMAGE_ID])


def _statistics(folder, span, batch):
    """An ExampleStatistics artifact as StatisticsGen writes it (with the schema: emotion is categorical)."""
    stats = stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions(schema=SCHEMA))
    os.makedirs(os.path.join(folder, "Split-train"))
    with open(os.path.join(folder, "Split-train", drift.STATISTICS_FILE), "wb") as f:
        f.write(stats.SerializeToString())
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri, artifact.span = str(folder), span
    artifact.split_names = artifact_utils.encode_split_names(["train"])
    return artifact


def _serve(serving_dir, version, statistics, fake_saved_model):
    """A pushed version as the Pusher writes it: the model, then training_data/ with its statistics."""
    version_dir = os.path.join(serving_dir, str(version))
    fake_saved_model(version_dir, f"weights {version}")
    for name, content in serving.training_data_files({"span": statistics.span}, statistics.uri).items():
        os.makedirs(os.path.dirname(os.path.join(version_dir, name)), exist_ok=True)
        with open(os.path.join(version_dir, name), "wb") as f:
            f.write(content)


def _gate(tmp_path, statistics, serving_dir, accept_drift="", examples=None):
    """DataGate's TFX executor with clean anomalies (as ExampleValidator writes them) for the train split."""
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / f"anomalies-{statistics.span}")
    anomalies.split_names = artifact_utils.encode_split_names(["train"])
    os.makedirs(os.path.join(anomalies.uri, "Split-train"), exist_ok=True)
    with open(os.path.join(anomalies.uri, "Split-train", anomalies_report.ANOMALIES_FILE), "wb") as f:
        f.write(tfdv.validate_statistics(tfdv.load_stats_binary(
            os.path.join(statistics.uri, "Split-train", drift.STATISTICS_FILE)), SCHEMA).SerializeToString())
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "curated")
    os.makedirs(schema.uri, exist_ok=True)
    with open(os.path.join(schema.uri, "schema.pbtxt"), "w") as f:
        f.write(open(configs.SCHEMA_PATH).read())
    gated = standard_artifacts.Schema()
    gated.uri = str(tmp_path / f"gated-{next(_RUNS)}")
    DataGate.EXECUTOR_SPEC.executor_class().Do(
        {"anomalies": [anomalies], "schema": [schema], "statistics": [statistics],
         **({"examples": [examples]} if examples is not None else {})}, {"gated_schema": [gated]},
        {"serving_dir": str(serving_dir), "accept_drift": accept_drift})
    return gated


@pytest.fixture(scope="module")
def spans(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    return {
        "span1": _statistics(root / "s1", 1, _faces(300, seed=1)),
        "span2": _statistics(root / "s2", 2, _faces(240, seed=2)),  # same kind of faces, other people
        "bright": _statistics(root / "s3", 3, _faces(240, seed=3, brighten=70)),
        "new_mix": _statistics(root / "s4", 4, _faces(240, seed=4, sources=(("fer2013", 0.62), ("ckplus", 0.38)))),
        "one_source": _statistics(root / "s5", 5, _faces(240, seed=5, sources=(("fer2013", 1.0),))),
    }


def test_a_span_like_the_served_models_data_passes_and_says_what_it_was_compared_with(tmp_path, spans,
                                                                                       fake_saved_model):
    _serve(tmp_path / "serving", 100, spans["span1"], fake_saved_model)
    gated = _gate(tmp_path, spans["span2"], tmp_path / "serving")
    assert os.path.exists(os.path.join(gated.uri, "schema.pbtxt"))
    assert gated.get_string_custom_property("drift_baseline") == "span 1 (what served version 100 was trained on)"
    assert not gated.has_custom_property("drift_accepted")


def test_brighter_pixels_stop_the_run_naming_both_spans_the_feature_and_the_override(tmp_path, spans,
                                                                                      fake_saved_model):
    _serve(tmp_path / "serving", 100, spans["span1"], fake_saved_model)
    with pytest.raises(DataDriftError) as failure:
        _gate(tmp_path, spans["bright"], tmp_path / "serving")
    message = str(failure.value)
    assert message.startswith("Data drift from span 1 (what served version 100 was trained on) to span 3: "
                              "1 finding beyond the drift comparators")
    assert "split 'train', feature 'pixels': found " in message and "in span 3" in message
    assert "expected Jensen-Shannon divergence of the histograms at most 0.05 from span 1" in message
    assert "train emotion: L-infinity distance of the value shares" in message  # every measurement is shown
    assert "DEEP_EMOTION_ACCEPT_DRIFT=3 (on Kubeflow: --param accept_drift=3)" in message
    assert not [p for p in os.listdir(tmp_path) if p.startswith("gated-")]  # nothing passed on


def test_the_override_accepts_that_one_span_logs_it_and_keeps_the_report(tmp_path, spans, fake_saved_model, caplog):
    _serve(tmp_path / "serving", 100, spans["span1"], fake_saved_model)
    with pytest.raises(DataDriftError):
        _gate(tmp_path, spans["bright"], tmp_path / "serving", accept_drift="2")  # another span's acceptance
    with caplog.at_level(logging.WARNING):
        gated = _gate(tmp_path, spans["bright"], tmp_path / "serving", accept_drift="2, 3")
    assert "drift ACCEPTED for span 3 by the operator's override" in caplog.text
    assert "feature 'pixels'" in gated.get_string_custom_property("drift_accepted")
    with pytest.raises(ValueError, match="expected span numbers such as 2 or 2,3"):
        _gate(tmp_path, spans["bright"], tmp_path / "serving", accept_drift="span-3")


def test_a_shifted_dataset_mix_passes_a_vanished_dataset_stops(tmp_path, spans, fake_saved_model):
    _serve(tmp_path / "serving", 100, spans["span1"], fake_saved_model)
    _gate(tmp_path, spans["new_mix"], tmp_path / "serving")  # ~0.12 L-infinity: within the schema's 0.25
    with pytest.raises(DataDriftError, match="feature 'source'"):
        _gate(tmp_path, spans["one_source"], tmp_path / "serving")


def test_no_comparison_without_a_served_model_its_statistics_or_spans(tmp_path, spans, fake_saved_model):
    (tmp_path / "serving").mkdir()
    _gate(tmp_path, spans["bright"], tmp_path / "serving")  # first run: nothing served
    fake_saved_model(str(tmp_path / "serving" / "7"), "pushed by hand")  # a version without training_data/
    assert drift.served_baseline(str(tmp_path / "serving")) is None
    _gate(tmp_path, spans["bright"], tmp_path / "serving")
    _serve(tmp_path / "serving", 100, spans["span1"], fake_saved_model)
    whole_root = _statistics(tmp_path / "s0", 0, _faces(50, seed=9, brighten=70))
    gated = _gate(tmp_path, whole_root, tmp_path / "serving")  # a root without span folders
    assert not gated.has_custom_property("drift_baseline")


def test_the_newest_complete_version_is_the_baseline(tmp_path, spans, fake_saved_model):
    _serve(tmp_path / "serving", 100, spans["span1"], fake_saved_model)
    _serve(tmp_path / "serving", 200, spans["bright"], fake_saved_model)
    os.remove(tmp_path / "serving" / "200" / serving.SAVED_MODEL_FILE)  # a half-copied push
    baseline = drift.served_baseline(str(tmp_path / "serving"))
    assert (baseline.version, baseline.span) == (100, 1)
    assert json.loads((tmp_path / "serving" / "100" / serving.TRAINING_DATA_RECORD).read_text()) == {"span": 1}


def _window(tmp_path, name, span_batches):
    """This run's Examples (gzipped TFRecords, image ids prefixed with their span folder, as ingestion
    writes them) and StatisticsGen's statistics of the whole window, over {span number: faces}."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from components.example_gen import spans as spans_lib  # pylint: disable=import-outside-toplevel

    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / f"{name}-examples")
    os.makedirs(os.path.join(examples.uri, "Split-train"))
    batches = []
    with tf.io.TFRecordWriter(os.path.join(examples.uri, "Split-train", "data.gz"), "GZIP") as writer:
        for number, batch in span_batches.items():
            ids = [f"span-{number}/{i[0].decode()}".encode() for i in batch.column(3).to_pylist()]
            batch = pa.RecordBatch.from_arrays(batch.columns[:3] + [pa.array([[i] for i in ids], pa.list_(pa.binary()))],
                                               batch.schema.names)
            batches.append(batch)
            for row in batch.to_pylist():
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    dc.PIXELS: tf.train.Feature(int64_list=tf.train.Int64List(value=row[dc.PIXELS])),
                    dc.LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=row[dc.LABEL])),
                    dc.SOURCE: tf.train.Feature(bytes_list=tf.train.BytesList(value=row[dc.SOURCE])),
                    dc.IMAGE_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=row[dc.IMAGE_ID])),
                })).SerializeToString())
    window = [spans_lib.Span(number, f"span-{number}") for number in span_batches]
    examples.set_string_custom_property("span_folders", spans_lib.to_json(window))
    whole = pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
    return examples, _statistics(tmp_path / f"{name}-statistics", window[-1].number, whole), window


def test_with_a_rolling_window_the_new_span_alone_is_compared(tmp_path, fake_saved_model):
    """A window of 3 spans: its statistics are two thirds the served version's own data, so a new
    span's drift showed about 3 times smaller and passed; the gate compares the new span alone."""
    from components.example_gen import spans as spans_lib  # pylint: disable=import-outside-toplevel

    faces = {number: _faces(150, seed=10 + number) for number in (1, 2, 3)}
    faces[4] = _faces(150, seed=14, brighten=25)
    served_examples, served_statistics, served_window = _window(tmp_path, "served", {n: faces[n] for n in (1, 2, 3)})
    version_dir = tmp_path / "serving" / "100"
    fake_saved_model(str(version_dir), "weights")
    record = {"span": 3, "spans": json.loads(spans_lib.to_json(served_window))}
    for name, content in serving.training_data_files(record, served_statistics.uri).items():
        os.makedirs(os.path.dirname(version_dir / name), exist_ok=True)
        (version_dir / name).write_bytes(content)

    examples, statistics, _ = _window(tmp_path, "current", {n: faces[n] for n in (2, 3, 4)})
    baseline = drift.served_baseline(str(tmp_path / "serving"))
    whole_window = drift.compare(statistics.uri, 4, baseline, SCHEMA)
    assert not whole_window.findings  # what the gate used to compare: the drift diluted below the threshold
    with pytest.raises(DataDriftError) as failure:
        _gate(tmp_path, statistics, tmp_path / "serving", examples=examples)
    message = str(failure.value)
    assert message.startswith("Data drift from spans 1-3 (span-1/, span-2/, span-3/) (what served version 100 was "
                              "trained on) to span 4 (span-4/), the new data of the window spans 2-4")
    assert "split 'train', feature 'pixels'" in message and "DEEP_EMOTION_ACCEPT_DRIFT=4" in message


def test_a_class_that_vanished_from_the_new_span_stops_the_run(tmp_path, spans, fake_saved_model):
    """Without any 'disgust' face a span passed: the class-share comparator (L-infinity 0.1) cannot see
    a class of a few percent go, and the model retrained on it forgets the class."""
    _serve(tmp_path / "serving", 100, spans["span1"], fake_saved_model)
    faces = _faces(240, seed=6)
    emotion = [[3 if e[0] == 1 else e[0]] for e in faces.column(1).to_pylist()]  # every disgust face now happy
    without_disgust = pa.RecordBatch.from_arrays([faces.column(0), pa.array(emotion)] + faces.columns[2:],
                                                 faces.schema.names)
    statistics = _statistics(tmp_path / "s6", 6, without_disgust)
    with pytest.raises(DataDriftError) as failure:
        _gate(tmp_path, statistics, tmp_path / "serving")
    assert ("split 'train', feature 'emotion': found no example of it in span 6; expected class 'disgust' present "
            in str(failure.value))
    gated = _gate(tmp_path, statistics, tmp_path / "serving", accept_drift="6")  # accepted like any drift
    assert "class 'disgust'" in gated.get_string_custom_property("drift_accepted")


def test_a_span_0_folder_is_compared_like_any_span(tmp_path, spans, fake_saved_model):
    """Span numbering from 0 (span-0/) is TFX's too; span 0 used to mean "no span folders" here, and
    the gate passed it without a drift check."""
    _serve(tmp_path / "serving", 100, spans["span1"], fake_saved_model)
    examples, statistics, _ = _window(tmp_path, "zero", {0: _faces(240, seed=3, brighten=70)})
    with pytest.raises(DataDriftError, match=r"to span 0 \(span-0/\)"):
        _gate(tmp_path, statistics, tmp_path / "serving", examples=examples)
