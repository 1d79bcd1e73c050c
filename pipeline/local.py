"""The local variant of the pipeline: the settings (pipeline/configs.py) and an ML Metadata SQLite
file, for BeamDagRunner or LocalDagRunner on this machine (runners/beam_runner.py runs it)."""
from tfx.orchestration import metadata
from tfx.v1.dsl import Pipeline

from pipeline import configs
from pipeline.pipeline import create_pipeline


def build() -> Pipeline:
    return create_pipeline(
        **configs.pipeline_args(),
        metadata_connection_config=metadata.sqlite_metadata_connection_config(configs.METADATA_PATH))
