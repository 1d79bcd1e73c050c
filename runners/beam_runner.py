"""DSL file for the tfx CLI's beam engine (BeamDagRunner on a local Beam runner).

    tfx pipeline create --engine beam --pipeline_path "$PWD/runners/beam_runner.py"
    tfx run create --engine beam --pipeline_name deep-emotion

Settings come from pipeline/configs.py and DEEP_EMOTION_* environment variables, read each time
`tfx run create` starts this file. Paths and the runner call only; the pipeline is pipeline/local.py.
Also a plain script: `python runners/beam_runner.py`.
"""
import os

from contract.runtime import pipeline_progress_logging, quiet_tensorflow

quiet_tensorflow()

from pipeline import configs, local  # noqa: E402


def _latest_run():
    """The pipeline's latest run in ML Metadata, or None (no metadata yet)."""
    from deep_emotion import runs  # pylint: disable=import-outside-toplevel

    if not os.path.exists(configs.METADATA_PATH):
        return None
    return runs.latest_run(configs.METADATA_PATH, configs.PIPELINE_NAME)


def _say_what_the_run_did(before) -> None:
    """The run's verdict in one line ("Nothing new: ...", "Stopped at DataGate (span 4 ...)"), after a
    failed run too; `tfx pipeline create|update` only compiles: no new run, nothing to say."""
    try:
        finished = _latest_run()
        if finished is not None and (before is None or finished.run_id != before.run_id):
            from deep_emotion import summary  # pylint: disable=import-outside-toplevel

            print(summary.verdict(finished), flush=True)
    except Exception as error:  # pylint: disable=broad-except  # never hide the run's own error
        print(f"(no verdict: reading the run's metadata failed: {error})", flush=True)


if __name__ == "__main__":
    pipeline_progress_logging(verbose=configs.VERBOSE_LOGS)
    before = _latest_run()
    try:
        local.BeamDagRunner().run(local.build())
    finally:
        _say_what_the_run_did(before)
