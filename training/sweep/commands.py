"""The command each planned run executes, built from its scale: the kit's real training scripts.

Local target: the scripts run on this machine, the Ray ones against the cluster in RAY_ADDRESS (the local
cluster scripts/lib/sweep.sh starts), or against a private `ray.init` when RAY_ADDRESS is empty.
Cluster target (k8s): scripts/lib/sweep.sh runs the same scripts inside the pods and copies the results
file back into the run's folder.

The runner takes the builder as a parameter, so tests can swap in a small fake trainer; these are the defaults.
"""

import os
import subprocess
import sys
from functools import lru_cache

from training.sweep import TRAINING_DIR

REPO_ROOT = TRAINING_DIR.parent
RESULTS_FILE = "results.json"
CHECKPOINTS_DIR = "checkpoints"
# The folder in the pods that scripts/lib/cluster_benchmark.sh copies results out of.
POD_KIT_DIR = "/tmp/kit"
TARGETS = ("local", "k8s")


@lru_cache(maxsize=None)
def trainer_supports(flag, script="ray_training.py", python=sys.executable):
    """Whether the training script's --help lists `flag`: the sweep passes --resume only to a script that
    knows it, so it works with trainers from before checkpoints existed."""
    try:
        out = subprocess.run([python, str(TRAINING_DIR / script), "--help"], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "PYTHONPATH": str(TRAINING_DIR)})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and flag in out.stdout.split()


def has_checkpoint(run_dir):
    folder = os.path.join(run_dir, CHECKPOINTS_DIR)
    return os.path.isdir(folder) and any(os.scandir(folder))


def training_argv(run, scaling, script_dir, output, storage_path, resume, ray_address):
    """The training script and its flags for one run, without the interpreter."""
    scale = run.scale
    common = ["--epochs", str(scale.epochs), "--batch-size", str(scale.batch_size), "--run-id", run.run_id,
              "--output", output]
    if scale.kind == "baseline":
        return [f"{script_dir}/baseline_training.py", "--threads", str(scale.cpus_per_worker)] + common
    argv = [f"{script_dir}/ray_training.py", "--num-workers", str(scale.workers),
            "--cpus-per-worker", str(scale.cpus_per_worker),
            # strong: BATCH_SIZE is the global batch the workers split; weak: every worker takes BATCH_SIZE.
            "--batch-size-mode", "global" if scaling == "strong" else "per-worker"] + common
    if storage_path:
        argv += ["--storage-path", storage_path]
    if ray_address:
        argv += ["--ray-address", ray_address]
    if scale.gpus_per_worker:
        argv.append("--use-gpu")
    if resume:
        argv.append("--resume")
    return argv


def local_command(run, run_dir, scaling, attempt):
    """`python training/<script>.py ...` on this machine, writing into the run's own folder. Returns the
    command and whether it resumes from a checkpoint."""
    resume = (run.scale.kind == "ray" and attempt > 1 and has_checkpoint(run_dir)
              and trainer_supports("--resume"))
    argv = training_argv(run, scaling, str(TRAINING_DIR), os.path.join(run_dir, RESULTS_FILE),
                         os.path.join(run_dir, CHECKPOINTS_DIR), resume, os.environ.get("RAY_ADDRESS", ""))
    return [sys.executable] + argv, resume


def k8s_command(run, run_dir, scaling, attempt):
    """scripts/lib/sweep.sh pod-run: the training script in a pod (the head for Ray, with --ray-address auto;
    a worker pod with enough CPUs for the baseline), its results copied to RUN_DIR/results.json. Checkpoints go
    to the cluster's shared store (CHECKPOINT_STORAGE_URI, which sweep.sh sets) under the run id, so a retry
    finds the interrupted attempt's; they cannot be listed from here, so every retry of a Ray run resumes."""
    resume = run.scale.kind == "ray" and attempt > 1 and trainer_supports("--resume")
    argv = training_argv(run, scaling, "training", f"{POD_KIT_DIR}/{run.run_id}.json",
                         os.environ.get("CHECKPOINT_STORAGE_URI", ""), resume, "auto")
    command = ["bash", str(REPO_ROOT / "scripts" / "lib" / "sweep.sh"), "pod-run", run.scale.kind,
               str(run.scale.cpus), f"{run.run_id}.json", run_dir, "--", "python"] + argv
    return command, resume


BUILDERS = {"local": local_command, "k8s": k8s_command}
