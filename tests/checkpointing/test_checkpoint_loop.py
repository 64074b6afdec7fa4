"""The one loop around the checkpoint controller (training/checkpointing/checkpoint_loop.py), and that the simulation, the Ray
worker and the tasks-and-actors driver all go through it."""

import ast
import json
import os
import random

import pytest

from tests.helpers.common import TRAINING_DIR
from training.checkpointing.checkpoint_loop import CheckpointLoop
from training.checkpointing.checkpoint_policy import CheckpointController, parse_policy


def writer(costs, states=None):
    """A save callback that writes nothing: it keeps the state it was handed and returns the epoch's cost."""
    def save(state):
        if states is not None:
            states.append(json.loads(json.dumps(state)))  # as it would come back out of a checkpoint
        return costs.pop(0)

    return save


def test_the_state_handed_to_save_is_taken_before_the_write_and_the_write_is_observed_after():
    loop = CheckpointLoop.fresh("every", 3, checkpoint_seconds=0.5)
    states = []
    decision = loop.end_epoch(1, 10.0, writer([0.75], states))
    assert decision.checkpointed and decision.seconds == 0.75
    assert decision.record() == {"checkpointed": True, "checkpoint_seconds": 0.75,
                                 "checkpoint_reason": "every: saves after each epoch"}
    assert states[0]["checkpoints"] == 0 and states[0]["epochs_observed"] == 1
    assert loop.controller.checkpoints == 1 and loop.controller.checkpoint_seconds_total == 0.75


def test_no_checkpoint_means_no_write_and_a_reason():
    loop = CheckpointLoop.fresh("interval:2", 4)
    decision = loop.end_epoch(1, 10.0, writer([]))
    assert decision.record() == {"checkpointed": False, "checkpoint_seconds": None,
                                 "checkpoint_reason": "interval:2: next at epoch 2"}
    assert loop.controller.checkpoints == 0 and loop.controller.epochs_observed == 1


def test_a_write_that_fails_is_never_observed():
    loop = CheckpointLoop.fresh("every", 3)

    def dies(state):
        raise OSError("storage went away")

    with pytest.raises(OSError):
        loop.end_epoch(1, 10.0, dies)
    assert loop.controller.checkpoints == 0


def test_resuming_tells_the_restored_controller_what_the_failure_cost():
    loop = CheckpointLoop.fresh("every", 5, mtbf_seconds=600, checkpoint_seconds=1.0)
    states = []
    for epoch in (1, 2):
        loop.end_epoch(epoch, 20.0, writer([1.0], states))
    resumed = CheckpointLoop.resumed(states[-1], 5, {"epochs_redone": 1, "seconds_lost": 35.0})
    by_hand = CheckpointController.from_state(states[-1])
    by_hand.observe_recovery(1, seconds_lost=35.0)
    assert resumed.state() == by_hand.state()
    assert resumed.controller.recoveries == 1 and resumed.controller.mtbf_seconds() < loop.controller.mtbf_seconds()


def test_resuming_without_an_account_only_continues():
    loop = CheckpointLoop.fresh("every", 5)
    states = []
    loop.end_epoch(1, 20.0, writer([1.0], states))
    assert CheckpointLoop.resumed(states[0], 5).state() == states[0]


@pytest.mark.parametrize("seconds_lost, failures", [(None, 0), (42.0, 1)])
def test_starting_over_keeps_the_priors_and_forgets_the_rest(seconds_lost, failures):
    loop = CheckpointLoop.fresh("adaptive", 5, mtbf_seconds=900, checkpoint_seconds=2.0, budget_fraction=0.1)
    loop.end_epoch(1, 20.0, writer([2.0, 2.0]))
    again = loop.start_over(seconds_lost=seconds_lost).controller
    assert again.priors() == loop.controller.priors() and str(again.policy) == "adaptive"
    assert again.epochs_observed == 0 and again.failures == failures


def test_the_simulation_replays_a_failure_free_trial_as_the_loop_decides_it():
    """With no failure in reach, a simulated trial checkpoints exactly where the loop alone would."""
    from training.checkpointing import simulate_checkpoints

    trial = simulate_checkpoints.Trial(random.Random(1), [100.0] * 12, 4.0, 0.1, mtbf_seconds=1e12)
    args = {"mtbf_seconds": 3600.0, "checkpoint_seconds": 4.0, "budget_fraction": 0.05}
    out = simulate_checkpoints.run_policy(trial, parse_policy("adaptive"), 30.0, 1e9, args)
    loop = CheckpointLoop.fresh("adaptive", 12, **args)
    saved = [e for e, seconds in enumerate(trial.epochs, 1)
             if loop.end_epoch(e, seconds, writer([trial.checkpoints[e - 1]])).checkpointed]
    assert out["failures"] == 0 and 1 < out["checkpoints"] == len(saved) < 12
    assert out["checkpoint_seconds"] == pytest.approx(sum(trial.checkpoints[e - 1] for e in saved))


@pytest.mark.parametrize("module", ["distributed/ray_worker.py", "walkthrough/ray_patterns.py",
                                    "checkpointing/simulate_checkpoints.py"])
def test_every_driver_of_the_controller_goes_through_the_loop(module):
    """None of them calls the controller's observe_* or should_checkpoint itself: the order is the loop's."""
    with open(os.path.join(TRAINING_DIR, module)) as handle:
        tree = ast.parse(handle.read())
    called = {node.func.attr for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert "end_epoch" in called
    assert not called & {"observe_epoch", "should_checkpoint", "observe_checkpoint", "observe_recovery",
                         "observe_failure", "from_state"}
