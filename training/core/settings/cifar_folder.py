"""What a CIFAR-10 folder holds: the DATA_DIR setting's type (checked by bash before any virtualenv exists) and
where data.py reads the batches from."""

import os

BATCHES_DIRNAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
KERAS_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".keras", "datasets", BATCHES_DIRNAME)


class CifarFilesError(ValueError):
    """DATA_DIR is missing or holds no CIFAR-10 batches."""


def locate_batches(data_dir):
    """Returns the folder holding the batches: DATA_DIR itself, or its cifar-10-batches-py child (what the
    official tarball unpacks to), so users may point at either."""
    if not os.path.isdir(data_dir):
        raise CifarFilesError(f"DATA_DIR '{data_dir}' does not exist or is not a directory")
    for candidate in (data_dir, os.path.join(data_dir, BATCHES_DIRNAME)):
        if all(os.path.isfile(os.path.join(candidate, name)) for name in TRAIN_BATCHES + (TEST_BATCH,)):
            return candidate
    raise CifarFilesError(
        f"DATA_DIR '{data_dir}' holds no CIFAR-10 batches (expected {', '.join(TRAIN_BATCHES)} and {TEST_BATCH}, "
        f"as in the {BATCHES_DIRNAME} folder of the official python tarball)"
    )
