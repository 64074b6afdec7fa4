"""Checkpoint folders: what is saved comes back, and a damaged latest checkpoint falls back to the one before
or fails with a clear message."""

import os

import numpy as np
import pytest

from tests.helpers.common import configured_tf
from training.checkpointing import checkpoints

tf = configured_tf()


def small_model(seed):
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential([tf.keras.layers.Input((4,)), tf.keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(seed).random((16, 4), dtype=np.float32)
    model.fit(x, np.arange(16) % 3, epochs=1, verbose=0)  # so the optimizer has moments worth saving
    return model


def save(parent, model, epoch):
    folder = os.path.join(parent, checkpoints.dir_name(epoch))
    os.makedirs(folder)
    checkpoints.write_folder(folder, model, model.get_weights(), epoch, [{"epoch": epoch}], {"policy": "every"})
    return folder


def test_round_trip_restores_weights_optimizer_and_epoch(tmp_path):
    trained = small_model(1)
    folder = save(tmp_path, trained, 3)
    state = checkpoints.load_verified(folder)
    fresh = small_model(2)
    checkpoints.apply(fresh, state)
    assert state["epoch"] == 3 and state["history"] == [{"epoch": 3}] and state["skipped"] == []
    for a, b in zip(fresh.get_weights(), trained.get_weights()):
        assert np.array_equal(a, b)
    for a, b in zip(fresh.optimizer.variables, trained.optimizer.variables):
        assert np.array_equal(a.numpy(), b.numpy())


def test_damaged_latest_falls_back_to_the_one_before(tmp_path):
    model = small_model(1)
    save(tmp_path, model, 1)
    latest = save(tmp_path, model, 2)
    with open(os.path.join(latest, "weights.npz"), "r+b") as handle:
        handle.truncate(20)
    state = checkpoints.load_verified(latest)
    assert state["epoch"] == 1 and state["path"].endswith(checkpoints.dir_name(1))
    assert len(state["skipped"]) == 1 and "weights.npz does not match its checksum" in state["skipped"][0]


def test_no_usable_checkpoint_is_a_clear_error(tmp_path):
    model = small_model(1)
    latest = save(tmp_path, model, 1)
    os.remove(os.path.join(latest, "state.json"))
    with pytest.raises(checkpoints.CheckpointError, match="no usable checkpoint to resume from: .*unreadable"):
        checkpoints.load_verified(latest)


def test_a_restart_in_the_run_is_charged_from_the_checkpoint_to_now():
    """Failure in epoch 4 after a checkpoint of epoch 2 and a finished epoch 3: one epoch redone, and every
    second since the checkpoint was committed lost (as simulate_checkpoints.py charges a restart)."""
    restored = {"epoch": 2, "saved_at": 1000.0}
    account = checkpoints.recovery_account(restored, {"epoch": 3, "time": 1030.0}, run_started=900.0, now=1070.0)
    assert account == {"epochs_redone": 1, "seconds_lost": 70.0, "in_this_run": True}


def test_a_resume_of_an_earlier_process_charges_only_the_work_it_lost():
    restored = {"epoch": 2, "saved_at": 1000.0}
    account = checkpoints.recovery_account(restored, {"epoch": 3, "time": 1030.0}, run_started=5000.0, now=5020.0)
    assert account == {"epochs_redone": 1, "seconds_lost": 30.0, "in_this_run": False}


def test_progress_older_than_the_checkpoint_or_missing_means_nothing_redone():
    restored = {"epoch": 2, "saved_at": 1000.0}
    assert checkpoints.recovery_account(restored, None, 900.0, 1010.0)["epochs_redone"] == 0
    assert checkpoints.recovery_account(restored, {"epoch": 1, "time": 990.0}, 900.0, 1010.0) == {
        "epochs_redone": 0, "seconds_lost": 10.0, "in_this_run": True}
    assert checkpoints.recovery_account({"epoch": 2}, None, 900.0, 1010.0) is None, "a checkpoint without saved_at"


def test_progress_round_trips_through_storage(tmp_path):
    assert checkpoints.read_progress(str(tmp_path)) is None
    checkpoints.record_progress(str(tmp_path), 3, when=1234.5)
    assert checkpoints.read_progress(str(tmp_path)) == {"epoch": 3, "time": 1234.5}
