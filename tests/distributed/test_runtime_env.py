"""What a job ships to its workers, and what the driver imports to start one."""

import os
import subprocess
import sys

from tests.helpers.common import REPO_ROOT
from training.distributed.runtime_env import JOB_ENV, NODES_CODE_VAR, TRAIN_ENV, is_local_address, job_runtime_env
from training.core.tf_env import WORKER_ENV


def test_a_private_cluster_gets_the_code_and_environment_from_the_driver_and_ships_nothing():
    environ = {"PYTHONPATH": "/elsewhere"}
    assert job_runtime_env(None, environ) is None
    assert {k: environ[k] for k in JOB_ENV} == JOB_ENV
    # The checkout first: the private cluster's workers import the driver's code.
    assert environ["PYTHONPATH"].split(os.pathsep) == [os.path.realpath(REPO_ROOT), "/elsewhere"]


def test_the_kits_local_cluster_running_this_checkout_gets_nothing_shipped():
    environ = {NODES_CODE_VAR: str(REPO_ROOT)}
    assert job_runtime_env("127.0.0.1:6390", environ) is None
    assert {k: environ[k] for k in TRAIN_ENV} == TRAIN_ENV


def test_any_other_cluster_gets_the_package_and_the_environment_shipped():
    for address, environ in (("auto", {}), ("127.0.0.1:6390", {}),
                             ("127.0.0.1:6390", {NODES_CODE_VAR: "/another/checkout"}),
                             ("10.0.0.5:6379", {NODES_CODE_VAR: str(REPO_ROOT)})):
        shipped = job_runtime_env(address, environ)
        assert shipped["py_modules"] == [os.path.join(REPO_ROOT, "training")], (address, environ)
        assert shipped["env_vars"] == JOB_ENV == {**WORKER_ENV, **TRAIN_ENV}


def test_only_no_address_and_loopback_addresses_are_this_machines_cluster():
    assert is_local_address(None) and is_local_address("")
    assert is_local_address("127.0.0.1:6390") and is_local_address("localhost:6390")
    assert is_local_address("[::1]:6390")
    assert not is_local_address("auto") and not is_local_address("10.0.0.5:6379")


def test_the_driver_builds_its_trainer_without_importing_tensorflow():
    """TensorflowBackend instead of TensorflowTrainer: TensorFlow stays out of the driver (and of Ray Train's
    controller, which unpickles the same backend config)."""
    code = """
import sys
from training import ray_training
from training.distributed.ray_run_config import RayRunConfig
config = RayRunConfig.from_args(ray_training.parse_args(["--num-workers", "2", "--dataset", "digits"]))
trainer = ray_training.make_trainer(config, None)
assert type(trainer.backend_config).__name__ == "TensorflowBackend", trainer.backend_config
print(sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.")))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
