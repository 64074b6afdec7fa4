"""How many images each dataset has, and how a dataset is split: known before any process starts, so the checks
that refuse a batch or a sample count no run could fill read them here, the Ray driver knows a bundled dataset's
split without loading it, and data.py splits by the same arithmetic (a test loads each and compares)."""

import math

from training.core.settings.errors import SettingsError

CIFAR10_TRAIN_IMAGES = 50_000
DIGITS_IMAGES = 1_797  # scikit-learn's load_digits
DIGITS_TEST_FRACTION = 0.2
SYNTHETIC_TRAIN_IMAGES = 50_000  # the size of CIFAR-10's training set, so throughput runs match real ones
SYNTHETIC_TEST_IMAGES = 10_000


CIFAR10_TEST_IMAGES = 10_000
BUNDLED = ("digits", "synthetic")  # made on the spot, from no file the user gives


def training_pool(dataset, train_samples=None, val_fraction=0.1):
    """The images a dataset's training and validation sets are drawn from (synthetic: as many as asked for)."""
    if dataset == "synthetic":
        return int(math.ceil((train_samples or SYNTHETIC_TRAIN_IMAGES * (1 - val_fraction)) / (1 - val_fraction)))
    return {"cifar10": CIFAR10_TRAIN_IMAGES,
            "digits": DIGITS_IMAGES - int(round(DIGITS_IMAGES * DIGITS_TEST_FRACTION))}[dataset]


def test_pool(dataset, test_samples=None):
    return {"cifar10": CIFAR10_TEST_IMAGES, "synthetic": test_samples or SYNTHETIC_TEST_IMAGES,
            "digits": int(round(DIGITS_IMAGES * DIGITS_TEST_FRACTION))}[dataset]


def split_sizes(dataset, pool, tests, train_samples, test_samples, val_fraction):
    """{train, val, test} of a dataset whose training pool holds `pool` images and whose test set `tests`: the
    validation hold-out is val_fraction of what is drawn, TRAIN_SAMPLES (default: all the rest) are trained on.
    SettingsError, naming the setting, when the dataset cannot give them."""
    train = train_samples or int(pool * (1 - val_fraction))
    val = max(1, int(round(train * val_fraction / (1 - val_fraction))))
    if train + val > pool:
        raise SettingsError(f"TRAIN_SAMPLES must be at most {int(pool * (1 - val_fraction))} for DATASET={dataset} "
                            f"(it has {pool} training images, {val_fraction:.0%} held out), got {train}")
    if test_samples and test_samples > tests:
        raise SettingsError(f"TEST_SAMPLES must be at most {tests} for DATASET={dataset}, got {test_samples}")
    return {"train": train, "val": val, "test": test_samples or tests}


def bundled_sizes(dataset, train_samples, test_samples, val_fraction):
    """The split of a bundled dataset (digits, synthetic), from its known sizes alone."""
    return split_sizes(dataset, training_pool(dataset, train_samples, val_fraction), test_pool(dataset, test_samples),
                       train_samples, test_samples, val_fraction)


def training_images(dataset, train_samples, val_fraction):
    """The images one epoch trains on: TRAIN_SAMPLES when given, else the pool less the validation hold-out."""
    return train_samples or int(training_pool(dataset, train_samples, val_fraction) * (1 - val_fraction))
