"""Drives the real `tfx` CLI (beam engine) the way a user does, in a sandbox of temp directories."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional

from deep_emotion import runs

REPO = Path(__file__).resolve().parents[2]
TFX = str(Path(sys.executable).parent / "tfx")
DSL = str(REPO / "pipeline" / "beam_runner.py")


class PipelineSandbox:
    """One pipeline name with its own BEAM_HOME, output root and MLMD, configured by environment."""

    def __init__(self, root: Path, name: str, data_root: Path, **settings: str):
        self.root, self.name = root, name
        self.output_root = root / "out"
        self.env = {
            **os.environ,
            "BEAM_HOME": str(root / "beam-home"),
            "DEEP_EMOTION_PIPELINE_NAME": name,
            "DEEP_EMOTION_DATA_ROOT": str(data_root),
            "DEEP_EMOTION_OUTPUT_ROOT": str(self.output_root),
            "TF_USE_LEGACY_KERAS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        self.env.update({f"DEEP_EMOTION_{k.upper()}": v for k, v in settings.items()})

    @property
    def metadata_path(self) -> str:
        return str(self.output_root / "metadata" / self.name / "metadata.db")

    @property
    def serving_dir(self) -> Path:
        return self.output_root / "serving" / self.name

    @property
    def pipeline_root(self) -> Path:
        return self.output_root / "pipelines" / self.name

    def tfx(self, *args: str, env: Optional[Dict[str, str]] = None, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run([TFX, *args, "--engine", "beam"], env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)

    def create(self) -> subprocess.CompletedProcess:
        return self.tfx("pipeline", "create", "--pipeline_path", DSL)

    def run(self, **settings: str) -> subprocess.CompletedProcess:
        return self.tfx("run", "create", "--pipeline_name", self.name,
                        env={f"DEEP_EMOTION_{k.upper()}": v for k, v in settings.items()})

    def run_and_kill_when(self, condition: Callable[[], bool], timeout: int = 600) -> int:
        """Starts a run and SIGKILLs its whole process group as soon as condition() holds."""
        process = subprocess.Popen([TFX, "run", "create", "--pipeline_name", self.name, "--engine", "beam"],
                                   env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        deadline = time.time() + timeout
        try:
            while time.time() < deadline and process.poll() is None:
                if condition():
                    os.killpg(process.pid, signal.SIGKILL)
                    break
                time.sleep(0.5)
            else:
                raise AssertionError("the run ended (or timed out) before the kill condition held")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return process.returncode

    def latest_run(self) -> runs.PipelineRun:
        run = runs.latest_run(self.metadata_path, self.name)
        assert run is not None, f"no run recorded in {self.metadata_path}"
        return run

    def versions(self):
        return sorted(p.name for p in self.serving_dir.iterdir()) if self.serving_dir.exists() else []


def explain(result: subprocess.CompletedProcess) -> str:
    """The end of a CLI call's output, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-8000:]}"
