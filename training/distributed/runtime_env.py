"""The Ray runtime environment of every job the kit starts: its code and the environment TensorFlow needs."""

import os

import training
from training.core.tf_env import TF_THREADS_VAR, WORKER_ENV

# Ray Train's own switches for every run of the kit. No preemption watcher, an actor per run that polls for cloud
# nodes being reclaimed (a laptop or Minikube has none): one process and about 1.4 s of CPU fewer while the workers
# start. The controller polls its workers every 0.5 s instead of 2 s, so it notices a finished run sooner: the
# worker group's end 1.13 s -> 0.59 s, throughput within the spread (benchmarks/after_fit_probe.py; BENCHMARKS.md,
# "What was tried"). Workers stay in their own working directory instead of changing into the run's folder, a
# round of calls to every worker while the group starts that the kit has no use for (it names every path in
# full). Set in the environment, the user's own value wins on the local cluster (local_node.py).
TRAIN_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",
             "RAY_CHDIR_TO_TRIAL_DIR": "0"}
# What every process of a job needs in its environment from its start: the driver (Ray Train reads its switches
# there and in its controller) and every worker.
JOB_ENV = {**WORKER_ENV, **TRAIN_ENV}
# Set by scripts/lib/local_cluster.sh to the checkout its nodes run from (local_node.py gives them WORKER_ENV).
NODES_CODE_VAR = "KIT_RAY_NODES_CODE"


def _checkout():
    return os.path.dirname(os.path.dirname(os.path.abspath(training.__file__)))


def is_local_address(address):
    """True for no address (a private cluster) and for a cluster at a loopback address (the kit's local one)."""
    host = (address or "127.0.0.1").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def kit_runtime_env():
    """The `training` package shipped to every worker (py_modules: Ray uploads it, so a pod or a node runs the
    driver's code, not whatever its image holds), and tf-keras with the allocator settings in every process,
    which the image's ENV alone would not reach on a cluster started outside it."""
    return {
        "py_modules": [os.path.dirname(os.path.abspath(training.__file__))],
        "excludes": ["__pycache__"],
        "env_vars": dict(JOB_ENV),
    }


def job_runtime_env(ray_address, environ=os.environ):
    """What a job needs shipped: nothing on a cluster whose nodes already run this checkout with JOB_ENV (the
    kit's local cluster, or the private one this process starts, which inherits `environ` once it holds both),
    so no runtime environment is set up for the job; kit_runtime_env() anywhere else (a pod, a cluster
    started by hand), where the shipped package is what makes the workers run the driver's code."""
    environ.update(TRAIN_ENV)
    if not ray_address:
        environ.update(JOB_ENV)
        paths = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        environ["PYTHONPATH"] = os.pathsep.join([_checkout(), *[p for p in paths if p != _checkout()]])
        return None
    nodes_code = environ.get(NODES_CODE_VAR)
    if is_local_address(ray_address) and nodes_code and os.path.realpath(nodes_code) == os.path.realpath(_checkout()):
        return None
    return kit_runtime_env()


def train_worker_env(cpus_per_worker):
    """RunConfig's worker_runtime_env: what only Ray Train's worker processes get, on top of the job's. Ray's
    worker_process_setup_hook is honoured for a job's runtime_env but not an actor's (Ray 2.60 converts it into this
    environment variable in ray.init only), so the variable is set directly: each training worker starts importing
    TensorFlow as its process starts (tf_env.import_at_process_start)."""
    from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR

    return {"env_vars": {WORKER_PROCESS_SETUP_HOOK_ENV_VAR: "training.core.tf_env.import_at_process_start",
                         TF_THREADS_VAR: str(cpus_per_worker)}}
