"""Progress inside an epoch: a daemon thread that wakes every PROGRESS_INTERVAL seconds, reads the step counter the
epoch recorder keeps anyway (fitting.epoch_recorder) and hands a snapshot to `emit`: the baseline prints it, a
Ray worker of rank 0 sends it to the driver, which prints it for the group. Nothing runs per step beyond that
counter, and the workers never wait for each other because of it.

The line is plain text, one per interval, so that a pipe, a log file or `kubectl exec` stays readable;
scripts/lib/console.sh redraws it in place when the user's terminal is a tty (PROGRESS_PATTERN says which
lines it may redraw). Standard library only.
"""

import sys
import threading
import time

from training.core.fitting import format_duration

# What console.sh recognises as a line it may overwrite with the next one (an extended regex, for grep and bash).
PROGRESS_PATTERN = r"^\[[^]]+\] (epoch [0-9]+/[0-9]+  step [0-9]+/[0-9]+|starting the workers: |scoring the test set: )"
# A stopped ticker's thread gets this long to finish a report already on its way (a Ray queue call).
STOP_WAIT_SECONDS = 5.0


def snapshot(epoch, epochs, step, steps, epoch_seconds, images_per_step, finished_epoch_seconds=()):
    """The in-epoch state as the message the driver or the console gets: where the epoch is, its images per
    second so far, and the time left in the epoch and in the run (the run's from the epochs finished in this
    fit, else from this epoch's rate)."""
    rate = step / epoch_seconds if step and epoch_seconds > 0 else None
    epoch_left = (steps - step) / rate if rate else None
    run_left = None
    if epoch_left is not None:
        per_epoch = (sum(finished_epoch_seconds) / len(finished_epoch_seconds) if finished_epoch_seconds
                     else epoch_seconds + epoch_left)
        run_left = epoch_left + (epochs - epoch) * per_epoch
    return {"epoch": epoch, "epochs": epochs, "step": step, "steps": steps, "epoch_seconds": epoch_seconds,
            "images_per_second": rate * images_per_step if rate else None, "epoch_left": epoch_left,
            "run_left": run_left}


def format_step_progress(prefix, state):
    """[prefix] epoch 2/10  step 120/703 17%  143 images/s  ~4m12s left, run ~45m10s: under 80 columns."""
    head = f"[{prefix}] epoch {state['epoch']}/{state['epochs']}  step {state['step']}/{state['steps']}"
    if not state["step"]:
        # The first step of a fit traces the graph: the seconds say it is alive.
        return f"{head}  first step running ({format_duration(state['epoch_seconds'])})"
    share = 100 * state["step"] // state["steps"] if state["steps"] else 100
    line = f"{head} {share}%  {state['images_per_second']:.0f} images/s"
    if state["step"] >= state["steps"]:
        return f"{line}  validating, run ~{format_duration(state['run_left'])} left"
    return f"{line}  ~{format_duration(state['epoch_left'])} left, run ~{format_duration(state['run_left'])}"


_PRINT_LOCK = threading.Lock()


def print_line(line):
    """Prints one whole line: the ticker's thread and the training thread both print, and print() writes a line
    and its newline in two calls, which two threads can interleave."""
    with _PRINT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class StepTicker:
    """Given to epoch_recorder(ticker=...): started when fit begins, stopped when it ends. `emit(state)` gets a
    snapshot() every `interval` seconds while an epoch runs."""

    def __init__(self, emit, interval, steps_per_epoch, images_per_step):
        self.emit, self.interval = emit, interval
        self.steps, self.images_per_step = steps_per_epoch, images_per_step
        self._stop = threading.Event()
        self._thread = None
        self._recorder = None

    def start(self, recorder):
        self._recorder = recorder
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="step-progress", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_SECONDS)

    def _run(self):
        while not self._stop.wait(self.interval):
            state = self.read()
            if state is not None and not self._stop.is_set():
                self.emit(state)

    def read(self):
        """The recorder's counter now, or None between fit's start and its first epoch."""
        recorder = self._recorder
        epoch, started = recorder.epoch, recorder.epoch_started
        if epoch is None or started is None:
            return None
        return snapshot(epoch, recorder.total_epochs, min(recorder.steps_done, self.steps), self.steps,
                        time.monotonic() - started, self.images_per_step,
                        [record["seconds"] for record in recorder.history])
