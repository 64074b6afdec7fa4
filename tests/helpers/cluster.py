"""A real local Ray cluster for tests, started and stopped with the kit's own scripts/lib/local_cluster.sh."""

import os
import subprocess

from tests.helpers.common import REPO_ROOT

LIB = (f"source {REPO_ROOT}/scripts/lib/common.sh; source {REPO_ROOT}/scripts/lib/venv.sh; "
       f"source {REPO_ROOT}/scripts/lib/local_cluster.sh")


def start_cluster(state_dir, workers, cpus, port, pin_cpus=False, messages=None, **settings):
    """The cluster's RAY_* variables; `settings` go to local_cluster.sh's environment, and what it said to the
    user is appended to `messages` (a list) when one is given."""
    script = f"{LIB}; local_cluster::start {workers} {cpus} {state_dir} >&2; local_cluster::exported_env"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, LOCAL_RAY_PORT=str(port), LOCAL_RAY_PIN_CPUS="1" if pin_cpus else "0",
                                   **settings))
    if proc.returncode != 0:
        stop_cluster(state_dir)
        raise RuntimeError(f"local cluster did not start: {proc.stderr[-2000:]}")
    if messages is not None:
        messages.extend(proc.stderr.splitlines())
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def stop_cluster(state_dir):
    subprocess.run(["bash", "-c", f"{LIB}; local_cluster::stop {state_dir}"], capture_output=True, timeout=120)
