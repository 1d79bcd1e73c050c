"""`deep-emotion summary`, the gate of `make demo`: the pushed model's test accuracy is measured
through its serving signature, and a run that cannot show one fails with the reason."""
import gzip
import os

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from contract import data as dc
from deep_emotion import summary
from deep_emotion.cli.summary import command


class _FirstPixelModel(tf.Module):
    """A stand-in served model whose answer is pixel 0 modulo 7: its accuracy on any split is known."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        pixels = tf.io.parse_example(examples, {dc.PIXELS: tf.io.FixedLenFeature([dc.NUM_PIXELS], tf.int64)})
        class_id = pixels[dc.PIXELS][:, 0] % dc.NUM_CLASSES
        return {"probabilities": tf.one_hot(class_id, dc.NUM_CLASSES), "class_id": class_id}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model"))
    module = _FirstPixelModel()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def _examples_artifact(root, test_rows):
    """An ExampleGen output with a test split of (first pixel, label) rows (gzipped TFRecords)."""
    split = os.path.join(root, "Split-test")
    os.makedirs(split)
    path = os.path.join(split, "data_tfrecord-00000-of-00001.gz")
    if not test_rows:
        with open(path, "wb") as f:
            f.write(gzip.compress(b""))
        return root
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for first_pixel, label in test_rows:
            pixels = np.full(dc.NUM_PIXELS, 9, np.int64)
            pixels[0] = first_pixel
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                dc.PIXELS: tf.train.Feature(int64_list=tf.train.Int64List(value=pixels)),
                dc.LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                dc.SOURCE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"fer2013"])),
                dc.IMAGE_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"fer2013.csv:2"])),
            })).SerializeToString())
    return root


def test_test_accuracy_is_what_the_served_signature_answers(model_dir, tmp_path):
    rows = [(3, 3), (10, 3), (4, 4), (6, 0)]  # answers 3, 3, 4, 6: three of four right
    accuracy, n = summary.pushed_model_test_accuracy(model_dir, _examples_artifact(str(tmp_path), rows))
    assert (accuracy, n) == (0.75, 4)


def test_an_empty_test_split_has_no_accuracy_and_fails_any_required_one(model_dir, tmp_path):
    accuracy, n = summary.pushed_model_test_accuracy(model_dir, _examples_artifact(str(tmp_path), []))
    assert (accuracy, n) == (None, 0)
    result = summary.RunSummary(pushed_model=model_dir, test_accuracy=accuracy, test_examples=n)
    assert summary.check_test_accuracy(result, 0.9) == (
        "the test split has no examples, so the test accuracy is undefined (required 0.9)")


@pytest.mark.parametrize("result, reason", [
    (summary.RunSummary(pushed_model="/s/1", test_accuracy=0.8912, test_examples=10),
     "test accuracy 0.8912 is below the required 0.9"),
    (summary.RunSummary(not_pushed_because="the Evaluator did not bless the model"),
     "no model was pushed (the Evaluator did not bless the model): required test accuracy 0.9"),
    (summary.RunSummary(pushed_model="/s/1", test_accuracy=0.9, test_examples=10), None),
])
def test_the_required_accuracy_is_checked_with_its_reason(result, reason):
    assert summary.check_test_accuracy(result, 0.9) == reason


def test_a_pipeline_that_never_ran_is_an_error_not_a_traceback(tmp_path):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "metadata.db")
    metadata_store.MetadataStore(config)  # an empty store
    result = CliRunner().invoke(command, ["--metadata-path", str(tmp_path / "metadata.db"),
                                          "--pipeline-name", "nobody", "--min-test-accuracy", "0.9"])
    assert result.exit_code == 1
    assert f"Error: No run of pipeline 'nobody' in {tmp_path / 'metadata.db'}" in result.output


def _node(state, examples=None):
    from deep_emotion import runs  # pylint: disable=import-outside-toplevel
    from ml_metadata.proto import metadata_store_pb2  # pylint: disable=import-outside-toplevel

    outputs = {}
    if examples is not None:
        artifact = metadata_store_pb2.Artifact()
        artifact.custom_properties["span_folders"].string_value = examples
        artifact.custom_properties["num_examples"].int_value = 120
        outputs["examples"] = [artifact]
    return runs.NodeRun("n", state, 1, outputs=outputs)


def test_a_run_where_every_component_came_from_the_cache_says_nothing_was_new():
    from deep_emotion import runs  # pylint: disable=import-outside-toplevel

    span_2 = '[{"span": 2, "folder": "span-2"}]'
    cached = runs.PipelineRun("r2", {"DeepEmotionExampleGen": _node("CACHED", span_2), "Trainer": _node("CACHED"),
                                     "latest_blessed_model_resolver": _node("COMPLETE"), "Pusher": _node("CACHED")})
    assert summary.nothing_new(cached)
    assert summary.verdict(cached) == ("Nothing new: span 2 (span-2/): 120 examples, ingested by an earlier run; "
                                       "every step came from the cache, nothing was trained or pushed.")
    ran = runs.PipelineRun("r3", {"DeepEmotionExampleGen": _node("COMPLETE", span_2), "Trainer": _node("COMPLETE")})
    assert not summary.nothing_new(ran) and summary.verdict(ran) == "Ran on span 2 (span-2/): 120 examples."
    gate_again = runs.PipelineRun("r5", {"DeepEmotionExampleGen": _node("CACHED", span_2), "DataGate": _node("COMPLETE"),
                                         "Trainer": _node("CACHED"), "Pusher": _node("CACHED")})
    assert summary.verdict(gate_again) == (
        "Nothing new to train: span 2 (span-2/): 120 examples; DataGate ran again, the Trainer and the Pusher came "
        "from the cache: nothing was trained or pushed.")
    stopped = runs.PipelineRun("r4", {"DeepEmotionExampleGen": _node("COMPLETE", "[]"), "DataGate": _node("FAILED")})
    assert summary.verdict(stopped) == ("Stopped at DataGate (the whole data root (no span folders): "
                                        "120 examples).")
