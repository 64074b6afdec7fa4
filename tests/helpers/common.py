"""What many tests share: the repository's paths, the environment the kit's programs run in, TensorFlow
configured once, and CIFAR-10 files written in the real format."""

import os
import pickle
import sys

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAINING_DIR = os.path.join(REPO_ROOT, "training")
# Settings a caller's shell may have exported; a test's subprocess must not inherit them.
LEAKY_SETTINGS = ("EPOCHS", "BATCH_SIZE", "NUM_WORKERS", "CPUS_PER_WORKER", "DATASET", "DATA_DIR", "TRAIN_SAMPLES",
                  "TEST_SAMPLES", "RESULTS_DIR", "RAY_ADDRESS", "LEARNING_RATE", "SEED", "OMP_NUM_THREADS")


def kit_env(base=None):
    """An environment in which `python -m training.X` finds the kit wherever the process starts, as the kit's
    bash scripts arrange with PYTHONPATH (scripts/lib/common.sh)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def program(module, *args):
    """The argv of one of the kit's Python programs, e.g. program("training.compare", "--results-dir", d)."""
    return [sys.executable, "-m", module, *map(str, args)]


def write_cifar_batch(path, count, seed):
    """One batch in CIFAR-10's python format: a pickled dict of bytes keys, rows of 3072 channel-major pixels."""
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"test batch",
        b"labels": [int(v) for v in rng.integers(0, 10, size=count)],
        b"data": rng.integers(0, 256, size=(count, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(count)],
    }
    with open(path, "wb") as handle:
        pickle.dump(batch, handle)
    return batch


def configured_tf():
    """TensorFlow with one thread, configured by whichever test module imports it first (the pools can only be
    set before TensorFlow's runtime starts)."""
    from training.core.tf_env import configure_tensorflow

    try:
        tf, _ = configure_tensorflow(1)
    except RuntimeError:
        import tensorflow as tf
    return tf
