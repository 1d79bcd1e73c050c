"""DSL file for the tfx CLI's beam engine (BeamDagRunner on a local Beam runner).

    tfx pipeline create --engine beam --pipeline_path "$PWD/runners/beam_runner.py"
    tfx run create --engine beam --pipeline_name deep-emotion

Settings come from pipeline/configs.py and DEEP_EMOTION_* environment variables, read each time
`tfx run create` starts this file. Paths and the runner call only; the pipeline is pipeline/local.py.
Also a plain script: `python runners/beam_runner.py`.
"""
from contract.runtime import pipeline_progress_logging, quiet_tensorflow

quiet_tensorflow()

from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner  # noqa: E402

from pipeline import configs, local  # noqa: E402

if __name__ == "__main__":
    pipeline_progress_logging(verbose=configs.VERBOSE_LOGS)
    BeamDagRunner().run(local.build())
    from deep_emotion import runs, summary  # noqa: E402  (what the run did, in one line, e.g. "Nothing new: ...")

    finished = runs.latest_run(configs.METADATA_PATH, configs.PIPELINE_NAME)
    if finished is not None:
        print(summary.verdict(finished), flush=True)
