"""DSL file for the tfx CLI's beam engine (BeamDagRunner on a local Beam runner).

    tfx pipeline create --engine beam --pipeline_path "$PWD/pipeline/beam_runner.py"
    tfx run create --engine beam --pipeline_name deep-emotion

Settings come from pipeline/configs.py and DEEP_EMOTION_* environment variables, read each time
`tfx run create` starts this file. Paths and the runner call only.
"""
import os
import sys

# Run as a script, Python puts this folder first on sys.path, where pipeline.py would shadow the
# `pipeline` package. Drop it; the package is importable from the installed project.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != _HERE]
# TFX builds and pip-installs the trainer/ user-code wheel on every run; keep both quiet.
os.environ.setdefault("DIST_EXTRA_CONFIG", os.path.join(_HERE, "user_code_build.cfg"))
os.environ.setdefault("PIP_QUIET", "1")
os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                      "ignore:setup.py install is deprecated"]))
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # else the wheel build warns "byte-compiling is disabled"

from deep_emotion.runtime import pipeline_progress_logging, quiet_tensorflow  # noqa: E402

quiet_tensorflow()

from tfx.orchestration import metadata  # noqa: E402
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner  # noqa: E402

from pipeline import configs  # noqa: E402
from pipeline.pipeline import create_pipeline  # noqa: E402


def build():
    return create_pipeline(
        **configs.pipeline_args(),
        metadata_connection_config=metadata.sqlite_metadata_connection_config(configs.METADATA_PATH))


if __name__ == "__main__":
    pipeline_progress_logging(verbose=configs.VERBOSE_LOGS)
    BeamDagRunner().run(build())
