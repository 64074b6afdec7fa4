"""Progress inside an epoch: the snapshot's arithmetic, the plain line console.sh may redraw, and the ticker that
reads the epoch recorder's step counter from its own thread while model.fit runs."""

import re
import subprocess
import threading
import time
import types

from tests.helpers.common import REPO_ROOT, configured_tf
from training.core import step_progress
from training.core.fitting import epoch_recorder, run_fit


def test_the_snapshot_estimates_from_this_epochs_rate_and_the_finished_epochs():
    # 50 of 100 steps in 25 s: 2 steps/s, 128 images/s at 64 a step, 25 s left in the epoch; 8 more epochs of
    # the 40 s the finished one took.
    state = step_progress.snapshot(2, 10, 50, 100, 25.0, 64, [40.0])
    assert state["images_per_second"] == 128.0 and state["epoch_left"] == 25.0
    assert state["run_left"] == 25.0 + 8 * 40.0
    # No finished epoch yet: this one's own pace (25 s done + 25 s left) stands for the rest.
    assert step_progress.snapshot(2, 10, 50, 100, 25.0, 64)["run_left"] == 25.0 + 8 * 50.0


def test_the_line_says_step_rate_and_time_left_and_matches_the_consoles_pattern():
    line = step_progress.format_step_progress("ray 2w", step_progress.snapshot(2, 10, 50, 100, 25.0, 64, [40.0]))
    assert line == "[ray 2w] epoch 2/10  step 50/100 50%  128 images/s  ~25s left, run ~5m45s"
    first = step_progress.format_step_progress("baseline", step_progress.snapshot(1, 3, 0, 100, 12.4, 64))
    assert first == "[baseline] epoch 1/3  step 0/100  first step running (12s)"
    validating = step_progress.format_step_progress("baseline", step_progress.snapshot(1, 1, 100, 100, 50.0, 64))
    assert validating == "[baseline] epoch 1/1  step 100/100 100%  128 images/s  validating, run ~0s left"
    starting = "[ray 2w] starting the workers: 1/2 ready (12s)"  # the Ray driver's, until rank 0 fits
    scoring = "[baseline] scoring the test set: 10000 images"  # after fit, until the run's done: line
    assert all(re.match(step_progress.PROGRESS_PATTERN, text) for text in (line, first, validating, starting, scoring))
    # The per-epoch summary line is never taken for a progress line (console.sh must not overwrite it).
    assert not re.match(step_progress.PROGRESS_PATTERN, "[ray 2w] epoch 2/10  loss 1.2000  acc 0.5000  40.0s")


def test_console_sh_redraws_exactly_the_lines_of_this_pattern():
    out = subprocess.run(["bash", "-c", f'source "{REPO_ROOT}/scripts/lib/console.sh"; '
                                        'printf %s "${CONSOLE_PROGRESS_PATTERN}"'],
                         capture_output=True, text=True, check=True)
    assert out.stdout == step_progress.PROGRESS_PATTERN


def _recorder(epoch=None, started=None, steps_done=0, history=()):
    return types.SimpleNamespace(epoch=epoch, epoch_started=started, steps_done=steps_done, total_epochs=3,
                                 history=list(history))


def test_the_ticker_reports_the_counter_at_its_interval_and_nothing_after_stop():
    seen, reported = [], threading.Event()

    def emit(state):
        seen.append(state)
        reported.set()

    ticker = step_progress.StepTicker(emit, 0.01, steps_per_epoch=20, images_per_step=8)
    recorder = _recorder()
    ticker.start(recorder)
    time.sleep(0.1)
    assert seen == [], "no epoch under way yet: nothing to report"
    recorder.epoch, recorder.epoch_started, recorder.steps_done = 2, time.monotonic() - 5, 10
    assert reported.wait(5)
    ticker.stop()
    count = len(seen)
    time.sleep(0.1)
    assert len(seen) == count, "a stopped ticker says nothing more"
    assert seen[-1]["epoch"] == 2 and seen[-1]["step"] == 10 and seen[-1]["steps"] == 20
    assert 14 < seen[-1]["images_per_second"] < 17  # 10 steps of 8 in about 5 s


def test_the_recorder_starts_and_stops_the_ticker_around_a_real_fit():
    tf = configured_tf()
    import numpy as np

    seen = []
    ticker = step_progress.StepTicker(seen.append, 0.02, steps_per_epoch=10, images_per_step=4)
    recorder = epoch_recorder(2, ticker=ticker)
    slow = tf.keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_: time.sleep(0.02))
    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.zeros((40, 3), "float32"), np.zeros(40, "int64")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    run_fit(model, data, data.take(1), 2, [recorder, slow])
    assert not ticker._thread.is_alive(), "fit's end stops the ticker's thread"
    assert {state["epoch"] for state in seen} == {1, 2}
    assert all(0 <= state["step"] <= 10 and state["epochs"] == 2 for state in seen)
    assert any(0 < state["step"] < 10 for state in seen)
