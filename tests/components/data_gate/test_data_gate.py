"""DataGate on real TFDV output: statistics of bad examples validated against the curated schema,
then the gate's own executor: it stops on any finding and passes the schema on otherwise."""
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx.types import artifact_utils, standard_artifacts

from components.data_gate import anomalies_report
from components.data_gate.component import DataGate, DataValidationError
from contract import data as dc
from pipeline import configs


def _example(pixels, emotion=3, source=b"fer2013"):
    f = tf.train.Feature
    return tf.train.Example(features=tf.train.Features(feature={
        dc.PIXELS: f(int64_list=tf.train.Int64List(value=pixels)),
        dc.LABEL: f(int64_list=tf.train.Int64List(value=[emotion])),
        dc.SOURCE: f(bytes_list=tf.train.BytesList(value=[source])),
        dc.IMAGE_ID: f(bytes_list=tf.train.BytesList(value=[b"fer2013.csv:2"])),
    })).SerializeToString()


def _validate(tmp_path, split, examples):
    """Runs TFDV as ExampleValidator does and writes its SchemaDiff.pb for the split."""
    path = str(tmp_path / f"{split}.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for e in examples:
            w.write(e)
    stats = tfdv.generate_statistics_from_tfrecord(path)
    schema = tfdv.load_schema_text(configs.SCHEMA_PATH)
    anomalies = tfdv.validate_statistics(stats, schema)
    out = tmp_path / "anomalies" / f"Split-{split}"
    out.mkdir(parents=True)
    (out / anomalies_report.ANOMALIES_FILE).write_bytes(anomalies.SerializeToString())
    return schema


def test_empty_split_is_a_finding(tmp_path):
    schema = _validate(tmp_path, "test", [])
    findings = anomalies_report.load_findings(str(tmp_path / "anomalies"), ["test"], schema)
    assert [(f.split, f.feature, f.found) for f in findings] == [("test", "(dataset)", "no examples at all")]


def test_clean_split_has_no_findings(tmp_path):
    schema = _validate(tmp_path, "train", [_example([10] * dc.NUM_PIXELS)] * 3)
    assert anomalies_report.load_findings(str(tmp_path / "anomalies"), ["train"], schema) == []


@pytest.mark.parametrize("examples, feature, expected, found", [
    ([_example([300] * dc.NUM_PIXELS)], "pixels", "values in 0..255", "300"),
    ([_example([1] * dc.NUM_PIXELS, emotion=9)], "emotion", "values in 0..6", "9"),
    ([_example([1] * dc.NUM_PIXELS, source=b"webcam")], "source", "one of ['fer2013'", "webcam"),
    ([_example([1] * (dc.NUM_PIXELS - 1))], "pixels", "shape [2304]", "fixed value length 2303"),
])
def test_each_anomaly_names_split_feature_expected_and_found(tmp_path, examples, feature, expected, found):
    schema = _validate(tmp_path, "eval", examples)
    findings = anomalies_report.load_findings(str(tmp_path / "anomalies"), ["eval"], schema)
    assert [f.feature for f in findings] == [feature]
    assert findings[0].split == "eval" and expected in findings[0].expected and found in findings[0].found
    report = anomalies_report.format_findings(findings, "/x/anomalies")
    assert "split 'eval', feature '%s'" % feature in report and "/x/anomalies" in report


def _run_gate(tmp_path, splits):
    """DataGate's TFX executor on the anomalies written by _validate for these splits."""
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "anomalies")
    anomalies.split_names = artifact_utils.encode_split_names(splits)
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "curated")
    (tmp_path / "curated").mkdir()
    (tmp_path / "curated" / "schema.pbtxt").write_text(open(configs.SCHEMA_PATH).read())
    gated = standard_artifacts.Schema()
    gated.uri = str(tmp_path / "gated")
    DataGate.EXECUTOR_SPEC.executor_class().Do({"anomalies": [anomalies], "schema": [schema]},
                                               {"gated_schema": [gated]}, {})
    return tmp_path / "gated"


def test_gate_passes_the_curated_schema_on_when_every_split_is_clean(tmp_path):
    for split in ("train", "eval"):
        _validate(tmp_path, split, [_example([10] * dc.NUM_PIXELS)] * 3)
    gated = _run_gate(tmp_path, ["train", "eval"])
    assert (gated / "schema.pbtxt").read_text() == open(configs.SCHEMA_PATH).read()


def test_gate_stops_the_run_naming_each_anomaly_and_passes_nothing_on(tmp_path):
    _validate(tmp_path, "train", [_example([10] * dc.NUM_PIXELS)] * 3)
    _validate(tmp_path, "eval", [_example([1] * dc.NUM_PIXELS, emotion=9)])
    with pytest.raises(DataValidationError) as failure:
        _run_gate(tmp_path, ["train", "eval"])
    message = str(failure.value)
    assert message.startswith("Data validation failed: 1 anomaly in split eval")
    assert "split 'eval', feature 'emotion': found" in message and "expected INT, values in 0..6" in message
    assert str(tmp_path / "anomalies") in message
    assert not (tmp_path / "gated").exists()
