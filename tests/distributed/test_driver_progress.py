"""The Ray driver's console while trainer.fit() blocks: rank 0's in-epoch progress is printed and kept out of the
results, and while the workers have nothing to report (starting, scoring the test set) the driver itself says,
every PROGRESS_INTERVAL, what it waits for, so that a slow phase is never a silent one. A stand-in queue replaces the queue actor (no Ray cluster)."""

import queue
import time
import types

from training import ray_training
from training.core.step_progress import snapshot


class LocalQueue:
    """ray.util.queue.Queue's calls that Progress makes, on a local queue."""

    def __init__(self):
        self._queue = queue.Queue()

    def put(self, message):
        self._queue.put(message)

    def get(self, block=True, timeout=None):
        from ray.util.queue import Empty

        try:
            return self._queue.get(block, timeout)
        except queue.Empty:
            raise Empty from None

    def get_nowait(self):
        return self._queue.get_nowait()

    def empty(self):
        return self._queue.empty()


def worker(rank):
    return {"type": "worker", "rank": rank, "resumed_from_epoch": 0, "restored_from": None, "skipped_checkpoints": []}


def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_driver_speaks_while_the_workers_start_then_prints_rank_0s_progress(capsys):
    config = types.SimpleNamespace(epochs=2, num_workers=2, progress_interval=0.05)
    channel = LocalQueue()
    progress = ray_training.Progress(channel, config)
    shown = []

    def lines():
        shown.extend(capsys.readouterr().out.splitlines())
        return shown

    wait_for(lambda: any("starting the workers: 0/2 ready" in line for line in lines()))
    channel.put(worker(0))
    wait_for(lambda: any("starting the workers: 1/2 ready" in line for line in lines()))
    channel.put({"type": "fit_started", "time": time.time(), "initial_epoch": 0})
    wait_for(lambda: progress.quiet.phase is None)
    time.sleep(0.1)
    count = len(lines())
    time.sleep(0.3)
    assert len(lines()) == count, "once rank 0 fits, the start-up notice stops (rank 0's own lines take over)"

    channel.put({"type": "step_progress", **snapshot(1, 2, 5, 10, 5.0, 64)})
    for epoch in (1, 2):
        channel.put({"type": "epoch", "epoch": epoch, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0,
                     "val_accuracy": 0.5, "seconds": 10.0, "checkpointed": False})
    progress.finish()
    shown = lines()
    after = shown[shown.index("[ray 2w] epoch 1/2  step 5/10 50%  64 images/s  ~5s left, run ~15s") + 1:]
    assert after[:3] == ["[ray 2w] epoch 1/2  loss 1.0000  acc 0.5000  val_loss 1.0000  val_acc 0.5000  10.0s  "
                         "~10s left",
                         "[ray 2w] epoch 2/2  loss 1.0000  acc 0.5000  val_loss 1.0000  val_acc 0.5000  10.0s  "
                         "~0s left",
                         "[ray 2w] scoring the test set: each worker its share (0s)"]
    # Until fit returns (finish()), the scoring goes on being announced.
    assert all(line.startswith("[ray 2w] scoring the test set: ") for line in after[3:])
    assert [m["type"] for m in progress.messages] == ["worker", "fit_started", "epoch", "epoch"], \
        "progress lines are no results"


def test_a_restarted_group_is_announced_again_then_the_scoring_and_zero_turns_it_off():
    said = []
    owner = types.SimpleNamespace(label="ray 2w", last_line=time.monotonic(), say=said.append)
    quiet = ray_training.QuietPhases(owner, 2, 3, 0)  # PROGRESS_INTERVAL=0: no thread, nothing said
    for message in (worker(0), worker(1), {"type": "fit_started"}):
        quiet.note(message)
    assert quiet.phase is None and quiet.ready == {0, 1}
    quiet.note(worker(1))  # the same rank again: Ray Train started a new group
    assert quiet.phase == "starting" and quiet.ready == {1}
    quiet.note({"type": "fit_started"})
    quiet.note({"type": "epoch", "epoch": 2})
    assert quiet.phase is None, "not the final epoch"
    quiet.note({"type": "epoch", "epoch": 3})
    assert quiet.phase == "scoring" and quiet.describe().startswith("[ray 2w] scoring the test set: ")
    time.sleep(0.1)
    assert said == []
