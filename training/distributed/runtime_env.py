"""The Ray runtime environment of every job the kit starts: its code and the environment TensorFlow needs."""

import os

import training
from training.core.tf_env import WORKER_ENV


def kit_runtime_env():
    """The `training` package shipped to every worker (py_modules: Ray uploads it, so a pod or a node runs the
    driver's code, not whatever its image holds), and tf-keras with the allocator settings in every process,
    which the image's ENV alone would not reach on a cluster started outside it."""
    return {
        "py_modules": [os.path.dirname(os.path.abspath(training.__file__))],
        "excludes": ["__pycache__"],
        "env_vars": dict(WORKER_ENV),
    }
