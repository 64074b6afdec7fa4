"""Ray Train checkpoints of the kit's model: weights, optimizer state, epoch, history and the checkpoint
controller's state, with checksums so that a damaged checkpoint is noticed and skipped instead of loaded.

Layout of one checkpoint folder (Ray copies it into RunConfig storage as checkpoint_epoch_NNNN):
  weights.npz     the model's weights, in model.get_weights() order
  optimizer.npz   the optimizer's variables (step count, Adam moments), in optimizer.variables order
  state.json      epoch, history, learning rate, controller state and the files' SHA-256
"""

import hashlib
import json
import os
import shutil
import tempfile
import time

import numpy as np
from training.core import storage

STATE_FILE = "state.json"
ARRAY_FILES = ("weights.npz", "optimizer.npz")
DIR_PREFIX = "checkpoint_epoch_"


class CheckpointError(RuntimeError):
    """No usable checkpoint: the message says which were tried and why each was rejected."""


def dir_name(epoch):
    return f"{DIR_PREFIX}{epoch:04d}"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _optimizer_variables(model):
    variables = model.optimizer.variables
    return list(variables() if callable(variables) else variables)


def model_state(model):
    """What a checkpoint keeps of a model besides its epoch: weights, optimizer variables and learning rate, as
    apply() takes them back. (Under MultiWorkerMirroredStrategy every worker must join the weights' read.)"""
    return {"weights": model.get_weights(), "optimizer": [v.numpy() for v in _optimizer_variables(model)],
            "learning_rate": float(model.optimizer.learning_rate.numpy())}


def write_folder(folder, model, weights, epoch, history, controller_state):
    """Writes one checkpoint into `folder` (which must exist). `weights` is model.get_weights(), read by the
    caller because under MultiWorkerMirroredStrategy that read is a collective every worker joins."""
    np.savez(os.path.join(folder, "weights.npz"), *weights)
    np.savez(os.path.join(folder, "optimizer.npz"), *[v.numpy() for v in _optimizer_variables(model)])
    state = {
        "epoch": epoch,
        "history": history,
        "learning_rate": float(model.optimizer.learning_rate.numpy()),
        "controller": controller_state,
        "saved_at": time.time(),
        "sha256": {name: _sha256(os.path.join(folder, name)) for name in ARRAY_FILES},
    }
    with open(os.path.join(folder, STATE_FILE), "w") as handle:
        json.dump(state, handle)


def save(model, weights, epoch, history, controller_state):
    """Writes a checkpoint into a fresh local folder; returns (ray Checkpoint, folder, seconds it took).
    `controller_state` is the checkpoint loop's state, handed out before the write (checkpoint_loop.py)."""
    from ray.train import Checkpoint

    started = time.monotonic()
    folder = tempfile.mkdtemp(prefix="kit-ckpt-")
    write_folder(folder, model, weights, epoch, history, controller_state)
    return Checkpoint.from_directory(folder), folder, time.monotonic() - started


def discard_local(folder):
    """Ray has copied the checkpoint into storage by the time report() returns; the local copy is spare."""
    if folder and os.path.isdir(folder):
        shutil.rmtree(folder, ignore_errors=True)


def read_folder(folder):
    """Loads and verifies one checkpoint folder; raises CheckpointError saying what is wrong with it."""
    try:
        with open(os.path.join(folder, STATE_FILE)) as handle:
            state = json.load(handle)
        for name in ARRAY_FILES:
            if _sha256(os.path.join(folder, name)) != state["sha256"][name]:
                raise CheckpointError(f"{name} does not match its checksum")
        with np.load(os.path.join(folder, "weights.npz")) as weights, \
                np.load(os.path.join(folder, "optimizer.npz")) as optimizer:
            state["weights"] = [weights[f"arr_{i}"] for i in range(len(weights.files))]
            state["optimizer"] = [optimizer[f"arr_{i}"] for i in range(len(optimizer.files))]
    except CheckpointError as err:
        raise CheckpointError(f"checkpoint {folder}: {err}") from None
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"checkpoint {folder}: unreadable ({type(err).__name__}: {err})") from None
    return state


def candidate_folders(latest):
    """The latest checkpoint first, then its older siblings in the same run storage, newest first."""
    parent = os.path.dirname(latest.rstrip("/"))
    older = sorted((os.path.join(parent, d) for d in os.listdir(parent)
                    if d.startswith(DIR_PREFIX) and os.path.join(parent, d) != latest.rstrip("/")), reverse=True)
    return [latest.rstrip("/")] + older


def load_verified(latest):
    """The newest checkpoint that passes its checks, and the ones skipped on the way with the reasons."""
    skipped = []
    for folder in candidate_folders(latest):
        try:
            state = read_folder(folder)
        except CheckpointError as err:
            skipped.append(str(err))
            continue
        state["path"], state["skipped"] = folder, skipped
        return state
    raise CheckpointError("no usable checkpoint to resume from: " + "; ".join(skipped))


def apply(model, state):
    """Puts a loaded checkpoint's weights and optimizer state into `model` (built in the strategy's scope)."""
    model.set_weights(state["weights"])
    model.optimizer.build(model.trainable_variables)
    variables = _optimizer_variables(model)
    if len(variables) != len(state["optimizer"]):
        raise CheckpointError(f"checkpoint {state['path']}: optimizer has {len(variables)} variables, "
                              f"checkpoint holds {len(state['optimizer'])}")
    for variable, value in zip(variables, state["optimizer"]):
        variable.assign(value)
    model.optimizer.learning_rate = state["learning_rate"]


def restore_latest(checkpoint, model):
    """Restores from Ray's latest checkpoint (or an older one when it is damaged). None when there is none."""
    if checkpoint is None:
        return None
    if os.path.isdir(checkpoint.path):
        # Storage is a folder every node sees (local, or a shared volume on Kubernetes): older siblings are
        # reachable, so a damaged latest checkpoint falls back to the one before it.
        state = load_verified(checkpoint.path)
    else:  # remote storage: only the latest can be fetched
        with checkpoint.as_directory() as folder:
            state = read_folder(folder)
        state["path"], state["skipped"] = checkpoint.path, []
    apply(model, state)
    return state


# Rank 0's last finished epoch, in the run's storage: after a restart it is what tells how much work was lost.
PROGRESS_FILE = "progress.json"


def record_progress(storage_dir, epoch, when=None):
    storage.write_text(storage.join(storage_dir, PROGRESS_FILE),
                       json.dumps({"epoch": int(epoch), "time": time.time() if when is None else when}))


def read_progress(storage_dir):
    text = storage.read_text(storage.join(storage_dir, PROGRESS_FILE))
    return json.loads(text) if text else None


def recovery_account(restored, progress, run_started, now):
    """What a restart from `restored` (restore_latest's state) cost, for CheckpointController.observe_recovery:
    epochs finished after the checkpoint and lost, and seconds lost since the checkpoint was committed, the
    restart included (as simulate_checkpoints.py charges them). A checkpoint of an earlier process (--resume)
    costs only the work after it that that process lost: the time until the rerun is the user's, not a failure's.
    None when nothing can be said (a checkpoint from before saved_at was recorded)."""
    saved_at = restored.get("saved_at")
    if saved_at is None:
        return None
    last_epoch, last_time = restored["epoch"], saved_at
    if progress and progress.get("epoch", 0) >= restored["epoch"]:
        last_epoch, last_time = progress["epoch"], progress["time"]
    in_this_run = last_time >= run_started
    return {"epochs_redone": max(0, last_epoch - restored["epoch"]),
            "seconds_lost": max(0.0, (now if in_this_run else last_time) - saved_at),
            "in_this_run": in_this_run}
