"""DeepEmotionExampleGen: every recognised dataset under one data root -> canonical tf.Examples.

    example_gen = DeepEmotionExampleGen(input_base=data_root,
                                        options=IngestOptions(bad_record_budget=10))
    example_gen.outputs["examples"]  # splits train / eval / test, gzipped TFRecords

A FileBasedExampleGen (so it caches, compiles for Kubeflow V2 and shows in lineage like any
ExampleGen) with our executor and a driver that fingerprints the whole root.
"""
from typing import Optional

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.example_gen.driver import DataRootDriver
from components.example_gen.executor import Executor
from components.example_gen.options import IngestOptions
from contract.data import SPLITS

# The executor reads the whole root whatever the patterns; listing the three splits names the
# outputs, and the patterns give TFX's span/version resolution something to glob.
INPUT_CONFIG = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name=s, pattern="*") for s in SPLITS])


class DeepEmotionExampleGen(FileBasedExampleGen):
    """ExampleGen for FER2013-family CSVs and CK+48 / JAFFE / FERG image folders under input_base."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = DataRootDriver

    def __init__(self, input_base: str, options: Optional[IngestOptions] = None, code_fingerprint: Optional[str] = None):
        """code_fingerprint: of the executor's code, for the cache key (pipeline/code_fingerprint.py)."""
        super().__init__(input_base=input_base, input_config=INPUT_CONFIG,
                         custom_config=(options or IngestOptions()).to_custom_config(code_fingerprint))
