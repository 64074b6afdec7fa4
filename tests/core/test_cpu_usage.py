"""The CPU accounting each epoch record carries: CPU seconds used, and the run-queue wait of the busiest thread."""

import os
import subprocess
import sys
import time

import pytest

from training.core import cpu_usage


def _spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_cpu_seconds_follow_the_work_done():
    start = cpu_usage.snapshot()
    _spin(0.3)
    used = cpu_usage.since(start)
    assert 0.2 <= used["cpu_seconds"] <= 1.0
    assert used["cpu_wait_seconds"] is None or used["cpu_wait_seconds"] >= 0


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="run-queue waits need Linux /proc")
def test_a_thread_sharing_its_cpu_with_a_busy_process_is_seen_waiting():
    cpu = min(os.sched_getaffinity(0))
    # A busy process on the same single CPU: this process's spinning thread now gets about half of it.
    rival = subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c",
                              "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end: pass"])
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})
        time.sleep(0.2)
        start = cpu_usage.snapshot()
        _spin(1.0)
        shared = cpu_usage.since(start)
    finally:
        os.sched_setaffinity(0, before)
        rival.kill()
        rival.wait()
    assert shared["cpu_wait_seconds"] >= 0.25, shared
    assert shared["cpu_seconds"] <= 0.85, shared
