"""contract.runtime.one_thread_per_op: TensorFlow's threads chosen before its runtime starts, or said why not.
Each case in a fresh Python process: the choice is the process's, once."""
import os
import subprocess
import sys

import pytest

from contract.runtime import REPO_ROOT

PROBE = """
import tensorflow as tf
from contract.runtime import one_thread_per_op
if {start_first}:
    tf.constant(1.0) + 1  # the runtime starts
print(one_thread_per_op())
print(tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())
"""


def probe(start_first=False, **env):
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        if name not in env:
            environment.pop(name, None)
    done = subprocess.run([sys.executable, "-c", PROBE.format(start_first=start_first)], cwd=REPO_ROOT,
                          env=environment, capture_output=True, text=True, timeout=120, check=True)
    said, threads = done.stdout.strip().splitlines()[-2:]
    return said, tuple(int(n) for n in threads.split())


def test_a_fresh_process_runs_each_op_on_one_thread_and_one_op_per_core():
    from contract.runtime import cpu_cores

    said, threads = probe()
    assert said == f"one thread per op, {cpu_cores()} ops at once"
    assert threads == (1, cpu_cores())


def test_a_process_whose_runtime_has_started_keeps_its_threads_and_says_so():
    said, threads = probe(start_first=True)
    assert "its runtime had started" in said
    assert threads == (0, 0)  # TensorFlow's defaults, untouched


@pytest.mark.parametrize("name", ["TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"])
def test_threads_chosen_through_tensorflows_own_variables_are_left_alone(name):
    said, threads = probe(**{name: "2"})
    assert "TF_NUM_INTRAOP_THREADS/TF_NUM_INTEROP_THREADS" in said
    assert threads == (0, 0)
