"""Process set-up shared by every entry point (CLI, runners, notebooks, tests).

TFT and TFMA in TFX 1.16 are typed against tf_keras (Keras 2), and TensorFlow decides which Keras
`tf.keras` means when it is first imported, so these variables must be set before anything imports
TensorFlow. The Makefile exports them too; setting them here keeps `deep-emotion` right when it is
started some other way.
"""
import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
import time
import warnings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def quiet_tensorflow() -> None:
    """Select Keras 2, enable oneDNN and silence TensorFlow's C++ start-up chatter (call before
    importing TF).

    Level 3 also hides TF 2.16's spurious "Unable to register cuDNN/cuFFT/cuBLAS factory" lines,
    printed at ERROR level on every import; real failures still raise Python exceptions.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN kernels: TF 2.16 leaves them off on AMD CPUs; on, Deep-Emotion trains ~2.5x faster
    # (bench/model.py). Results differ from the default kernels only in float rounding.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity; os.cpu_count() where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def one_thread_per_op() -> str:
    """Have TensorFlow run each op on one thread, as many ops at once as there are cores, when it
    trains on the CPU: call before TensorFlow's runtime starts (the first op), in the process's
    entry point. Returns what was done, for the log.

    Why: Deep-Emotion's convolutions have 1-10 channels; shared between two threads each op spends
    more in hand-offs than it gains. The Trainer splits every batch into one slice per core
    (trainer/train.py, data_parallel_train_step), and with an op per thread the slices run side by
    side: bfloat16 training at batch 128 on 2 cores, 8,537 -> 9,888 img/s model alone and 7,201 ->
    9,173 through train()'s augmented input (bench/model.py). Not done on a machine with a GPU, nor
    when TF_NUM_INTRAOP_THREADS or TF_NUM_INTEROP_THREADS choose the threads, nor once the runtime
    has started (TensorFlow then refuses; training still runs, unsliced and slower).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel  # after quiet_tensorflow

    if any(os.environ.get(name) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")):
        return "TensorFlow's threads as TF_NUM_INTRAOP_THREADS/TF_NUM_INTEROP_THREADS set them"
    if tf.config.list_physical_devices("GPU"):
        return "TensorFlow's default threads (a GPU trains)"
    cores = cpu_cores()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(cores)
    except RuntimeError:
        return (f"TensorFlow's threads as they were (its runtime had started: intra-op "
                f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, inter-op "
                f"{tf.config.threading.get_inter_op_parallelism_threads() or 'default'})")
    return f"one thread per op, {cores} ops at once"


@contextlib.contextmanager
def native_stderr_without(*noise: str):
    """Run a block with file descriptor 2 captured, then write back every line that contains none
    of `noise`.

    For C++ code that logs straight to stderr through absl (TFLite's converter and interpreter),
    which TF_CPP_MIN_LOG_LEVEL does not reach. Nothing else is lost: other lines, errors included,
    appear when the block ends. File descriptor 2 is the process's, so one block at a time
    (_NATIVE_STDERR): two threads that overlapped (ingestion's threads each make a face detector)
    left fd 2 on the first one's deleted capture file, and every later line of the run vanished.
    """
    with _NATIVE_STDERR:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                lines = captured.read().decode("utf-8", errors="replace").splitlines(keepends=True)
                kept = "".join(line for line in lines if not any(n in line for n in noise))
                if kept:
                    sys.stderr.write(kept)
                    sys.stderr.flush()


_NATIVE_STDERR = threading.RLock()  # reentrant: a block inside a block of the same thread is fine


class _PipelineProgress(logging.Filter, logging.Formatter):
    """Keeps warnings, errors and our own code's messages, and shows TFX's node start/finish lines
    as one progress line each with the node's wall time (as a filter and formatter of one handler;
    records are not modified, other handlers see them as logged)."""

    _NODE = re.compile(r"node (\S+) is (running|finished)\.")
    # Warnings TFX 1.16 / Beam print on every healthy run; nothing a user can or should act on.
    _HARMLESS = ("ArtifactQuery.property_predicate is not supported",
                 "does not have payload_format custom property",
                 "Couldn't find python-snappy")
    _OWN_CODE = tuple(os.path.join(REPO_ROOT, d) + os.sep for d in ("contract", "components", "trainer", "pipeline", "runners", "deep_emotion"))

    def __init__(self):
        logging.Filter.__init__(self)
        logging.Formatter.__init__(self, "%(asctime)s %(levelname).1s %(message)s", "%H:%M:%S")
        self._started = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return not any(h in message for h in self._HARMLESS)
        return bool(self._NODE.match(message)) or "cached execution" in message \
            or record.pathname.startswith(self._OWN_CODE)

    def formatMessage(self, record: logging.LogRecord) -> str:
        node = self._NODE.match(record.message)
        if not node:
            return super().formatMessage(record)
        name, state = node.groups()
        if state == "running":
            self._started[name] = record.created
            text = f"{name} ..."
        else:
            text = f"{name} done ({record.created - self._started.get(name, record.created):.1f} s)"
        return f"{self.formatTime(record, self.datefmt)} {record.levelname[0]} {text}"


def pipeline_progress_logging(verbose: bool = False) -> None:
    """Readable pipeline logs: one line per component and our own messages (TFX's INFO level is
    thousands of lines of artifact protos per run). verbose=True keeps everything."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    handler = logging.StreamHandler()
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s", "%H:%M:%S"))
    else:
        progress = _PipelineProgress()
        handler.addFilter(progress)
        handler.setFormatter(progress)
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("absl").propagate = True
