"""Drives the real `tfx` CLI (beam engine) the way a user does, in a sandbox of temp directories.

Each sandbox runs its own copy of the project's code (the checkout as a user has it: packages,
runners, schema) through PYTHONPATH, so a test can edit that code and see what a rerun does, and a
developer editing the checkout during a test run changes nothing under it.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional

from deep_emotion import runs

REPO = Path(__file__).resolve().parents[2]
TFX = str(Path(sys.executable).parent / "tfx")
CODE = ("contract", "faces", "components", "trainer", "pipeline", "deep_emotion", "runners", "schema")


def copy_code(code: Path) -> Path:
    """The project's code as a user's checkout has it (packages, runners, schema), under `code`."""
    for part in CODE:
        if not (code / part).exists():
            shutil.copytree(REPO / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
    return code


def recaptured_copy(source: Path, destination: Path, gain: float = 0.5, offset: int = 100) -> None:
    """A copy of a data root (a span) as another camera would take it: every pixel p becomes
    round(gain * p + offset), clipped to 0-255, in FER2013-family CSV pixels and every image, in
    their own formats. Other files are copied as they are.

    The defaults (brighter and flatter) keep the faces (128 of 256 levels) but cost a model
    normalised for the old camera about 9 points of accuracy (make demo's model: 0.966 -> 0.879 on
    its test faces), while a retrain re-derives the normalisation. A plain +70 brightening cost it
    under 1 point: not enough for "the retrained model beats the served one" to be a safe bet."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from PIL import Image  # pylint: disable=import-outside-toplevel

    def recapture(pixels):
        return np.clip(np.round(np.asarray(pixels, np.float64) * gain + offset), 0, 255).astype(np.uint8)

    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".csv" and "pixels" in path.read_text().splitlines()[0]:
            lines = path.read_text().splitlines()
            column = [c.strip() for c in lines[0].split(",")].index("pixels")
            rows = [lines[0]]
            for line in lines[1:]:
                fields = line.split(",")
                fields[column] = " ".join(str(v) for v in recapture([int(v) for v in fields[column].split()]))
                rows.append(",".join(fields))
            target.write_text("\n".join(rows) + "\n")
        elif path.suffix.lower() in (".png", ".tiff", ".tif", ".jpg", ".jpeg"):
            with Image.open(path) as image:
                Image.fromarray(recapture(image), image.mode).save(target)
        else:
            shutil.copy2(path, target)


class PipelineSandbox:
    """One pipeline name with its own code copy, BEAM_HOME, output root and MLMD, configured by environment."""

    def __init__(self, root: Path, name: str, data_root: Path, **settings: str):
        self.root, self.name = root, name
        self.output_root = root / "out"
        self.code = copy_code(root / "code")
        self.dsl = str(self.code / "runners" / "beam_runner.py")
        self.env = {
            **os.environ,
            "PYTHONPATH": str(self.code),
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
        return self.tfx("pipeline", "create", "--pipeline_path", self.dsl)

    def edit(self, relative: str) -> None:
        """Changes a file of the sandbox's code copy (a comment: behaviour stays the same)."""
        with open(self.code / relative, "a", encoding="utf-8") as f:
            f.write(f"\n# edited at {time.time()}\n")

    def run(self, **settings: str) -> subprocess.CompletedProcess:
        return self.tfx("run", "create", "--pipeline_name", self.name,
                        env={f"DEEP_EMOTION_{k.upper()}": v for k, v in settings.items()})

    def start(self, **settings: str) -> "RunningRun":
        """Starts `tfx run create` without waiting (its own process group, output to files)."""
        return RunningRun(self, {f"DEEP_EMOTION_{k.upper()}": v for k, v in settings.items()})

    def run_and_do_when(self, condition: Callable[[], bool], action: Callable[["RunningRun"], None],
                        timeout: int = 600, poll: float = 0.05) -> subprocess.CompletedProcess:
        """Starts a run, calls action(run) once as soon as condition() holds, waits for its end."""
        run = self.start()
        try:
            run.when(condition, timeout, poll)
            action(run)
            return run.wait(timeout)
        finally:
            run.kill()

    def run_and_kill_when(self, condition: Callable[[], bool], timeout: int = 600) -> int:
        """Starts a run and SIGKILLs its whole process group as soon as condition() holds."""
        return self.run_and_do_when(condition, RunningRun.kill, timeout, poll=0.5).returncode

    def latest_run(self) -> runs.PipelineRun:
        run = runs.latest_run(self.metadata_path, self.name)
        assert run is not None, f"no run recorded in {self.metadata_path}"
        return run

    def versions(self):
        """Every name in the serving dir but the Pusher's lock file: versions and any staging left."""
        return sorted(p.name for p in self.serving_dir.iterdir() if p.name != ".push.lock") \
            if self.serving_dir.exists() else []


class RunningRun:
    """A `tfx run create` in progress; stdout and stderr go to files (a pipe would fill and stall it)."""

    def __init__(self, sandbox: PipelineSandbox, env: Dict[str, str]):
        logs = sandbox.root / "logs"
        logs.mkdir(exist_ok=True)
        stamp = f"{time.time():.6f}"
        self.stdout_path, self.stderr_path = logs / f"{stamp}.out", logs / f"{stamp}.err"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen(
                [TFX, "run", "create", "--pipeline_name", sandbox.name, "--engine", "beam"],
                env={**sandbox.env, **env}, stdout=out, stderr=err, start_new_session=True)

    def when(self, condition: Callable[[], bool], timeout: int, poll: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline and self.process.poll() is None:
            if condition():
                return
            time.sleep(poll)
        raise AssertionError(f"the run ended (or timed out) before the condition held\n{self.output()[-4000:]}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def wait(self, timeout: int = 900) -> subprocess.CompletedProcess:
        try:
            self.process.wait(timeout)
        finally:
            self.kill()
        return subprocess.CompletedProcess(self.process.args, self.process.returncode,
                                           self.stdout_path.read_text(), self.stderr_path.read_text())

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()


def explain(result: subprocess.CompletedProcess) -> str:
    """The end of a CLI call's output, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-8000:]}"
