"""The command each planned run executes, built from its scale: the kit's real training scripts.

Local target: the scripts run on this machine, the Ray ones against the cluster in RAY_ADDRESS (the local
cluster scripts/lib/sweep.sh starts), or against a private `ray.init` when RAY_ADDRESS is empty.
Cluster target (k8s): scripts/lib/sweep.sh runs the same scripts inside the pods and copies the results
file back into the run's folder.

The runner takes the builder as a parameter, so tests can swap in a small fake trainer; these are the defaults.
"""

import os
import sys

from training.core import settings
from training.sweep import REPO_ROOT

RESULTS_FILE = "results.json"
CHECKPOINTS_DIR = "checkpoints"
POD_KIT_DIR = settings.POD_KIT_DIR
TARGETS = settings.SWEEP_TARGETS


def has_checkpoint(run_dir):
    folder = os.path.join(run_dir, CHECKPOINTS_DIR)
    return os.path.isdir(folder) and any(os.scandir(folder))


def training_argv(run, scaling, target, output, storage_path, resume, ray_address):
    """The training script and its flags for one run, without the interpreter: the settings table's builder,
    given what the scale decides; the environment's other settings ride along as flags."""
    scale = run.scale
    values = {"EPOCHS": scale.epochs, "BATCH_SIZE": scale.batch_size, "RUN_ID": run.run_id, "OUTPUT": output}
    if scale.kind == "baseline":
        values["THREADS"] = scale.cpus_per_worker
        return settings.trainer_argv("baseline", target, values)
    # strong: BATCH_SIZE is the global batch the workers split; weak: every worker takes BATCH_SIZE.
    values.update(NUM_WORKERS=scale.workers, CPUS_PER_WORKER=scale.cpus_per_worker,
                  BATCH_SIZE_MODE="global" if scaling == "strong" else "per-worker")
    optional = {"STORAGE_PATH": storage_path, "RAY_ADDRESS": ray_address, "USE_GPU": int(bool(scale.gpus_per_worker)),
                "RESUME": int(resume)}
    values.update({name: value for name, value in optional.items() if value})
    return settings.trainer_argv("ray", target, values)


def local_command(run, run_dir, scaling, attempt):
    """`python -m training.<trainer> ...` on this machine, writing into the run's own folder. Returns the
    command and whether it resumes from a checkpoint."""
    resume = run.scale.kind == "ray" and attempt > 1 and has_checkpoint(run_dir)
    argv = training_argv(run, scaling, "local", os.path.join(run_dir, RESULTS_FILE),
                         os.path.join(run_dir, CHECKPOINTS_DIR), resume, os.environ.get("RAY_ADDRESS", ""))
    return [sys.executable] + argv, resume


def k8s_command(run, run_dir, scaling, attempt):
    """scripts/lib/sweep.sh pod-run: the training script in a pod (the head for Ray, with --ray-address auto;
    a worker pod with enough CPUs for the baseline), its results copied to RUN_DIR/results.json. Checkpoints go
    to the cluster's shared store (CHECKPOINT_STORAGE_URI, which sweep.sh sets) under the run id, so a retry
    finds the interrupted attempt's; they cannot be listed from here, so every retry of a Ray run resumes."""
    resume = run.scale.kind == "ray" and attempt > 1
    argv = training_argv(run, scaling, "pod", f"{POD_KIT_DIR}/{run.run_id}.json",
                         os.environ.get("CHECKPOINT_STORAGE_URI", ""), resume, "auto")
    command = ["bash", str(REPO_ROOT / "scripts" / "lib" / "sweep.sh"), "pod-run", run.scale.kind,
               str(run.scale.cpus), f"{run.run_id}.json", run_dir, "--", "python"] + argv
    return command, resume


BUILDERS = {"local": local_command, "k8s": k8s_command}
