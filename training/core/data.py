"""The one data loader of the kit: CIFAR-10, synthetic CIFAR-shaped data, or scikit-learn's digits.

Every split is made here, from the seed, so the baseline and each Ray worker see the same train, validation and
test images. Images stay uint8 until batched (normalize_batch), which keeps a 50,000-image set at 150 MB.
"""

import importlib.util
import os
import pickle
from dataclasses import dataclass

import numpy as np

from training.core.settings import cifar_folder, datasets
from training.core.settings.datasets import DIGITS_TEST_FRACTION
from training.core.settings.errors import SettingsError

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
PREFETCH_BATCHES = 2


class DataError(ValueError):
    """The data cannot be loaded as asked; the message names the setting to change."""


@dataclass
class Dataset:
    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    # False for synthetic data: its labels are random, so any accuracy is chance.
    accuracy_meaningful: bool = True

    def sizes(self):
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def normalize_batch(images):
    """uint8 pixels to float32 in [0, 1]; works on numpy arrays and tensors."""
    return images / np.float32(255.0) if isinstance(images, np.ndarray) else _tf_normalize(images)


def _tf_normalize(images):
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 255.0


def _read_cifar_batch(path):
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except Exception as err:  # a truncated or foreign file: say which one
        raise DataError(f"DATA_DIR file '{path}' is not a readable CIFAR-10 batch ({type(err).__name__}: {err})")
    if len(images) != len(labels):
        raise DataError(f"DATA_DIR file '{path}' has {len(images)} images but {len(labels)} labels")
    return images, labels


def read_cifar_dir(data_dir):
    """Reads the python-pickle batches that CIFAR-10 ships as (and that Keras' download unpacks to)."""
    try:
        folder = cifar_folder.locate_batches(data_dir)
    except cifar_folder.CifarFilesError as err:
        raise DataError(str(err)) from None
    parts = [_read_cifar_batch(os.path.join(folder, name)) for name in cifar_folder.TRAIN_BATCHES]
    x_test, y_test = _read_cifar_batch(os.path.join(folder, cifar_folder.TEST_BATCH))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test


def _download_cifar10():
    """Keras' own download into ~/.keras/datasets; afterwards the same reader as for DATA_DIR is used."""
    from training.core.tf_env import configure_tensorflow

    tf, _ = configure_tensorflow()
    try:
        tf.keras.datasets.cifar10.load_data()
    except Exception as err:
        raise DataError(
            f"could not download CIFAR-10 ({type(err).__name__}); set DATA_DIR to a cifar-10-batches-py folder, "
            "or use DATASET=digits (offline, real) or DATASET=synthetic (throughput only)"
        ) from None
    return cifar_folder.KERAS_CACHE_DIR


def _load_cifar10(data_dir):
    if data_dir:
        return read_cifar_dir(data_dir) + (f"dir:{os.path.abspath(data_dir)}",)
    try:
        cifar_folder.locate_batches(cifar_folder.KERAS_CACHE_DIR)
        folder = cifar_folder.KERAS_CACHE_DIR
    except cifar_folder.CifarFilesError:
        folder = _download_cifar10()
    return read_cifar_dir(folder) + ("keras-cache",)


def digits_arrays():
    """scikit-learn's bundled digits (8x8 images, values 0..16) and their labels, read from the file it ships: the
    arrays `sklearn.datasets.load_digits()` returns (a test compares), without importing scikit-learn, which cost
    every process that loads them 0.85 s (the Ray driver's data check and each worker's setup among them)."""
    package = importlib.util.find_spec("sklearn")
    if package is None:
        raise DataError("DATASET=digits needs scikit-learn (in the kit's requirements; run scripts/test.sh or "
                        "scripts/run-benchmark.sh once to install them)")
    table = np.loadtxt(os.path.join(package.submodule_search_locations[0], "datasets", "data", "digits.csv.gz"),
                       delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def _load_digits(seed):
    small, labels = digits_arrays()
    # 8x8 images with values 0..16: scale to 0..255 and repeat each pixel 4x4 and over 3 channels, so the
    # CIFAR-10 model runs unchanged.
    small = np.rint(small * (255.0 / 16.0)).astype(np.uint8)
    images = np.repeat(np.repeat(small, 4, axis=1), 4, axis=2)[..., None].repeat(3, axis=3)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(len(labels) * DIGITS_TEST_FRACTION))
    test, train = order[:n_test], order[n_test:]
    return images[train], labels[train], images[test], labels[test]


def _load_synthetic(seed, n_train, n_test):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, size=(n_train,) + IMAGE_SHAPE, dtype=np.uint8),
        rng.integers(0, NUM_CLASSES, size=n_train, dtype=np.int64),
        rng.integers(0, 256, size=(n_test,) + IMAGE_SHAPE, dtype=np.uint8),
        rng.integers(0, NUM_CLASSES, size=n_test, dtype=np.int64),
    )


def load_dataset(name, data_dir=None, train_samples=None, test_samples=None, val_fraction=0.1, seed=0):
    """Loads `name` and splits it: a seeded validation hold-out from the training images, then the first
    `train_samples` of the rest, and the first `test_samples` of the test set (seeded order)."""
    if name == "cifar10":
        x_pool, y_pool, x_test, y_test, source = _load_cifar10(data_dir)
        classes, meaningful = CIFAR10_CLASSES, True
    elif name == "digits":
        x_pool, y_pool, x_test, y_test = _load_digits(seed)
        classes, meaningful, source = DIGIT_CLASSES, True, "scikit-learn"
    elif name == "synthetic":
        pool, tests = datasets.training_pool(name, train_samples, val_fraction), datasets.test_pool(name, test_samples)
        x_pool, y_pool, x_test, y_test = _load_synthetic(seed, pool, tests)
        classes, meaningful, source = tuple(str(c) for c in range(NUM_CLASSES)), False, "random"
    else:
        raise DataError(f"DATASET must be one of cifar10, synthetic, digits, got '{name}'")

    try:  # the counts from the arrays as loaded: a CIFAR-10 folder may hold fewer images than the official one
        sizes = datasets.split_sizes(name, len(y_pool), len(y_test), train_samples, test_samples, val_fraction)
    except SettingsError as err:
        raise DataError(str(err)) from None
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_pool))
    val_idx, train_idx = order[:sizes["val"]], order[sizes["val"]:sizes["val"] + sizes["train"]]
    test_order = rng.permutation(len(y_test))[:sizes["test"]]
    return Dataset(
        name=name, source=source,
        x_train=x_pool[train_idx], y_train=y_pool[train_idx],
        x_val=x_pool[val_idx], y_val=y_pool[val_idx],
        x_test=x_test[test_order], y_test=y_test[test_order],
        class_names=classes, accuracy_meaningful=meaningful,
    )


def shard_indices(num_samples, rank, world_size, batch_size):
    """This worker's slice of the training set: every world_size-th image from `rank`, cut so that every worker
    has the same whole number of batches. Synchronous all-reduce needs every worker to take the same number of
    steps; one worker with an extra batch would wait forever for the others."""
    per_worker = (num_samples // world_size) // batch_size * batch_size
    if per_worker == 0:
        raise DataError(
            f"TRAIN_SAMPLES gives {num_samples} images, too few for {world_size} workers with BATCH_SIZE "
            f"{batch_size} each (need at least {world_size * batch_size})"
        )
    return np.arange(num_samples)[rank::world_size][:per_worker]


def even_shard(num_samples, rank, world_size, drop_remainder=True):
    """Every world_size-th index from `rank`. With drop_remainder every worker gets the same count (at most
    world_size - 1 images unused), which evaluation under the strategy needs; without it the shards cover
    every index exactly once, for counts that are added up afterwards."""
    indices = np.arange(num_samples)[rank::world_size]
    return indices[: num_samples // world_size] if drop_remainder else indices


def make_tf_dataset(x, y, batch_size, shuffle_seed=None, drop_remainder=False, repeat=False, skip_batches=0):
    """A tf.data pipeline over uint8 arrays: shuffled each epoch when a seed is given, batched, normalized per
    batch (cheaper than per image) and one batch prefetched so the next is ready when the step ends.

    skip_batches: batches to pass over first (before they are normalized). A run resumed after epoch k skips
    k epochs' batches so that it sees the order an undisturbed run would have seen; a fresh pipeline would
    replay epoch 1's order, and a model shown the batches it trained on one epoch earlier, in the same order,
    reported a training loss ten times lower than an undisturbed run's.

    Fixed parallelism instead of AUTOTUNE: measured on 2 cores, tf.data's autotuner stalled every epoch boundary
    for about 10 s (it sizes its own thread pool against TensorFlow's compute threads) and made a 3-epoch run
    60% slower; normalizing a batch takes well under a millisecond, so one map thread keeps up."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if repeat:  # endless, reshuffled each pass; the caller counts steps per epoch
        ds = ds.repeat()
    if skip_batches:
        ds = ds.skip(skip_batches)
    ds = ds.map(lambda images, labels: (_tf_normalize(images), labels), num_parallel_calls=1)
    options = tf.data.Options()
    options.autotune.enabled = False
    # The kit shards by hand (shard_indices); tf.distribute must not shard again.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(PREFETCH_BATCHES)
