"""contract.runtime.native_stderr_without: the process's stderr comes back whole, also when threads use it at once."""
import os
import sys
import threading
import time

from contract.runtime import native_stderr_without


def _fd2():
    status = os.fstat(2)
    return status.st_dev, status.st_ino


def test_threads_capturing_at_once_leave_stderr_where_it_was_and_lose_no_line(capfd):
    """Ingestion's threads each build a face detector inside the capture. Overlapping captures used to
    leave file descriptor 2 on a deleted capture file: every later line of the run was lost."""
    before = _fd2()

    def capture(n):
        time.sleep(0.01 * n)  # each enters while the one before is still inside
        with native_stderr_without("noise"):
            os.write(2, f"kept {n}\nnoise {n}\n".encode())
            time.sleep(0.05)

    threads = [threading.Thread(target=capture, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _fd2() == before
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert sorted(line for line in err.splitlines()) == sorted([f"kept {n}" for n in range(8)] + ["after"])


def test_a_capture_inside_a_capture_of_the_same_thread_keeps_both_sets_of_lines(capfd):
    with native_stderr_without("noise"):
        os.write(2, b"outer\nnoise\n")
        with native_stderr_without("other"):
            os.write(2, b"inner\nother\n")
    sys.stderr.flush()
    assert sorted(capfd.readouterr().err.splitlines()) == ["inner", "outer"]
