"""Settings shared by every entry point: flags whose defaults come from environment variables, validated once.

Standard library only: `python3 training/settings.py check` validates the environment from bash before any
virtualenv exists, so a typo in EPOCHS fails in a second instead of after a multi-minute install.

Bad input never produces a traceback: one line `error: <SETTING> ...` on stderr and exit code 2.
"""

import argparse
import os
import sys

import cifar_files

EXIT_BAD_INPUT = 2
DATASETS = ("cifar10", "synthetic", "digits")
BATCH_SIZE_MODES = ("per-worker", "global")
# What gradients may be all-reduced in (model.ALLREDUCE_DTYPES; here so flags parse before TensorFlow loads).
ALLREDUCE_DTYPES = ("float32", "bfloat16", "float16")
LR_SCALINGS = ("sqrt", "linear", "none")

# Defaults in one place, each with the reason for its value.
DEFAULTS = {
    "EPOCHS": "10",  # enough for the CNN to pass 70% on CIFAR-10, short enough for a laptop
    "BATCH_SIZE": "64",  # per worker: large enough to keep a core busy, small enough for 4 GiB pods
    "LEARNING_RATE": "0.001",  # Adam's usual rate for one worker; Ray runs scale it (see --lr-scaling)
    "SEED": "42",
    "DATASET": "cifar10",
    "NUM_WORKERS": "2",  # the Kubernetes cluster has two worker pods
    "CPUS_PER_WORKER": "1",  # a 2-core laptop gives one core to each of two workers
    "RESULTS_DIR": "results",
    "VAL_FRACTION": "0.1",
}


# What `run-benchmark.sh --quick` sets where the user did not: a run of about two and a half minutes on 2 cores
# in which both sides learn. Measured by benchmarks/quick_recipe_probe.py (digits, one CPU, seed 42): 32 steps of
# 64 at LEARNING_RATE 0.001 scored 0.39 on the test set, 40 steps at 0.001 0.90, 40 at 0.002 0.99. With fewer
# steps batch normalization's moving statistics lag the weights: the old quick recipe's 16 steps of a global
# batch of 128 scored 0.12 with them and 0.95 with statistics recomputed from the final weights. A global batch
# split over the workers gives the two sides the same steps at the same rate, so their accuracies compare.
QUICK = {
    "DATASET": "digits",  # offline and real: every one of its 1,294 training images (TRAIN_SAMPLES unset)
    "EPOCHS": "2",  # 2 x 20 steps; the second epoch is the steady-state one
    "BATCH_SIZE": "64",
    "BATCH_SIZE_MODE": "global",  # Ray's 2 workers take 32 each: the baseline's batch, split
    "LEARNING_RATE": "0.002",  # reaches 0.85+ in 40 steps where 0.001 is at the edge
}


class SettingsError(argparse.ArgumentTypeError, ValueError):
    """A setting has a value outside what is allowed; the message names the setting. An ArgumentTypeError so
    argparse shows its message instead of 'invalid parse value'."""


def fail(message, code=EXIT_BAD_INPUT):
    """Prints one line and exits: how every entry point reports bad input or a known failure."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def env(name, fallback=None):
    value = os.environ.get(name)
    if value is None or value == "":
        return DEFAULTS.get(name, fallback)
    return value


def positive_int(setting):
    def parse(text):
        try:
            value = int(str(text).strip())
        except ValueError:
            value = 0
        if value < 1 or str(text).strip().startswith("+"):
            raise SettingsError(f"{setting} must be a positive integer, got '{text}'")
        return value

    return parse


def non_negative_int(setting):
    def parse(text):
        try:
            value = int(str(text).strip())
        except ValueError:
            value = -1
        if value < 0:
            raise SettingsError(f"{setting} must be a whole number, 0 or more, got '{text}'")
        return value

    return parse


def positive_float(setting):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not value > 0 or value != value or value == float("inf"):
            raise SettingsError(f"{setting} must be a positive number, got '{text}'")
        return value

    return parse


def fraction(setting):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 < value < 1:
            raise SettingsError(f"{setting} must be a number between 0 and 1 (exclusive), got '{text}'")
        return value

    return parse


def one_of(setting, allowed):
    def parse(text):
        if text not in allowed:
            raise SettingsError(f"{setting} must be one of {', '.join(allowed)}, got '{text}'")
        return text

    return parse


def data_dir(text):
    """An empty DATA_DIR means 'use Keras' download cache'; a given one must hold the CIFAR-10 batches."""
    if not text:
        return None
    try:
        cifar_files.locate_batches(text)
    except cifar_files.CifarFilesError as err:
        raise SettingsError(str(err)) from None
    return os.path.abspath(text)


class KitArgumentParser(argparse.ArgumentParser):
    """argparse that reports errors as one line naming the setting, instead of usage text plus a message."""

    def error(self, message):
        # argparse wraps our own messages as "argument --x: <message>"; ours already name the setting.
        prefix, sep, rest = message.partition(": ")
        if sep and prefix.startswith("argument ") and rest.split(" ")[0].isupper():
            message = rest
        fail(message)

    def parse_args(self, args=None, namespace=None):
        try:
            return super().parse_args(args, namespace)
        except SettingsError as err:  # raised by a type function applied to an environment default
            fail(str(err))


def add_training_args(parser):
    """Flags both training scripts take. Defaults come from the environment variable named in each help."""
    parser.add_argument("--epochs", type=positive_int("EPOCHS"), default=env("EPOCHS"),
                        help="epochs to train (env EPOCHS, default %(default)s)")
    parser.add_argument("--learning-rate", type=positive_float("LEARNING_RATE"), default=env("LEARNING_RATE"),
                        help="Adam learning rate of a single worker (env LEARNING_RATE, default %(default)s)")
    parser.add_argument("--seed", type=non_negative_int("SEED"), default=env("SEED"),
                        help="seed for data order, splits and weights (env SEED, default %(default)s)")
    parser.add_argument("--dataset", type=one_of("DATASET", DATASETS), default=env("DATASET"),
                        help="cifar10 (real data; downloads once), synthetic (random images: throughput only, "
                             "accuracy means nothing), digits (scikit-learn's bundled 8x8 digits upscaled to "
                             "32x32: real and offline) (env DATASET, default %(default)s)")
    parser.add_argument("--data-dir", type=data_dir, default=env("DATA_DIR", ""),
                        help="a cifar-10-batches-py folder (or its parent) to read CIFAR-10 from instead of "
                             "Keras' download (env DATA_DIR)")
    parser.add_argument("--train-samples", type=positive_int("TRAIN_SAMPLES"), default=env("TRAIN_SAMPLES"),
                        help="train on this many images only, for quick runs (env TRAIN_SAMPLES, default all)")
    parser.add_argument("--test-samples", type=positive_int("TEST_SAMPLES"), default=env("TEST_SAMPLES"),
                        help="evaluate on this many test images only (env TEST_SAMPLES, default all 10,000)")
    parser.add_argument("--val-fraction", type=fraction("VAL_FRACTION"), default=env("VAL_FRACTION"),
                        help="share of the training images held out for validation (env VAL_FRACTION, "
                             "default %(default)s)")
    parser.add_argument("--early-stopping-patience", type=non_negative_int("EARLY_STOPPING_PATIENCE"),
                        default=env("EARLY_STOPPING_PATIENCE", "0"),
                        help="stop after this many epochs without a better val_loss; 0 turns it off "
                             "(env EARLY_STOPPING_PATIENCE, default %(default)s)")
    parser.add_argument("--run-id", default=env("RUN_ID", ""),
                        help="identifier stored in the results (env RUN_ID, default: type and time)")
    parser.add_argument("--output", default=None,
                        help="results JSON to write; never written unless the run succeeds")
    return parser


def validate_environment(environ=None):
    """Checks the settings the benchmark script passes on, without starting anything. Returns the errors."""
    environ = os.environ if environ is None else environ
    checks = {
        "EPOCHS": positive_int("EPOCHS"),
        "BATCH_SIZE": positive_int("BATCH_SIZE"),
        "NUM_WORKERS": positive_int("NUM_WORKERS"),
        "CPUS_PER_WORKER": positive_int("CPUS_PER_WORKER"),
        "TRAIN_SAMPLES": positive_int("TRAIN_SAMPLES"),
        "TEST_SAMPLES": positive_int("TEST_SAMPLES"),
        "SEED": non_negative_int("SEED"),
        "LEARNING_RATE": positive_float("LEARNING_RATE"),
        "DATASET": one_of("DATASET", DATASETS),
        "DATA_DIR": data_dir,
        "ALLREDUCE_DTYPE": one_of("ALLREDUCE_DTYPE", ALLREDUCE_DTYPES),
        "LOCAL_RAY_PIN_CPUS": one_of("LOCAL_RAY_PIN_CPUS", ("0", "1")),
        "BATCH_SIZE_MODE": one_of("BATCH_SIZE_MODE", BATCH_SIZE_MODES),
        "LR_SCALING": one_of("LR_SCALING", LR_SCALINGS),
        "VAL_FRACTION": fraction("VAL_FRACTION"),
        "EARLY_STOPPING_PATIENCE": non_negative_int("EARLY_STOPPING_PATIENCE"),
        "INJECT_FAILURE_EPOCH": non_negative_int("INJECT_FAILURE_EPOCH"),
        "CHECKPOINT_POLICY": _checkpoint_policy,
    }
    errors, values = [], {}
    for name, check in checks.items():
        value = environ.get(name, "")
        if value == "":
            continue
        try:
            values[name] = check(value)
        except SettingsError as err:
            errors.append(str(err))
    return errors + (cross_setting_errors(values) if not errors else [])


def _checkpoint_policy(text):
    import checkpoint_policy  # standard library only, like this module

    try:
        return checkpoint_policy.parse_policy(text)
    except ValueError as err:
        raise SettingsError(str(err)) from None


def cross_setting_errors(values):
    """Rules between settings that would otherwise fail only after the baselines had run."""
    errors = []
    workers = values.get("NUM_WORKERS", int(DEFAULTS["NUM_WORKERS"]))
    batch = values.get("BATCH_SIZE", int(DEFAULTS["BATCH_SIZE"]))
    if values.get("BATCH_SIZE_MODE") == "global" and batch % workers:
        errors.append(f"BATCH_SIZE must divide evenly among NUM_WORKERS={workers} workers with "
                      f"BATCH_SIZE_MODE=global, got {batch}")
    epochs = values.get("EPOCHS", int(DEFAULTS["EPOCHS"]))
    if values.get("INJECT_FAILURE_EPOCH", 0) > epochs:
        errors.append(f"INJECT_FAILURE_EPOCH must be at most EPOCHS ({epochs}), got {values['INJECT_FAILURE_EPOCH']}")
    return errors


def quick_assignments(environ=None):
    """NAME=value lines for the QUICK settings the environment leaves unset, for bash to export."""
    environ = os.environ if environ is None else environ
    return [f"{name}={value}" for name, value in QUICK.items() if not environ.get(name)]


def main(argv):
    if argv[1:] == ["quick-env"]:
        print("\n".join(quick_assignments()))
        return
    if argv[1:] != ["check"]:
        fail("usage: settings.py check | quick-env   (check validates EPOCHS, BATCH_SIZE, NUM_WORKERS, ... from "
             "the environment; quick-env prints the --quick settings that it leaves unset)")
    errors = validate_environment()
    if errors:
        fail(errors[0])


if __name__ == "__main__":
    main(sys.argv)
