"""Simulated training timelines for the checkpoint controller's tests: no Ray, no TensorFlow, no clock.

A timeline drives a CheckpointController through checkpoint_loop, as ray_worker.py and the simulation do, and
keeps its own ledger of what really happened, so the tests check the controller against an account it did not
keep itself.
"""

import json
import random

from training.checkpointing.checkpoint_loop import CheckpointLoop


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
    loop = CheckpointLoop(controller, total_epochs)
    line = {"ledger": Ledger(), "saved": None}  # saved: (epoch, JSON text of the controller state, ledger)
    epoch, failures, saved_epochs, reasons = 0, 0, [], []

    def write(state):
        cost = checkpoint_seconds(rng)
        ledger = line["ledger"]
        if epoch < total_epochs:
            ledger.optional_checkpoint_seconds += cost
            ledger.budget_checks.append((ledger.optional_checkpoint_seconds, ledger.work_seconds))
        line["saved"] = (epoch, json.dumps(state), ledger.copy())
        return cost

    while epoch < total_epochs:
        seconds = epoch_seconds(rng)
        if failures < max_failures and rng.random() < failure_chance:
            failures += 1
            if line["saved"] is None:
                loop, line["ledger"], epoch, saved_epochs = loop.start_over(), Ledger(), 0, []
                continue
            saved_epoch, text, saved_ledger = line["saved"]
            redone = epoch - saved_epoch
            loop = CheckpointLoop.resumed(json.loads(text), total_epochs,
                                          {"epochs_redone": redone, "seconds_lost": redone * seconds + seconds / 2})
            line["ledger"], epoch = saved_ledger.copy(), saved_epoch
            saved_epochs = [e for e in saved_epochs if e <= saved_epoch]
            continue
        epoch += 1
        line["ledger"].work_seconds += seconds
        decision = loop.end_epoch(epoch, seconds, write)
        reasons.append((epoch, decision.checkpointed, decision.reason))
        if decision.checkpointed:
            saved_epochs.append(epoch)
    return {"saved_epochs": saved_epochs, "reasons": reasons, "ledger": line["ledger"], "failures": failures,
            "controller": loop.controller}


def uniform(low, high):
    return lambda rng: rng.uniform(low, high)
