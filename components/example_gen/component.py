"""DeepEmotionExampleGen: every recognised dataset under one data root, or under its latest span
folder(s), -> canonical tf.Examples.

    example_gen = DeepEmotionExampleGen(input_base=data_root, options=IngestOptions(bad_record_budget=10),
                                        span_pattern="span-{SPAN}", num_spans=1)
    example_gen.outputs["examples"]  # splits train / eval / test, gzipped TFRecords; `span` = the latest span

A FileBasedExampleGen (so it caches, compiles for Kubeflow V2 and shows in lineage like any
ExampleGen) with our executor and a driver that resolves the spans and fingerprints every file in
them (driver.py, spans.py). On Kubeflow, which runs no drivers, `resolved` takes the SpanResolver's
outputs instead (pipeline/kubeflow.py).
"""
from typing import Any, Mapping, Optional

from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components.example_gen import spans
from components.example_gen.driver import READY_MARKER_KEY, SPAN_FOLDERS_KEY, SPAN_PATTERN_KEY, DataRootDriver
from components.example_gen.executor import Executor
from components.example_gen.options import IngestOptions
from contract.data import SPLITS

# The executor reads the resolved folders whatever the patterns; listing the three splits names the outputs.
INPUT_CONFIG = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name=s, pattern="*") for s in SPLITS])
RESOLVED_KEYS = (SPAN_FOLDERS_KEY, example_gen_utils.SPAN_PROPERTY_NAME, example_gen_utils.FINGERPRINT_PROPERTY_NAME)


class DeepEmotionExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    """TFX's FileBasedExampleGen spec plus the span settings and the resolved spans (set by the driver
    locally, by the SpanResolver's outputs on Kubeflow; `span` arrives there as text)."""
    PARAMETERS = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        SPAN_PATTERN_KEY: ExecutionParameter(type=str, optional=True),
        READY_MARKER_KEY: ExecutionParameter(type=str, optional=True),
        SPAN_FOLDERS_KEY: ExecutionParameter(type=str, optional=True),
        example_gen_utils.SPAN_PROPERTY_NAME: ExecutionParameter(type=int, optional=True),
        example_gen_utils.FINGERPRINT_PROPERTY_NAME: ExecutionParameter(type=str, optional=True),
    }


class DeepEmotionExampleGen(FileBasedExampleGen):
    """ExampleGen for FER2013-family CSVs and CK+48 / JAFFE / FERG image folders under input_base."""

    SPEC_CLASS = DeepEmotionExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = DataRootDriver

    def __init__(self, input_base: Any, options: Optional[IngestOptions] = None, code_fingerprint: Optional[str] = None,
                 span_pattern: str = spans.DEFAULT_PATTERN, num_spans: int = 1,
                 resolved: Optional[Mapping[str, Any]] = None, span_ready_marker: str = ""):
        """code_fingerprint: of the executor's code, for the cache key (pipeline/code_fingerprint.py).
        span_pattern: span folders under input_base ("" = never spans: the whole root); num_spans: how
        many of the latest spans one run ingests (TFX's rolling_range). resolved: span_folders, span and
        input_fingerprint as resolved upstream (placeholders of the SpanResolver's outputs).
        span_ready_marker: a file a span folder must hold to be read (spans.resolve); '' for none, and then
        no exec property, so the cache keys of runs without a marker stay as they were."""
        resolved = dict(resolved or {})
        unknown = sorted(set(resolved) - set(RESOLVED_KEYS))
        if unknown:
            raise ValueError(f"resolved: unknown key(s) {unknown}; expected {list(RESOLVED_KEYS)}")
        spec = DeepEmotionExampleGenSpec(
            input_base=input_base, input_config=INPUT_CONFIG,
            output_config=example_gen_utils.make_default_output_config(INPUT_CONFIG),
            custom_config=(options or IngestOptions()).to_custom_config(code_fingerprint),
            range_config=spans.rolling_range(num_spans), span_pattern=span_pattern,
            span_ready_marker=spans.check_ready_marker(span_ready_marker) or None,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            examples=types.Channel(type=standard_artifacts.Examples), **resolved)
        # FileBasedExampleGen.__init__ builds TFX's own spec class; the base's takes any spec.
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
