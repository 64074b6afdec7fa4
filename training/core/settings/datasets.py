"""How many images each dataset has, known before any process starts: the check that refuses a batch no run could
fill reads them here, and data.py splits the datasets by the same numbers (a test loads each and compares)."""

CIFAR10_TRAIN_IMAGES = 50_000
DIGITS_IMAGES = 1_797  # scikit-learn's load_digits
DIGITS_TEST_FRACTION = 0.2
SYNTHETIC_TRAIN_IMAGES = 50_000  # the size of CIFAR-10's training set, so throughput runs match real ones
SYNTHETIC_TEST_IMAGES = 10_000


def training_pool(dataset):
    """The images a dataset's training and validation sets are drawn from (synthetic: as many as asked for)."""
    return {"cifar10": CIFAR10_TRAIN_IMAGES, "synthetic": SYNTHETIC_TRAIN_IMAGES,
            "digits": DIGITS_IMAGES - int(round(DIGITS_IMAGES * DIGITS_TEST_FRACTION))}[dataset]


def training_images(dataset, train_samples, val_fraction):
    """The images one epoch trains on: TRAIN_SAMPLES when given, else the pool less the validation hold-out."""
    return train_samples or int(training_pool(dataset) * (1 - val_fraction))
