"""How worker messages become the results' recovery account, on made-up message streams."""

import pytest

from run_report import epoch_pauses, recovery_account, split_attempts


def worker(rank, t, resumed=0):
    return {"type": "worker", "rank": rank, "attempt_started": t, "resumed_from_epoch": resumed,
            "restored_from": f"ckpt{resumed}" if resumed else None}


def epoch(n, t, seconds=10.0):
    return {"type": "epoch", "epoch": n, "time": t, "seconds": seconds}


def test_ranks_starting_in_any_order_form_one_attempt():
    attempts = split_attempts([worker(1, 0.0), worker(0, 0.1), {"type": "fit_started", "time": 1.0},
                               epoch(1, 11.0), epoch(2, 21.5)])
    assert len(attempts) == 1 and {w["rank"] for w in attempts[0]["workers"]} == {0, 1}
    assert epoch_pauses(attempts) == [pytest.approx(0.5)]


def test_restart_accounting():
    # Attempt 1 finishes epochs 1-3 (checkpoint after 2), dies in epoch 4 at t=35; attempt 2 resumes after 2.
    messages = [worker(0, 0.0), worker(1, 0.0), {"type": "fit_started", "time": 1.0},
                epoch(1, 11.0), epoch(2, 21.0), epoch(3, 31.0),
                {"type": "failure_injected", "rank": 1, "epoch": 4, "step": 5, "time": 35.0},
                worker(1, 40.0, resumed=2), worker(0, 40.0, resumed=2), {"type": "fit_started", "time": 45.0},
                epoch(3, 55.0), epoch(4, 65.0)]
    account = recovery_account(split_attempts(messages))
    assert account["restarts"] == 1 and account["epochs_redone"] == 1
    event = account["events"][0]
    assert event["resumed_after_epoch"] == 2 and event["last_epoch_before_failure"] == 3 and event["injected"]
    # Undisturbed, epoch 4 would have ended at 31 + 10 = 41; it ended at 65: 24 s lost.
    assert event["seconds_lost"] == pytest.approx(24.0) and account["seconds_lost"] == pytest.approx(24.0)


def test_no_restart_means_nothing_lost():
    account = recovery_account(split_attempts([worker(0, 0.0), epoch(1, 10.0)]))
    assert account == {"failures": 0, "restarts": 0, "epochs_redone": 0, "seconds_lost": 0.0, "events": [],
                       "resumed_at_start_after_epoch": 0}


def test_the_first_step_is_kept_per_attempt_for_the_start_up_cost():
    attempts = split_attempts([worker(0, 0.0), {"type": "fit_started", "time": 1.0},
                               {"type": "first_step", "time": 3.5}, epoch(1, 11.0)])
    assert attempts[0]["fit_started"] == 1.0 and attempts[0]["first_step"] == 3.5
