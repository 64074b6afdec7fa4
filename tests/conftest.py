"""The `slow` marker, the environment every test process starts with, and small data fixtures written in the
real formats. Tests import the kit as packages (`training.core.data`, `tests.helpers.stub_tools`): pytest runs from the
repository root, which `python -m pytest` puts first on the path."""

import os
import pickle

import pytest

from tests.helpers.common import LEAKY_SETTINGS, kit_env, write_cifar_batch

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts Ray or trains the model for real (runs in CI too)")


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
    """Environment for subprocess runs of the kit's Python programs, without settings leaking from the caller."""
    return kit_env({k: v for k, v in os.environ.items() if k not in LEAKY_SETTINGS})
