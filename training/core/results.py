"""The one results schema of the kit, its atomic writer and its validating reader.

The baseline and the Ray run write the same document; the comparison, the sweep report and the benchmark read
it. Bump SCHEMA_VERSION when a field changes meaning, so an old file is refused instead of misread.
"""

import json
import os
import platform
import socket
import time

from training.core import atomic_files

SCHEMA_VERSION = 1
TRAINING_TYPES = ("baseline", "ray_distributed")

_NUMBER = {"type": "number"}
_OPT_NUMBER = {"type": ["number", "null"]}
_EPOCH = {
    "type": "object",
    "required": ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"],
    "properties": {
        "epoch": {"type": "integer", "minimum": 1},
        "loss": _NUMBER, "accuracy": _NUMBER, "val_loss": _OPT_NUMBER, "val_accuracy": _OPT_NUMBER,
        "seconds": {"type": "number", "minimum": 0}, "learning_rate": _OPT_NUMBER,
    },
}
RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [
        "schema_version", "run_id", "training_type", "created_at", "config", "training_time_seconds",
        "epochs_completed", "history", "test_accuracy", "test_loss", "per_class_accuracy",
        "images_per_second", "num_parameters", "accuracy_meaningful", "environment",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "run_id": {"type": "string", "minLength": 1},
        "training_type": {"enum": list(TRAINING_TYPES)},
        "created_at": {"type": "string"},
        "config": {
            "type": "object",
            "required": [
                "epochs", "global_batch_size", "per_worker_batch_size", "batch_size_semantics", "learning_rate",
                "learning_rate_rule", "seed", "dataset", "train_samples", "val_samples", "test_samples",
                "num_workers", "cpus_per_worker", "tf_threads",
            ],
            "properties": {
                "epochs": {"type": "integer", "minimum": 1},
                "global_batch_size": {"type": "integer", "minimum": 1},
                "per_worker_batch_size": {"type": "integer", "minimum": 1},
                "num_workers": {"type": "integer", "minimum": 1},
                "cpus_per_worker": {"type": "number", "minimum": 0},
                "learning_rate": _NUMBER,
                "dataset": {"type": "string"},
                "train_samples": {"type": "integer", "minimum": 1},
            },
        },
        "training_time_seconds": {"type": "number", "minimum": 0},
        "wall_time_seconds": {"type": "number", "minimum": 0},
        "epochs_completed": {"type": "integer", "minimum": 0},
        "history": {"type": "array", "items": _EPOCH},
        "test_accuracy": _OPT_NUMBER,
        "test_loss": _OPT_NUMBER,
        "per_class_accuracy": {"type": "object", "additionalProperties": _OPT_NUMBER},
        "images_per_second": {"type": "number", "minimum": 0},
        "num_parameters": {"type": "integer", "minimum": 1},
        "accuracy_meaningful": {"type": "boolean"},
        "environment": {
            "type": "object",
            "required": ["cpus_used", "hostname", "ray_version", "tensorflow_version"],
            "properties": {
                "cpus_used": {"type": "number", "minimum": 0},
                "ray_cluster": {
                    "type": ["object", "null"],
                    "properties": {"nodes": {"type": "integer"}, "cpus": _NUMBER},
                },
            },
        },
    },
}


class ResultsError(ValueError):
    """A results file is missing, unreadable or not of this schema."""


def utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def default_run_id(training_type):
    return f"{training_type}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def installed_version(module_name):
    try:
        from importlib.metadata import version

        return version(module_name)
    except Exception:
        return None


def environment_info(cpus_used, ray_cluster=None, tf_threads=None, **extra):
    """Where a run ran: the numbers that decide whether two results may be compared."""
    info = {
        "cpus_used": cpus_used,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python_version": platform.python_version(),
        "machine_cpus": os.cpu_count(),
        "ray_version": installed_version("ray"),
        "tensorflow_version": installed_version("tensorflow") or installed_version("tensorflow-cpu"),
        "tf_keras_version": installed_version("tf-keras") or installed_version("tf_keras"),
        "ray_cluster": ray_cluster,
        "tf_threads": tf_threads,
    }
    info.update(extra)
    return info


def validate(result, source="results"):
    import jsonschema

    try:
        jsonschema.validate(result, RESULTS_SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ResultsError(f"{source} does not match results schema v{SCHEMA_VERSION} at {where}: {err.message}")


def write_results(path, result):
    """Validates, then writes atomically (atomic_files): a reader never sees half a file, and a run that fails
    before or while writing leaves the earlier file untouched."""
    validate(result, source=os.path.basename(path))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return atomic_files.write_json(path, result)


def load_results(path):
    """Reads and validates a results file; raises ResultsError with the file's name on any problem."""
    try:
        with open(path) as handle:
            result = json.load(handle)
    except FileNotFoundError:
        raise ResultsError(f"results file '{path}' does not exist") from None
    except (OSError, json.JSONDecodeError) as err:
        raise ResultsError(f"results file '{path}' is not readable JSON ({err})") from None
    validate(result, source=f"results file '{path}'")
    return result


def make_result(training_type, run_id, config, history, training_time_seconds, evaluation, num_parameters,
                accuracy_meaningful, environment, images_trained, wall_time_seconds=None, **extra):
    """Assembles a results document. `evaluation` is evaluation.summarize_counts' output; `images_trained` is
    the number of training images actually stepped through (all workers, all epochs)."""
    from training.core.fitting import steady_state_epoch_seconds

    result = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id or default_run_id(training_type),
        "training_type": training_type,
        "created_at": utc_now(),
        "config": config,
        "training_time_seconds": training_time_seconds,
        "wall_time_seconds": wall_time_seconds,
        "epochs_completed": len(history),
        "history": history,
        "steady_state_epoch_seconds": steady_state_epoch_seconds(history),
        "test_accuracy": evaluation["test_accuracy"],
        "test_loss": evaluation["test_loss"],
        "per_class_accuracy": evaluation["per_class_accuracy"],
        "images_per_second": images_trained / training_time_seconds if training_time_seconds else 0.0,
        "num_parameters": int(num_parameters),
        "accuracy_meaningful": accuracy_meaningful,
        "environment": environment,
    }
    if wall_time_seconds is None:
        del result["wall_time_seconds"]
    result.update(extra)
    return result
