"""Process setup every training process goes through: tf-keras, thread pools, allocator settings."""

import json
import subprocess
import sys

from conftest import TRAINING_DIR
from tf_env import ALLOCATOR_ENV, LEGACY_KERAS_ENV, WORKER_ENV, limit_malloc_arenas

PROBE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from tf_env import configure_tensorflow
tf, threads = configure_tensorflow(int(sys.argv[2]))
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


def test_a_fresh_process_gets_keras_2_its_threads_and_the_allocator():
    env = {"PATH": "/usr/bin:/bin"}  # nothing inherited: configure_tensorflow alone must set it all
    out = subprocess.run([sys.executable, "-c", PROBE, TRAINING_DIR, "1"], capture_output=True, text=True,
                         env=env, timeout=300, check=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["threads"] == {"intra_op": 1, "inter_op": 1}
    assert seen["keras_is_tf_keras"]
    for name, value in WORKER_ENV.items():
        assert seen["env"][name] == value
    assert seen["env"]["OMP_NUM_THREADS"] == "1"
