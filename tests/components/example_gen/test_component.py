"""DeepEmotionExampleGen inside TFX: caching follows every file under the data root."""
import os

from ml_metadata.proto import metadata_store_pb2
from tfx.components.example_gen import utils as example_gen_utils
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components.example_gen.component import INPUT_CONFIG, DeepEmotionExampleGen
from components.example_gen.spans import fingerprint_data_root
from components.example_gen.options import IngestOptions


def _small_root(data_root):
    data_root.write("fer2013.csv", "emotion,pixels,Usage\n" + "".join(
        f"{i},{data_root.text(data_root.pixels())},{usage}\n"
        for i, usage in enumerate(["Training", "Training", "PublicTest", "PrivateTest"])))
    for subject in range(3):
        data_root.image(f"CK+48/anger/S00{subject}_001_00000001.png")


def test_fingerprint_sees_a_change_deep_in_the_root_that_tfx_glob_misses(data_root):
    _small_root(data_root)
    before = fingerprint_data_root(data_root.path)
    tfx_before, _, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
        data_root.path, INPUT_CONFIG.splits)
    data_root.image("CK+48/anger/S001_001_00000001.png", size=(40, 40))  # same name, new content
    assert fingerprint_data_root(data_root.path) != before
    assert example_gen_utils.calculate_splits_fingerprint_span_and_version(
        data_root.path, INPUT_CONFIG.splits)[0] == tfx_before  # why the driver replaces it


def test_pipeline_reuses_the_cache_until_a_nested_image_changes(data_root, tmp_path):
    _small_root(data_root)
    mlmd = metadata.sqlite_metadata_connection_config(str(tmp_path / "mlmd.sqlite"))

    def run():
        example_gen = DeepEmotionExampleGen(input_base=data_root.path, options=IngestOptions(bad_record_budget=1))
        LocalDagRunner().run(tfx_pipeline.Pipeline(
            pipeline_name="example_gen_test", pipeline_root=str(tmp_path / "pipeline"),
            components=[example_gen], enable_cache=True, metadata_connection_config=mlmd))

    run()
    run()
    data_root.image("CK+48/anger/S002_001_00000001.png")  # rewritten with new pixels
    run()

    with metadata.Metadata(mlmd) as store:
        executions = sorted(store.store.get_executions(), key=lambda e: e.id)
        states = [e.last_known_state for e in executions]
        examples = sorted(store.store.get_artifacts_by_type("Examples"), key=lambda a: a.id)
    assert states == [metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED,
                      metadata_store_pb2.Execution.COMPLETE]
    assert len(examples) == 2
    first, third = examples
    for artifact in examples:
        assert sorted(os.listdir(artifact.uri)) == ["Split-eval", "Split-test", "Split-train", "ingest_summary.json"]
        properties = {k: v.int_value for k, v in artifact.custom_properties.items() if v.HasField("int_value")}
        assert properties["num_examples"] == 7 and properties["num_rejected"] == 0
        assert properties["num_train"] + properties["num_eval"] + properties["num_test"] == 7
        assert artifact.properties["split_names"].string_value == '["train", "eval", "test"]'
    assert (first.custom_properties["input_fingerprint"].string_value
            != third.custom_properties["input_fingerprint"].string_value)


def test_the_latest_span_is_ingested_and_a_change_to_an_older_span_reuses_the_cache(data_root, tmp_path):
    """The driver resolves the span before TFX's cache lookup: a new span folder re-runs the
    ExampleGen, a file changed in a span it no longer reads does not."""
    def span(number, subjects):
        data_root.write(f"span-{number}/fer2013.csv", "emotion,pixels,Usage\n" + "".join(
            f"{i % 7},{data_root.text(data_root.pixels())},{usage}\n"
            for i, usage in enumerate(["Training", "Training", "PublicTest", "PrivateTest"])))
        for subject in range(subjects):
            data_root.image(f"span-{number}/CK+48/anger/S00{subject}_001_00000001.png")

    mlmd = metadata.sqlite_metadata_connection_config(str(tmp_path / "mlmd.sqlite"))

    def run():
        LocalDagRunner().run(tfx_pipeline.Pipeline(
            pipeline_name="span_test", pipeline_root=str(tmp_path / "pipeline"),
            components=[DeepEmotionExampleGen(input_base=data_root.path)], enable_cache=True,
            metadata_connection_config=mlmd))

    span(1, 3)
    run()
    span(2, 4)
    run()
    data_root.image("span-1/CK+48/anger/S000_001_00000001.png", size=(40, 40))
    run()

    with metadata.Metadata(mlmd) as store:
        states = [e.last_known_state for e in sorted(store.store.get_executions(), key=lambda e: e.id)]
        examples = sorted(store.store.get_artifacts_by_type("Examples"), key=lambda a: a.id)
    assert states == [metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.COMPLETE,
                      metadata_store_pb2.Execution.CACHED]
    assert [a.properties["span"].int_value for a in examples] == [1, 2]
    assert [a.custom_properties["num_examples"].int_value for a in examples] == [7, 8]
    assert [a.custom_properties["span_folders"].string_value for a in examples] == [
        '[{"span": 1, "folder": "span-1"}]', '[{"span": 2, "folder": "span-2"}]']
    assert examples[1].custom_properties["input_fingerprint"].string_value.startswith("span:2,")
