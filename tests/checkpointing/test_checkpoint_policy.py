"""The checkpoint controller's promises, checked on simulated timelines (training/checkpointing/checkpoint_policy.py)."""

import json
import math
import random

import pytest

from tests.helpers.timelines import run_timeline, uniform
from training.checkpointing.checkpoint_policy import CheckpointController, daly_interval
from training.core.settings import SettingsError
from training.core.settings.policies import CheckpointPolicy, PolicyError, parse_policy


# --- parse_policy ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("every", CheckpointPolicy("every")),
    ("never", CheckpointPolicy("never")),
    (" Adaptive ", CheckpointPolicy("adaptive")),
    ("interval:3", CheckpointPolicy("interval", 3)),
    ("INTERVAL: 10", CheckpointPolicy("interval", 10)),
])
def test_parse_policy_accepts_the_documented_forms(text, expected):
    assert parse_policy(text) == expected
    assert parse_policy(str(expected)) == expected  # str() gives back a form parse_policy takes


@pytest.mark.parametrize("text", ["", "sometimes", "interval", "interval:", "interval:0", "interval:-2",
                                  "interval:1.5", "interval:x", "every:2", "adaptive\nevery"])
def test_parse_policy_rejects_anything_else_in_one_line_naming_the_setting(text):
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    message = str(caught.value)
    assert isinstance(caught.value, SettingsError)
    assert message.startswith("CHECKPOINT_POLICY must be one of every, never, interval:K")
    assert "adaptive" in message
    assert "\n" not in message


# --- the final epoch ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["every", "interval:4", "interval:7", "adaptive"])
def test_final_epoch_is_always_saved_whatever_was_seen(policy):
    rng = random.Random(7)
    for _ in range(200):
        controller = CheckpointController(policy, mtbf_seconds=rng.choice([1e1, 1e3, 1e6]),
                                          checkpoint_seconds=rng.choice([None, 0.0, 1.0, 500.0]))
        total = rng.randint(1, 12)
        for epoch in range(1, total + 1):
            controller.observe_epoch(rng.uniform(0.1, 100))
            # Even with the budget used up and a checkpoint that costs more than the whole run.
            if rng.random() < 0.5:
                controller.observe_checkpoint(rng.uniform(0, 1000))
        assert controller.should_checkpoint(total, total)
        assert controller.last_reason.startswith("final epoch")


def test_never_saves_nothing_not_even_the_final_epoch():
    outcome = run_timeline(CheckpointController("never"), 10, uniform(5, 15), uniform(1, 2))
    assert outcome["saved_epochs"] == []
    assert all(not save for _, save, _ in outcome["reasons"])


def test_every_run_that_finishes_ends_with_a_checkpoint_despite_failures():
    failures = 0
    for seed in range(10):
        outcome = run_timeline(CheckpointController("adaptive", mtbf_seconds=200, checkpoint_seconds=2), 15,
                               uniform(10, 30), uniform(0.5, 2), failure_chance=0.2, seed=seed)
        failures += outcome["failures"]
        assert outcome["saved_epochs"][-1] == 15
    assert failures >= 10


def test_interval_saves_multiples_of_k_and_the_final_epoch():
    outcome = run_timeline(CheckpointController("interval:3"), 10, uniform(1, 2), uniform(0.1, 0.2))
    assert outcome["saved_epochs"] == [3, 6, 9, 10]


# --- the budget --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("budget", [0.02, 0.05, 0.2])
def test_checkpoint_time_never_exceeds_the_budget(seed, budget):
    """With checkpoints no dearer than the stated cost, optional checkpoint seconds stay within the budget at
    every checkpoint, across failures and restarts, whatever the failure rate says."""
    rng = random.Random(seed)
    cost = rng.choice([0.5, 3.0, 20.0])
    controller = CheckpointController("adaptive", mtbf_seconds=rng.choice([30, 300, 3000]), checkpoint_seconds=cost,
                                      budget_fraction=budget)
    outcome = run_timeline(controller, 40, uniform(5, 60), uniform(cost / 4, cost),
                           failure_chance=rng.choice([0.0, 0.05, 0.3]), seed=seed)
    for spent, work in outcome["ledger"].budget_checks:
        assert spent <= budget * work + 1e-9


def test_budget_holds_without_a_stated_cost_when_checkpoints_cost_less_than_an_epoch():
    controller = CheckpointController("adaptive", mtbf_seconds=20, checkpoint_seconds=None, budget_fraction=0.05)
    outcome = run_timeline(controller, 200, uniform(10, 12), uniform(1, 2), failure_chance=0.1, seed=3)
    checks = outcome["ledger"].budget_checks
    assert checks, "a failure every 20 s should make some optional checkpoints worth taking"
    for spent, work in checks:
        assert spent <= 0.05 * work + 1e-9


def test_the_budget_is_what_stops_checkpoints_when_failures_are_constant():
    controller = CheckpointController("adaptive", mtbf_seconds=10, prior_failures=1e6, checkpoint_seconds=1,
                                      budget_fraction=0.05)
    outcome = run_timeline(controller, 60, uniform(5, 5), uniform(1, 1))
    # Daly says every epoch; 5% of 5 s epochs pays for one 1 s checkpoint every 4 epochs.
    assert 13 <= len(outcome["saved_epochs"]) <= 16
    assert any("over budget" in reason for _, _, reason in outcome["reasons"])


# --- failure rate ------------------------------------------------------------------------------------------------

def _checkpoints_with_prior(mtbf, seed=0, learning_rate=0.0):
    controller = CheckpointController("adaptive", mtbf_seconds=mtbf, prior_failures=1e6, checkpoint_seconds=2,
                                      budget_fraction=0.5, learning_rate=learning_rate)
    return len(run_timeline(controller, 60, uniform(8, 12), uniform(1, 2), seed=seed)["saved_epochs"])


MTBFS_FALLING = (1e6, 1e5, 1e4, 3e3, 1e3, 300, 100, 30)


@pytest.mark.parametrize("seed", range(3))
def test_more_checkpoints_as_the_failure_rate_grows(seed):
    counts = [_checkpoints_with_prior(m, seed) for m in MTBFS_FALLING]
    assert counts == sorted(counts)
    assert counts[0] == 1 and counts[-1] == 60  # the final epoch only; every epoch


@pytest.mark.parametrize("seed", range(3))
def test_more_checkpoints_as_the_failure_rate_grows_while_learning(seed):
    # With no failures happening, each unused checkpoint also raises the multiplier; the order must survive it.
    counts = [_checkpoints_with_prior(m, seed, learning_rate=0.2) for m in MTBFS_FALLING]
    assert counts == sorted(counts)
    assert counts[-1] > 5 * counts[0]


def test_failures_seen_bring_more_checkpoints_than_none():
    def checkpoints_after(failures):
        controller = CheckpointController("adaptive", mtbf_seconds=3600, checkpoint_seconds=2)
        for _ in range(failures):
            controller.observe_failure(seconds_lost=30)
        return len(run_timeline(controller, 40, uniform(20, 20), uniform(2, 2))["saved_epochs"])

    counts = [checkpoints_after(k) for k in (0, 1, 3, 10, 30)]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_estimated_mtbf_grows_with_time_survived_and_falls_with_failures():
    controller = CheckpointController("adaptive", mtbf_seconds=1000)
    controller.observe_epoch(500)
    assert controller.mtbf_seconds() == pytest.approx(1500)
    controller.observe_failure(seconds_lost=100)
    assert controller.mtbf_seconds() == pytest.approx((1000 + 600) / 2)


def test_daly_interval_is_youngs_for_cheap_checkpoints_and_capped_for_dear_ones():
    assert daly_interval(1, 1e6) == pytest.approx(math.sqrt(2 * 1e6), rel=1e-2)
    assert daly_interval(0, 100) == 0
    assert daly_interval(300, 100) == 100
    costs = [0.1, 1, 10, 100]
    assert [daly_interval(c, 1000) for c in costs] == sorted(daly_interval(c, 1000) for c in costs)


# --- learning from recoveries ------------------------------------------------------------------------------------

def _trained_controller(learning_rate, epochs=10):
    controller = CheckpointController("adaptive", mtbf_seconds=3600, checkpoint_seconds=2,
                                      learning_rate=learning_rate)
    for _ in range(epochs):
        controller.observe_epoch(60)
    return controller


@pytest.mark.parametrize("saved_seconds", [60, 600])
def test_a_recovery_that_saved_much_lowers_the_threshold(saved_seconds):
    learning, fixed = _trained_controller(0.2), _trained_controller(0.0)
    before = learning.threshold_seconds()
    for controller in (learning, fixed):
        controller.observe_recovery(1, seconds_lost=90, seconds_saved=saved_seconds)
    assert learning.scale < 1
    assert learning.threshold_seconds() < fixed.threshold_seconds() < before


def test_a_recovery_lowers_the_threshold_more_the_more_it_saved():
    little, much = _trained_controller(0.2), _trained_controller(0.2)
    little.observe_recovery(0, seconds_lost=10, seconds_saved=5)
    much.observe_recovery(0, seconds_lost=10, seconds_saved=600)
    assert much.scale < little.scale < 1
    assert much.threshold_seconds() < little.threshold_seconds()


def test_checkpoints_that_never_paid_raise_the_threshold():
    learning, fixed = _trained_controller(0.2, epochs=0), _trained_controller(0.0, epochs=0)
    for controller in (learning, fixed):
        for _ in range(30):
            controller.observe_epoch(60)
            controller.observe_checkpoint(2)
    assert learning.scale > 1
    assert learning.threshold_seconds() > fixed.threshold_seconds()


def test_superseding_a_restored_checkpoint_teaches_nothing():
    controller = _trained_controller(0.2)
    controller.observe_recovery(1, seconds_lost=60, seconds_saved=600)
    scale = controller.scale
    controller.observe_epoch(60)
    controller.observe_checkpoint(2)  # replaces the checkpoint that was just restored: that one paid
    assert controller.scale == scale


def test_the_learned_multiplier_stays_within_its_limits():
    controller = _trained_controller(5.0)
    for _ in range(50):
        controller.observe_recovery(3, seconds_lost=200, seconds_saved=1e6)
    assert controller.scale == pytest.approx(0.25)
    for _ in range(500):
        controller.observe_epoch(60)
        controller.observe_checkpoint(50)
    assert controller.scale == pytest.approx(4.0)


def test_a_recovery_charges_the_restored_checkpoint_at_its_pessimistic_cost():
    controller = _trained_controller(0.2)
    controller.observe_checkpoint(3)  # the dearest seen
    controller.observe_epoch(60)
    state = controller.state()  # taken before the second checkpoint is written
    restored = CheckpointController.from_state(state)
    restored.observe_recovery(2, seconds_lost=150)
    assert restored.checkpoints == 2
    assert restored.checkpoint_seconds_total == pytest.approx(3 + 3)
    assert restored.failures == 1 and restored.recoveries == 1


# --- state round trip --------------------------------------------------------------------------------------------

def test_state_survives_json_and_the_restored_controller_decides_the_same():
    controller = CheckpointController("adaptive", mtbf_seconds=500, checkpoint_seconds=1.5, budget_fraction=0.1)
    outcome = run_timeline(controller, 25, uniform(10, 40), uniform(0.5, 1.5), failure_chance=0.2, seed=11)
    original = outcome["controller"]
    restored = CheckpointController.from_state(json.loads(json.dumps(original.state())))
    assert restored.state() == original.state()
    rng = random.Random(5)
    for epoch in range(1, 30):
        seconds = rng.uniform(10, 40)
        for controller in (original, restored):
            controller.observe_epoch(seconds)
        assert restored.decide(epoch, 30) == original.decide(epoch, 30)


@pytest.mark.parametrize("policy", ["every", "never", "interval:5", "adaptive"])
def test_state_keeps_the_policy(policy):
    assert str(CheckpointController.from_state(CheckpointController(policy).state()).policy) == policy


@pytest.mark.parametrize("bad", [None, {}, {"version": 99}, {"version": 1, "policy": "adaptive"}])
def test_from_state_rejects_what_state_did_not_write(bad):
    with pytest.raises(ValueError, match="controller state"):
        CheckpointController.from_state(bad)


# --- arguments and reasons ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{"mtbf_seconds": 0}, {"mtbf_seconds": -5}, {"budget_fraction": 0},
                                    {"budget_fraction": 1.5}, {"checkpoint_seconds": -1}, {"prior_failures": 0}])
def test_constructor_rejects_impossible_settings(kwargs):
    with pytest.raises(ValueError):
        CheckpointController("adaptive", **kwargs)


def test_observations_reject_negative_or_infinite_seconds():
    controller = CheckpointController("adaptive")
    for call in (lambda: controller.observe_epoch(-1), lambda: controller.observe_checkpoint(float("inf")),
                 lambda: controller.observe_recovery(-1), lambda: controller.should_checkpoint(0, 5),
                 lambda: controller.should_checkpoint(6, 5)):
        with pytest.raises(ValueError):
            call()


def test_every_decision_comes_with_a_one_line_reason():
    controller = CheckpointController("adaptive", mtbf_seconds=600, checkpoint_seconds=1)
    outcome = run_timeline(controller, 30, uniform(20, 40), uniform(0.5, 1), failure_chance=0.1, seed=2)
    kinds = set()
    for _, save, reason in outcome["reasons"]:
        assert reason and "\n" not in reason
        assert (" save" in reason or reason.startswith("final")) == save
        kinds.add(reason.split(",")[0])
    assert {"adaptive: wait", "adaptive: save", "final epoch: always saved"} <= kinds
