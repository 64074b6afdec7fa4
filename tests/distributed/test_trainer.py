"""The kit's Ray Train trainer against the pinned Ray: the helpers it leaves out, the one it starts early, and the
TensorFlow import each training worker's process starts with."""

import importlib
import os
import subprocess
import sys

from tests.helpers.common import REPO_ROOT
from training.core.tf_env import TF_THREADS_VAR
from training.distributed.runtime_env import TRAIN_ENV, train_worker_env

CALLBACKS = """
import sys
from training import ray_training
from training.distributed.ray_run_config import RayRunConfig
from training.distributed.runtime_env import job_runtime_env
job_runtime_env("10.0.0.5:6379")  # the driver's environment as for any cluster: Ray Train's switches in it
config = RayRunConfig.from_args(ray_training.parse_args(["--num-workers", "2", "--dataset", "digits"]))
trainer = ray_training.make_trainer(config, None)
print(" ".join(sorted(type(c).__name__ for c in trainer._create_default_callbacks())))
print(trainer.run_config.worker_runtime_env)
"""


def test_the_trainer_leaves_out_the_helpers_a_run_without_ray_datasets_does_not_use():
    proc = subprocess.run([sys.executable, "-c", CALLBACKS], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    names, worker_env = proc.stdout.strip().splitlines()
    names = set(names.split())
    # What the run needs stays: TF_CONFIG's backend, the checkpoints' reports, the user's callbacks.
    assert {"BackendSetupCallback", "AcceleratorSetupCallback", "UserCallbackHandler"} <= names
    # What it does not use goes: a DatasetManager actor, a PlacementGroupCleaner actor, and (TRAIN_ENV's
    # RAY_CHDIR_TO_TRIAL_DIR=0) the round of calls that changes every worker's directory.
    assert not names & {"DatasetsCallback", "PlacementGroupCleanerCallback", "WorkingDirectorySetupCallback"}
    assert TRAIN_ENV["RAY_CHDIR_TO_TRIAL_DIR"] == "0"
    assert worker_env == str(train_worker_env(1))


HOOK_RUN = """
import importlib, os, sys
module, function = sys.argv[1].rsplit(".", 1)
getattr(importlib.import_module(module), function)()
from training.core import tf_env
if tf_env._import_thread is not None:
    tf_env._import_thread.join()
print(tf_env.import_started_by, "tensorflow" in sys.modules, os.environ.get("OMP_NUM_THREADS"))
"""


def run_hook(hook, threads):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # set by other tests in this process
    proc = subprocess.run([sys.executable, "-c", HOOK_RUN, hook], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(env, PYTHONPATH=str(REPO_ROOT), **{TF_THREADS_VAR: threads}))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_each_training_worker_starts_importing_tensorflow_as_its_process_starts():
    """Ray runs the function this variable (Ray's own) names in every process started with it, before the process
    takes any work; the integration test sees the import started so in real workers."""
    from ray._private import ray_constants

    env_vars = train_worker_env(2)["env_vars"]
    hook = env_vars[ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR]
    assert env_vars[TF_THREADS_VAR] == "2"
    assert run_hook(hook, "2") == ["process", "start", "True", "2"]
    # A bad value never fails the worker (a failing hook would): nothing starts, and the worker imports it later.
    assert run_hook(hook, "two") == ["None", "False", "None"]


def test_the_autoscaling_coordinator_the_driver_starts_is_ray_trains_own():
    from ray.train.v2._internal.execution.scaling_policy import autoscaling_coordinator_client as client
    from training.distributed import trainer

    # The controller gets or creates the coordinator through this same function, by its name: the driver's
    # early call makes the actor the controller then finds.
    module = importlib.import_module("ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator")
    assert client.get_or_create_autoscaling_coordinator is module.get_or_create_autoscaling_coordinator
    assert "get_or_create_autoscaling_coordinator" in trainer.start_autoscaling_coordinator.__code__.co_names
