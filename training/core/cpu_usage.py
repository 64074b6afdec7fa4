"""Where a training process's wall time goes: the CPU time it used, and how long its busiest thread (the one
running TensorFlow's kernels) was ready to run but waited for a CPU that something else had: the kernel's
run-queue delay, from /proc/self/task/*/schedstat.

A worker slower than it should be is either doing more work (CPU time up) or not getting its CPU (the wait
up); the benchmark needs to tell the two apart. Linux only: elsewhere the waits are None.
"""

import os
import resource


def _threads():
    """{thread id: (ns on a CPU, ns runnable but waiting)} for this process's threads."""
    found = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as handle:
                ran, waited = handle.read().split()[:2]
            found[tid] = (int(ran), int(waited))
        except (OSError, ValueError):
            continue  # a thread that ended between the listing and the read
    return found


def snapshot():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": usage.ru_utime + usage.ru_stime, "threads": _threads()}


def since(start):
    """CPU seconds this process used since `start` (a snapshot()), and the run-queue seconds its busiest thread
    over that interval waited."""
    now = snapshot()
    wait = None
    if now["threads"] is not None and start["threads"] is not None:
        before = start["threads"]
        deltas = [(ran - before.get(tid, (0, 0))[0], waited - before.get(tid, (0, 0))[1])
                  for tid, (ran, waited) in now["threads"].items()]
        if deltas:
            wait = max(0, max(deltas)[1]) / 1e9
    return {"cpu_seconds": now["cpu"] - start["cpu"], "cpu_wait_seconds": wait}
