"""Shared test setup: training/ on sys.path (the scripts import each other flat), the `slow` marker, and
small data fixtures written in the real formats."""

import os
import pickle
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINING_DIR = os.path.join(REPO_ROOT, "training")
for path in (TRAINING_DIR, REPO_ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts Ray or trains the model for real (runs in CI too)")


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


@pytest.fixture
def tiny_cifar_dir(tmp_path):
    """A cifar-10-batches-py folder with 5 x 20 training and 30 test images."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", 20, seed=i)
    write_cifar_batch(folder / "test_batch", 30, seed=99)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [b"airplane"] * 10}, handle)
    return folder


@pytest.fixture
def python_env():
    """Environment for subprocess runs of the kit's Python scripts, without settings leaking from the caller."""
    env = {k: v for k, v in os.environ.items() if k not in (
        "EPOCHS", "BATCH_SIZE", "NUM_WORKERS", "CPUS_PER_WORKER", "DATASET", "DATA_DIR", "TRAIN_SAMPLES",
        "TEST_SAMPLES", "RESULTS_DIR", "RAY_ADDRESS", "LEARNING_RATE", "SEED", "OMP_NUM_THREADS")}
    env["PYTHONPATH"] = TRAINING_DIR
    return env


def configured_tf():
    """TensorFlow with one thread, configured by whichever test module imports it first (the pools can only be
    set before TensorFlow's runtime starts)."""
    from tf_env import configure_tensorflow

    try:
        tf, _ = configure_tensorflow(1)
    except RuntimeError:
        import tensorflow as tf
    return tf
