"""Who uses the CPUs while Ray trains: samples every process's CPU time from /proc while a run goes on and
keeps the windows in which every training worker was busy (the steady epochs, not start-up or teardown).

The kit's local cluster shares this machine's cores between the training workers and everything Ray runs
beside them (raylets, GCS, agents, Ray Train's controller actors, the driver); on 2 cores whatever those use
comes out of the workers' time. Linux only: elsewhere it records nothing.
"""

import os
import threading
import time

TRAIN_WORKER = "ray::RayTrainWorker"
GROUPS = (
    # (group, what the command line contains); the first match wins
    ("training workers", (TRAIN_WORKER,)),
    ("Ray system processes", ("raylet", "gcs_server", "dashboard", "ray::DashboardAgent", "ray::RuntimeEnvAgent",
                              "log_monitor", "monitor.py", "ray.util.client", "ray start")),
    # Every other Ray worker process: Ray Train's controller and its helpers, the progress queue.
    ("Ray Train actors", ("ray::",)),
    ("driver", ("training.ray_training",)),
)


def _processes():
    found = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmd = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        found[pid] = ((int(fields[11]) + int(fields[12])) / tick, cmd)
    return found


def group_of(cmd):
    for group, needles in GROUPS:
        if any(n in cmd for n in needles):
            return group
    return "other (system, this benchmark)"


class BackgroundSampler:
    """A thread that reads /proc while a run goes on: `with` starts it (where /proc exists) and stops it.
    Subclasses give _run(), which returns once self._stop is set, and may give _begin(), run before it starts."""

    def __init__(self, interval):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _begin(self):
        pass

    def __enter__(self):
        if os.path.isdir("/proc/self"):
            self._begin()
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class Sampler(BackgroundSampler):
    """Start before a Ray run, stop after it. `shares()` is the CPUs each group used on average over the
    windows in which `workers` training workers were each above `busy` of a CPU."""

    def __init__(self, workers, interval=2.0, busy=0.5):
        super().__init__(interval)
        self.workers, self.busy = workers, busy
        self.windows = []

    def _run(self):
        before, started = _processes(), time.monotonic()
        while not self._stop.wait(self.interval):
            now, ended = _processes(), time.monotonic()
            seconds = ended - started
            usage = {}
            trainers = []
            for pid, (cpu, cmd) in now.items():
                if pid not in before:
                    continue
                share = (cpu - before[pid][0]) / seconds
                group = group_of(cmd)
                usage[group] = usage.get(group, 0.0) + share
                if group == "training workers":
                    trainers.append(share)
            if len(trainers) == self.workers and min(trainers) >= self.busy:
                self.windows.append(usage)
            before, started = now, ended

    def shares(self):
        if not self.windows:
            return None
        groups = sorted({g for w in self.windows for g in w})
        return {"windows": len(self.windows), "seconds_per_window": self.interval,
                "cpus": {g: sum(w.get(g, 0.0) for w in self.windows) / len(self.windows) for g in groups}}
