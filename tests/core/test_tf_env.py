"""Process setup every training process goes through: tf-keras, thread pools, allocator settings."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.common import REPO_ROOT
from training.core.tf_env import ALLOCATOR_ENV, LEGACY_KERAS_ENV, WORKER_ENV, limit_malloc_arenas

PROBE = """
import json, os, sys
from training.core.tf_env import configure_tensorflow, start_import
if len(sys.argv) > 2:  # the Ray worker's way: the import started early on a thread, still running or done
    start_import(int(sys.argv[1]))
tf, threads = configure_tensorflow(int(sys.argv[1]))
import tf_keras
print(json.dumps({"threads": threads, "env": dict(os.environ),
                  "keras_is_tf_keras": tf.keras.Model is tf_keras.Model}))
"""


def test_worker_environment_holds_keras_and_allocator_settings():
    assert WORKER_ENV == {**LEGACY_KERAS_ENV, **ALLOCATOR_ENV}
    assert WORKER_ENV["TF_USE_LEGACY_KERAS"] == "1"
    assert WORKER_ENV["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    assert WORKER_ENV["MALLOC_ARENA_MAX"] == "1"


def test_arena_limit_applies_on_glibc():
    # CI and the image are glibc Linux: there the limit must take effect, not fail silently.
    assert limit_malloc_arenas() is True


@pytest.mark.parametrize("early_import", [False, True], ids=["imported-when-configured", "imported-early"])
def test_a_fresh_process_gets_keras_2_its_threads_and_the_allocator(early_import):
    env = {"PATH": "/usr/bin:/bin"}  # nothing inherited: configure_tensorflow alone must set it all
    argv = [sys.executable, "-c", PROBE, "1"] + (["early"] if early_import else [])
    out = subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300,
                         check=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["threads"] == {"intra_op": 1, "inter_op": 1}
    assert seen["keras_is_tf_keras"]
    for name, value in WORKER_ENV.items():
        assert seen["env"][name] == value
    assert seen["env"]["OMP_NUM_THREADS"] == "1"


PIN_PROBE = """
import json, os, sys
from training.core.tf_env import COMPUTE_THREAD_PREFIX, configure_tensorflow, pin_compute_threads, worker_cpus
try:
    cpus = worker_cpus()
except RuntimeError as err:
    print(json.dumps({"error": str(err)}))
    sys.exit(0)
tf, _ = configure_tensorflow(1)
tf.reduce_sum(tf.matmul(tf.ones((64, 64)), tf.ones((64, 64)))).numpy()  # starts TensorFlow's pools
pinned = pin_compute_threads(cpus) if cpus else 0
threads = {}
for tid in os.listdir("/proc/self/task"):
    name = open(f"/proc/self/task/{tid}/comm").read().strip()
    threads.setdefault(name.startswith(COMPUTE_THREAD_PREFIX), set()).update(os.sched_getaffinity(int(tid)))
print(json.dumps({"cpus": cpus, "pinned": pinned, "compute": sorted(threads.get(True, ())),
                  "others": sorted(threads.get(False, ()))}))
"""


def _pin_in_fresh_process(value):
    env = {k: v for k, v in os.environ.items() if k != "KIT_WORKER_CPUS"}
    if value is not None:
        env["KIT_WORKER_CPUS"] = value
    out = subprocess.run([sys.executable, "-c", PIN_PROBE], env=env, cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_worker_cpus_from_the_local_cluster_hold_only_the_compute_threads():
    mine = sorted(os.sched_getaffinity(0))
    last = mine[-1]
    held = _pin_in_fresh_process(str(last))
    assert held["cpus"] == [last] and held["pinned"] >= 1
    assert held["compute"] == [last], "TensorFlow's op threads run on the worker's CPU"
    assert held["others"] == mine, "every other thread (tf.data, gRPC, Ray) may still run anywhere"
    # Unset (a Kubernetes pod, or a private Ray): nothing is pinned.
    free = _pin_in_fresh_process(None)
    assert free["cpus"] is None and free["pinned"] == 0 and free["compute"] == mine


def test_a_bad_worker_cpu_list_names_the_variable():
    assert "KIT_WORKER_CPUS='zero' is not a CPU list (allowed:" in _pin_in_fresh_process("zero")["error"]
    assert "names CPUs this process may not use" in _pin_in_fresh_process("4096")["error"]
