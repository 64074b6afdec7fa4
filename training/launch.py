"""The one way the kit launches a training run: the single benchmark (scripts/run-benchmark.sh), the scaling
sweep's activity (training/sweep/activities.py) and the kit's own benchmark (benchmarks/run.py) all come here,
so "the baseline with T threads" or "Ray with N workers" means the same command, environment and process
handling everywhere and is changed in one place.

    command(program, target, values, ...)   the argv of one run: the settings table's builder (trainer_argv) for
                                            this machine, or scripts/lib/cluster_benchmark.sh pod-run for a pod
    start(argv, ...) / stop(process)        the run as a child in its own process group that dies with its
                                            parent; stop() ends the whole group (Ray's driver included)
    LocalCluster(workers, cpus)             scripts/lib/local_cluster.sh's start/stop, from Python
    python -m training.launch PROGRAM NAME=VALUE...   one local run, its output on stdout (run-benchmark.sh)

Why Python rather than a bash function: two of the three callers are Python (the sweep's activity must
heartbeat and react to cancellation while the run goes on), and the bash one needs only the command line.
"""

import ctypes
import os
import signal
import subprocess
import sys
import tempfile

from training.core import settings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(REPO_ROOT, "scripts", "lib")
STOP_GRACE_SECONDS = 20  # a trainer given SIGINT says "interrupted" and exits; one that hangs gets SIGKILL
PR_SET_PDEATHSIG = 1
TARGETS = ("local", "k8s")


class LaunchError(Exception):
    """The run could not be started (the Ray cluster did not come up): an infrastructure failure, exit 4."""


def command(program, target="local", values=None, environ=None, run_dir=None, cpus=1):
    """The argv of one training run. Local: `python -m training.<trainer> --flags`. k8s: the same trainer in a
    pod through cluster_benchmark.sh pod-run (the head pod for Ray, a worker pod with `cpus` CPUs for the
    baseline), whose results file ends up as RUN_DIR/results.json."""
    if target == "local":
        return [sys.executable] + settings.trainer_argv(program, "local", values, environ)
    if target != "k8s":
        raise settings.SettingsError(f"target must be one of {', '.join(TARGETS)}, got '{target}'")
    result_name = os.path.basename(str((values or {})["OUTPUT"]))
    argv = settings.trainer_argv(program, "pod", values, environ)
    return ["bash", os.path.join(LIB, "cluster_benchmark.sh"), "pod-run", program, str(cpus), result_name,
            run_dir, "--", "python"] + argv


def _die_with_parent():
    """In the child, before exec: the kernel kills it when its parent dies, even by SIGKILL, so no trainer trains
    on (and skews the next attempt's timing) after whoever launched it is gone. Linux only."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def child_options(env=None):
    """Popen keyword arguments of every run: its own process group (so stop() reaches the whole run), dies with
    its parent, unbuffered output, started from the repository root (where `python -m training...` resolves)."""
    return {"cwd": REPO_ROOT, "env": {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
            "stdin": subprocess.DEVNULL, "start_new_session": True, "preexec_fn": _die_with_parent}


def start(argv, env=None, stdout=None):
    """Starts one run; `stdout` is a file (a log) or None for this process's own output."""
    return subprocess.Popen(argv, stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
                            **child_options(env))


def signal_group(pid, sig):
    """Sends `sig` to the run's whole process group; False when the group is gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True


def stop(process, grace=STOP_GRACE_SECONDS):
    """SIGINT to the run's process group (the trainers exit saying 'interrupted'), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGKILL, 10)):
        if not signal_group(process.pid, sig):
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Whatever of the group outlived the leader (a Ray driver's helpers) goes too.
    signal_group(process.pid, signal.SIGKILL)
    return process.returncode


def _bash(script, env=None):
    return subprocess.run(["bash", "-c", f"source {LIB}/common.sh; source {LIB}/local_cluster.sh; {script}"],
                          capture_output=True, text=True, env=env)


class LocalCluster:
    """A local Ray cluster of one head and `workers` worker nodes of `cpus` CPUs, started and stopped by
    local_cluster.sh. `env` holds RAY_ADDRESS and the auth settings the runs against it need."""

    def __init__(self, workers, cpus, port=None):
        self.workers, self.cpus, self.port = workers, cpus, port
        self.state_dir, self.env = None, {}

    def start(self):
        self.state_dir = tempfile.mkdtemp(prefix="kit-ray.")
        env = dict(os.environ, **({"LOCAL_RAY_PORT": str(self.port)} if self.port else {}))
        proc = _bash(f"local_cluster::start {self.workers} {self.cpus} {self.state_dir} >&2; "
                     f"local_cluster::exported_env", env)
        if proc.returncode != 0:
            self.stop()
            raise LaunchError(f"the local Ray cluster did not start: {proc.stderr.strip()[-500:]}")
        self.env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        return self

    def ensure(self, *_):
        """Starts the cluster on first use (a sweep whose Ray runs all finished before starts none); its env."""
        if self.state_dir is None:
            self.start()
        return self.env

    def stop(self):
        if self.state_dir:
            _bash(f"local_cluster::stop {self.state_dir}")
            self.state_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *_exc):
        self.stop()


def main(argv):
    """python -m training.launch PROGRAM NAME=VALUE...: one run on this machine, with the environment's other
    settings as flags; exits with the trainer's code (130 when stopped by Ctrl-C, after stopping its group)."""
    if len(argv) < 1 or argv[0] not in settings.TRAINERS:
        settings.fail(f"usage: python -m training.launch {'|'.join(settings.TRAINERS)} NAME=VALUE...")
    values = dict(word.split("=", 1) for word in argv[1:] if "=" in word)
    try:
        args = command(argv[0], "local", values)
    except settings.SettingsError as err:
        settings.fail(str(err))
    process = start(args)
    try:
        return process.wait()
    except KeyboardInterrupt:  # the run is in a session of its own: the terminal's Ctrl-C reached only us
        stop(process)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
