"""How worker messages become the results' recovery account, on made-up message streams."""

import pytest

from training.distributed.run_report import epoch_pauses, fit_edges, recovery_account, split_attempts


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


def test_the_time_inside_model_fit_but_outside_its_epochs_is_split_at_its_edges():
    """Where an intermittent stall of model.fit sits (issue 24): before the first epoch, after the last epoch's
    callbacks, or between Keras' end of training and fit returning."""
    done = {"fit_started": 100.0, "fit_ended": 130.0,
            "fit_marks": {"first_epoch_begin": 100.25, "last_epoch_done": 124.0,
                          "train_end": 124.5}}
    assert fit_edges(done) == pytest.approx({"before_first_epoch": 0.25, "after_last_epoch": 0.5,
                                             "train_end_to_return": 5.5})
    # A resumed run with nothing left to fit has no epochs and no marks.
    assert fit_edges({"fit_started": 1.0, "fit_ended": 1.0, "fit_marks": {}}) == {}


# --- the whole document: Ray Train's Result plus the queue -------------------------------------------------------

def run_config(**changes):
    """The resolved Ray run of these flags (by lower-case setting name), as ray_training builds it."""
    from training.distributed.ray_run_config import RayRunConfig

    values = {**dict(run_id="r1", output="out.json", dataset="digits", seed=3, epochs=2, batch_size=64,
                     batch_size_mode="global", learning_rate=0.002, lr_scaling="sqrt", num_workers=2,
                     cpus_per_worker=1, allreduce_dtype="bfloat16", checkpoint_policy="interval:2",
                     storage_path="/tmp/ckpt"), **changes}
    argv = [word for name, value in values.items() for word in (f"--{name.replace('_', '-')}", str(value))]
    args = _parse_ray(argv)
    return RayRunConfig.from_args(args).replace(run_id=values["run_id"])


def _parse_ray(argv):
    from training.core import settings

    return settings.parse("ray", "test", argv)


def placed(rank, t):
    return {**worker(rank, t), "shard_size": 320, "val_shard_size": 40, "steps_per_epoch": 10,
            "tf_threads": {"intra_op": 1, "inter_op": 1}, "images_per_step": 32}


def finished(rank, t, correct):
    return {"type": "done", "rank": rank, "fit_started": 1.0, "fit_ended": 21.0, "time": t,
            "counts": {"correct": [correct, 5], "total": [10, 10], "loss_sum": 4.0}, "epoch_cpu": []}


def row(n):
    return {"epoch": n, "loss": 1.0 / n, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5, "seconds": 10.0}


SUMMARY = {"history": [row(1), row(2)], "controller": {"version": 1, "checkpoints": 1},
           "class_names": ["zero", "one"], "data_source": "sklearn digits", "accuracy_meaningful": True,
           "sizes": {"train": 700, "val": 80, "test": 20}, "num_parameters": 1234}


def fake_result(summary=SUMMARY, checkpoint_path="/tmp/ckpt/r1/checkpoint_epoch_0002"):
    """What trainer.fit() returns, as far as run_report reads it (ray.train.Result's attributes)."""
    from types import SimpleNamespace

    checkpoint = SimpleNamespace(path=checkpoint_path) if checkpoint_path else None
    return SimpleNamespace(return_value=summary, metrics={"epoch": 2, "loss": 0.5} if checkpoint else None,
                           checkpoint=checkpoint, error=None)


MESSAGES = [placed(0, 0.0), placed(1, 0.0), {"type": "fit_started", "time": 1.0},
            {**epoch(1, 11.0), "checkpointed": False, "checkpoint_seconds": None, "checkpoint_reason": "next at 2"},
            {**epoch(2, 21.0), "checkpointed": True, "checkpoint_seconds": 0.25, "checkpoint_reason": "final"},
            finished(1, 22.0, 6), finished(0, 22.5, 8)]
TIMINGS = {"process_start": -2.0, "script_start": -1.5, "imports_done": -1.0, "ray_ready": -0.8,
           "fit_called": -0.5, "fit_returned": 24.0}


def test_history_controller_and_latest_checkpoint_come_from_ray_trains_result():
    from training.core.results import validate
    from training.distributed.run_report import assemble_result

    result = assemble_result(run_config(), fake_result(), MESSAGES, {"nodes": 3, "cpus": 2}, TIMINGS)
    validate(result)
    assert result["history"] == SUMMARY["history"] and result["epochs_completed"] == 2
    assert result["num_parameters"] == 1234 and result["config"]["data_source"] == "sklearn digits"
    checkpoints = result["checkpoints"]
    assert checkpoints["controller_state"] == SUMMARY["controller"]
    assert checkpoints["latest"] == {"epoch": 2, "path": "/tmp/ckpt/r1/checkpoint_epoch_0002"}
    assert checkpoints["epochs"] == [2] and checkpoints["seconds_by_epoch"] == {"2": 0.25}
    # Each worker's test counts come from its own message and add up.
    assert result["test_accuracy"] == pytest.approx((8 + 6 + 5 + 5) / 40)
    assert result["config"]["storage_dir"] == "/tmp/ckpt/r1" and result["config"]["allreduce_dtype"] == "bfloat16"
    assert result["training_time_seconds"] == pytest.approx(20.0)


def test_a_run_without_checkpoints_has_no_latest_one():
    from training.distributed.run_report import assemble_result

    result = assemble_result(run_config(checkpoint_policy="never"), fake_result(checkpoint_path=None), MESSAGES,
                             {"nodes": 1, "cpus": 2}, TIMINGS)
    assert result["checkpoints"]["latest"] is None


def test_a_result_without_rank_0s_summary_is_refused():
    from training.distributed.run_report import assemble_result

    with pytest.raises(RuntimeError, match="rank 0's summary"):
        assemble_result(run_config(), fake_result(summary=None), MESSAGES, {"nodes": 1, "cpus": 2}, TIMINGS)


# --- the typed run configuration ---------------------------------------------------------------------------------

def test_run_config_reads_the_flags_and_survives_the_trip_to_the_workers():
    from training.distributed.ray_run_config import RayRunConfig

    config = run_config()
    assert (config.per_worker_batch, config.global_batch, config.learning_rate) == (32, 64, 0.002)
    assert RayRunConfig.from_dict(config.to_dict()) == config
    assert run_config(batch_size_mode="per-worker", lr_scaling="linear").learning_rate == pytest.approx(0.004)
    assert run_config(num_workers=1).allreduce_dtype_used == "float32"
    assert config.controller_args == {"mtbf_seconds": 3600.0, "budget_fraction": 0.05}
