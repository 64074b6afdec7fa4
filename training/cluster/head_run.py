"""The head pod's Ray run: the values the pods use where the environment sets none, and its command line.

scripts/lib/cluster_benchmark.sh runs this command in the head pod and the RayJob manifests carry it, so both
come from here. The workers and a worker's CPUs are the profile's (a run of fewer or smaller workers is the
user's choice, through NUM_WORKERS / CPUS_PER_WORKER); the checkpoint store is the settings table's
CHECKPOINT_STORAGE_URI, the one store every pod reaches. Every other setting comes from the settings table's
argv builder, as a flag: the pods see no environment of this machine.
"""

import os

from training.cluster import profiles
from training.core import settings

# The folder in the pods that scripts/lib/cluster_benchmark.sh copies results out of (its CLUSTER_KIT_DIR).
POD_KIT_DIR = "/tmp/kit"
# The driver runs in the head pod, so it joins the Ray cluster of that pod.
POD_RAY_ADDRESS = "auto"
# The names values() fills, which `pod-defaults` may be asked for.
FILLED = ("RAY_ADDRESS", "NUM_WORKERS", "CPUS_PER_WORKER", "STORAGE_PATH", "OUTPUT")


def values(profile, environ=None):
    """NAME -> value of the head run's own settings: the environment's NUM_WORKERS, CPUS_PER_WORKER and
    CHECKPOINT_STORAGE_URI where set, else the profile's workers and worker CPUs and the table's store."""
    environ = os.environ if environ is None else environ
    workers = environ.get("NUM_WORKERS") or str(profiles.PROFILES[profiles.check(profile)]["workers"])
    return {
        "RAY_ADDRESS": POD_RAY_ADDRESS,
        "NUM_WORKERS": workers,
        "CPUS_PER_WORKER": environ.get("CPUS_PER_WORKER") or str(profiles.worker_cpus(profile)),
        "STORAGE_PATH": environ.get("CHECKPOINT_STORAGE_URI") or settings.BY_NAME["CHECKPOINT_STORAGE_URI"].default,
        # Named by the workers, as the benchmark's comparison looks for it.
        "OUTPUT": f"{POD_KIT_DIR}/ray_results_{workers}workers.json",
    }


def argv(profile, given=None, environ=None):
    """The head pod's command, interpreter first: `given` (NAME -> value, such as a RUN_ID) over values(), then
    every setting of the Ray trainer the environment sets. A setting the pods cannot take is a SettingsError."""
    environ = os.environ if environ is None else environ
    run = {**values(profile, environ), **(given or {})}
    return ["python"] + settings.trainer_argv("ray", "pod", run, environ=environ)


def unset_defaults(profile, names, environ=None):
    """NAME=value lines of values() for the `names` the environment leaves unset, for bash to export."""
    environ = os.environ if environ is None else environ
    unknown = [name for name in names if name not in FILLED]
    if unknown:
        raise settings.SettingsError(f"{unknown[0]} is not a value of the head run (allowed: {', '.join(FILLED)})")
    run = values(profile, environ)
    return [f"{name}={run[name]}" for name in names if not environ.get(name)]
