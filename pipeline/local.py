"""The local variant of the pipeline: the settings (pipeline/configs.py) and an ML Metadata SQLite
file, for BeamDagRunner or LocalDagRunner on this machine (runners/beam_runner.py runs it)."""
import gc

from absl import logging
from tfx.orchestration import metadata
from tfx.orchestration.beam import beam_dag_runner
from tfx.v1.dsl import Pipeline

from contract.runtime import one_thread_per_op
from pipeline import configs
from pipeline.pipeline import create_pipeline


def build() -> Pipeline:
    return create_pipeline(
        **configs.pipeline_args(),
        metadata_connection_config=metadata.sqlite_metadata_connection_config(configs.METADATA_PATH))


class _NodeOnFrozenHeap(beam_dag_runner.PipelineNodeAsDoFn):
    """A component run after gc.freeze(): what the process holds when the component starts
    (TensorFlow, Beam, TFX and what earlier components imported: 0.9-1.2 million objects at FER2013's
    size) is left out of the garbage collector's full passes, which otherwise walk all of it again
    and again while the component allocates. Measured at FER2013's size (bench.pipeline, 1x): 13
    full passes took 3.6-4.0 s of the run; with the heap frozen before each component, 22 passes
    took 2.0 s (gc.callbacks timing)."""

    def _run_node(self) -> None:
        gc.freeze()
        super()._run_node()


class BeamDagRunner(beam_dag_runner.BeamDagRunner):
    """TFX's BeamDagRunner with each component run on a frozen heap (_NodeOnFrozenHeap), through the
    runner's own hook for its node DoFn. Frozen objects are never collected, so the heap is unfrozen
    when the run ends: a process that runs the pipeline again (a notebook, the tests) collects what
    the run left, and keeps no more than one run's garbage meanwhile."""

    _PIPELINE_NODE_DO_FN_CLS = _NodeOnFrozenHeap

    def run_with_ir(self, pipeline, run_options=None):  # pylint: disable=arguments-differ
        # The Trainer runs in this process: its threads must be chosen before TensorFlow starts
        # (contract.runtime.one_thread_per_op); a process that already ran TensorFlow keeps its own.
        logging.info("TensorFlow threads: %s", one_thread_per_op())
        try:
            return super().run_with_ir(pipeline, run_options)
        finally:
            gc.unfreeze()
