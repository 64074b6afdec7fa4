"""Every process a Ray run starts, when, and what CPU it took: samples /proc while a run goes on.

A process's start time is exact (the kernel's start tick, /proc/PID/stat); its name is the last title seen (Ray
renames a worker `ray::IDLE` -> `ray::TrainController` once an actor takes it); its CPU seconds are the last
reading before it ended. Only the processes started after the trace began are kept: what the run itself cost.
Linux only: elsewhere the trace is empty.
"""

import os

from benchmarks.cpu_sampler import BackgroundSampler


def _boot_time():
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("btime "):
                return int(line.split()[1])
    return 0


def _read(pid, boot, tick):
    """(start, cpu_seconds, title, parent) of a process, or None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except (OSError, IndexError):
        return None
    title = " ".join(part.decode(errors="replace") for part in argv[:4] if part)
    return boot + int(fields[19]) / tick, (int(fields[11]) + int(fields[12])) / tick, title, int(fields[1])


def short_name(title):
    """A process's role from its title: a Ray actor or worker title as it is, else the program."""
    if title.startswith("ray::"):
        return title.split()[0]
    for needle, name in (("gcs_server", "gcs_server"), ("raylet", "raylet"), ("dashboard/agent.py", "dashboard agent"),
                         ("runtime_env/agent", "runtime_env agent"), ("log_monitor", "log_monitor"),
                         ("training.ray_training", "driver (training.ray_training)"),
                         ("default_worker.py", "ray worker (not yet an actor)")):
        if needle in title:
            return name
    return os.path.basename(title.split()[0]) if title else "?"


class ProcessTrace(BackgroundSampler):
    """Use as a context manager around a run; `processes(roots)` lists what started during it under `roots`."""

    def __init__(self, interval=0.1):
        super().__init__(interval)
        self.seen = {}
        self.parents = {}

    def _begin(self):
        self._boot, self._tick = _boot_time(), os.sysconf("SC_CLK_TCK")
        self._before = set(filter(str.isdigit, os.listdir("/proc")))
        for pid in self._before:
            found = _read(pid, self._boot, self._tick)
            if found is not None:
                self.parents[int(pid)] = found[3]

    def _sample(self):
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if pid in self._before:
                continue
            found = _read(pid, self._boot, self._tick)
            if found is not None:
                start, cpu, title, self.parents[int(pid)] = found
                # A title that is still the interpreter's argv is not the last word: keep Ray's later names.
                previous = self.seen.get(pid)
                if previous and previous["title"].startswith("ray::") and not title.startswith("ray::"):
                    title = previous["title"]
                self.seen[pid] = {"pid": int(pid), "start": start, "cpu_seconds": cpu, "title": title}

    def _run(self):
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                self._sample()
                return

    def _under(self, pid, roots):
        for _ in range(64):
            if pid in roots:
                return True
            if pid <= 1:
                return False
            pid = self.parents.get(pid, 0)
        return False

    def processes(self, roots):
        """[{pid, start, cpu_seconds, title, name}] started during the trace by one of `roots` (pids) or their
        descendants, in order of start."""
        rows = [dict(p, name=short_name(p["title"])) for p in self.seen.values() if self._under(p["pid"], set(roots))]
        return sorted(rows, key=lambda r: r["start"])
