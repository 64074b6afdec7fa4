"""Simulated training timelines for the checkpoint controller's tests: no Ray, no TensorFlow, no clock.

A timeline drives a CheckpointController the way ray_worker.py does (observe_epoch, should_checkpoint, state,
observe_checkpoint; after a failure from_state + observe_recovery) and keeps its own ledger of what really
happened, so the tests check the controller against an account it did not keep itself.
"""

import json
import os
import random
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINING_DIR = os.path.join(REPO_ROOT, "training")
if TRAINING_DIR not in sys.path:
    sys.path.insert(0, TRAINING_DIR)

from checkpoint_policy import CheckpointController  # noqa: E402


class Ledger:
    """What the current line of training really spent: the work and checkpoints a restart inherits."""

    def __init__(self):
        self.work_seconds = 0.0
        self.optional_checkpoint_seconds = 0.0  # every checkpoint except the final one
        self.budget_checks = []  # (optional checkpoint seconds, work seconds) at each optional checkpoint

    def copy(self):
        twin = Ledger()
        twin.work_seconds, twin.optional_checkpoint_seconds = self.work_seconds, self.optional_checkpoint_seconds
        twin.budget_checks = self.budget_checks  # shared on purpose: every check of the run, across restarts
        return twin


def run_timeline(controller, total_epochs, epoch_seconds, checkpoint_seconds, failure_chance=0.0, seed=0,
                 max_failures=50):
    """Trains `total_epochs` with random failures in the middle of an epoch (chance per epoch). Returns a dict:
    checkpoint epochs of the final line, every decision's reason, the ledger, failures and the last controller.
    epoch_seconds / checkpoint_seconds: functions of a random.Random giving one duration."""
    rng = random.Random(seed)
    ledger = Ledger()
    saved = None  # (epoch, JSON text of the controller state, ledger) of the latest checkpoint
    epoch, failures, saved_epochs, reasons = 0, 0, [], []
    while epoch < total_epochs:
        seconds = epoch_seconds(rng)
        if failures < max_failures and rng.random() < failure_chance:
            failures += 1
            if saved is None:
                controller = CheckpointController(controller.policy, **_prior_args(controller))
                ledger, epoch, saved_epochs = Ledger(), 0, []
                continue
            saved_epoch, text, saved_ledger = saved
            redone = epoch - saved_epoch
            controller = CheckpointController.from_state(json.loads(text))
            controller.observe_recovery(redone, seconds_lost=redone * seconds + seconds / 2)
            ledger, epoch = saved_ledger.copy(), saved_epoch
            saved_epochs = [e for e in saved_epochs if e <= saved_epoch]
            continue
        epoch += 1
        controller.observe_epoch(seconds)
        ledger.work_seconds += seconds
        save = controller.should_checkpoint(epoch, total_epochs)
        reasons.append((epoch, save, controller.last_reason))
        if save:
            text = json.dumps(controller.state())
            cost = checkpoint_seconds(rng)
            if epoch < total_epochs:
                ledger.optional_checkpoint_seconds += cost
                ledger.budget_checks.append((ledger.optional_checkpoint_seconds, ledger.work_seconds))
            controller.observe_checkpoint(cost)
            saved_epochs.append(epoch)
            saved = (epoch, text, ledger.copy())
    return {"saved_epochs": saved_epochs, "reasons": reasons, "ledger": ledger, "failures": failures,
            "controller": controller}


def _prior_args(controller):
    return {"mtbf_seconds": controller.mtbf_prior_seconds, "checkpoint_seconds": controller.checkpoint_prior_seconds,
            "budget_fraction": controller.budget_fraction, "prior_failures": controller.prior_failures,
            "learning_rate": controller.learning_rate}


def uniform(low, high):
    return lambda rng: rng.uniform(low, high)
