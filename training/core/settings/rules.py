"""Rules between settings, and the values derived from them: checked before any process starts, so that a
combination that could only fail after other runs had started is refused in one line."""

import os

from training.core.settings import datasets
from training.core.settings.errors import SettingsError
from training.core.settings.recipes import default_of
from training.core.settings.table import BY_NAME, SETTINGS, of_program


def value_of(values, name, program=None):
    """A setting's parsed value in a namespace (by flag dest) or a dict of names; its default for `program`
    when absent (None when it has none)."""
    setting = BY_NAME[name]
    if isinstance(values, dict):
        value = values.get(name)
    else:
        value = getattr(values, setting.dest(program), None)
    if value is None:
        default = default_of(setting, program)
        value = None if default is None else setting.parser()(default)
    return value


def batches(batch_size, batch_size_mode, num_workers, lr_scaling="none"):
    """(per-worker batch, global batch, learning-rate factor) of a run: BATCH_SIZE is per worker or split, and
    the rate follows the global batch by LR_SCALING."""
    per_worker = batch_size // num_workers if batch_size_mode == "global" else batch_size
    global_batch = per_worker * num_workers
    k = global_batch / batch_size
    return per_worker, global_batch, {"sqrt": k ** 0.5, "linear": k, "none": 1.0}[lr_scaling]


def derived(program, get):
    """The values a trainer computes from its settings, in one place: the batches and the learning rate."""
    if program == "ray":
        per_worker, global_batch, factor = batches(get("BATCH_SIZE"), get("BATCH_SIZE_MODE"), get("NUM_WORKERS"),
                                                   get("LR_SCALING"))
    else:
        per_worker = global_batch = get("BATCH_SIZE")
        factor = 1.0
    return {"per_worker_batch": per_worker, "global_batch": global_batch, "lr_factor": factor,
            "learning_rate": get("LEARNING_RATE") * factor}


def _data_rules(program, get, global_batch):
    """A sample count the dataset cannot give, or a batch no epoch could fill, known from the dataset's size
    before anything loads it (a CIFAR-10 folder's own count is checked when it is read)."""
    train = get("TRAIN_SAMPLES")
    if get("DATASET") in datasets.BUNDLED:
        try:
            datasets.bundled_sizes(get("DATASET"), train, get("TEST_SAMPLES"), get("VAL_FRACTION"))
        except SettingsError as err:
            return [str(err)]
    images = datasets.training_images(get("DATASET"), train, get("VAL_FRACTION"))
    if images >= global_batch:
        return []
    if program == "ray":
        shape = (f"{global_batch} images: BATCH_SIZE {get('BATCH_SIZE')}, {get('BATCH_SIZE_MODE')}, "
                 f"{get('NUM_WORKERS')} workers")
        if train:
            return [f"TRAIN_SAMPLES must hold at least one global batch ({shape}), got {train}"]
        return [f"BATCH_SIZE must give a global batch ({shape}) of at most the {images} training images of "
                f"DATASET={get('DATASET')}, got {get('BATCH_SIZE')}"]
    if train:
        return [f"TRAIN_SAMPLES must hold at least one batch ({global_batch} images), got {train}"]
    return [f"BATCH_SIZE must be at most the {images} training images of DATASET={get('DATASET')}, "
            f"got {get('BATCH_SIZE')}"]


def conflicts(program, values):
    """Rules between settings that would otherwise fail only after other runs had started. `values` is a parsed
    namespace of `program` or a dict NAME -> parsed value (the environment check)."""
    def get(name):
        return value_of(values, name, program)

    errors = []
    if program in ("ray", "patterns"):
        epochs, inject = get("EPOCHS"), get("INJECT_FAILURE_EPOCH") or 0
        if inject > epochs:
            errors.append(f"INJECT_FAILURE_EPOCH must be at most EPOCHS ({epochs}), got {inject}")
    if program == "ray":
        workers, batch = get("NUM_WORKERS"), get("BATCH_SIZE")
        if get("BATCH_SIZE_MODE") == "global" and batch % workers:
            return [f"BATCH_SIZE must divide evenly among NUM_WORKERS={workers} workers with "
                    f"BATCH_SIZE_MODE=global, got {batch}"]
        if get("INJECT_FAILURE_EPOCH") and get("MAX_FAILURES") < 1:
            errors.append("INJECT_FAILURE_EPOCH needs MAX_FAILURES of at least 1, or the injected failure ends "
                          "the run")
    if program in ("ray", "baseline", "patterns"):
        errors += _data_rules(program, get, derived(program, get)["global_batch"])
    if program == "cluster" and get("RUN_TIMEOUT_S") == 0:
        errors.append("RUN_TIMEOUT_S must be a positive integer on the cluster target, where it bounds every run "
                      "in a pod, got '0'")
    if program == "sweep" and get("STOP_AT_TARGET") and get("TARGET_ACCURACY") is None:
        errors.append("STOP_AT_TARGET needs TARGET_ACCURACY (--stop-at-target needs --target-accuracy)")
    return errors


def pod_refusal(setting):
    return (f"{setting.name} is a folder on this machine, which the pods cannot read; they use the CIFAR-10 copy "
            f"baked into the image (allowed: unset, on the cluster target)")


def validate_environment(programs=("local",), environ=None):
    """Checks every setting the programs take, as the environment sets it, and the rules between them, without
    starting anything. Returns the errors, first one first."""
    environ = os.environ if environ is None else environ
    if "cluster" in programs:  # whatever its value, the pods cannot take it
        refused = [s for s in SETTINGS if s.pod == "refuse" and environ.get(s.name)]
        if refused:
            return [pod_refusal(refused[0])]
    errors, values = [], {}
    names = dict.fromkeys(s.name for program in programs for s in of_program(program) if s.env)
    for name in names:
        text_value = environ.get(name, "")
        if text_value == "":
            continue
        try:
            values[name] = BY_NAME[name].parser()(text_value)
        except SettingsError as err:
            errors.append(str(err))
    if errors:
        return errors
    return [error for program in programs for error in conflicts(program, values)]
