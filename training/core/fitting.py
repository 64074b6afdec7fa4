"""The training loop both scripts share: the same model.fit call, callbacks, progress line and result assembly.
The baseline calls it in one process; each Ray worker calls it inside MultiWorkerMirroredStrategy."""

import os
import time

from training.core import cpu_usage

STEADY_STATE_SKIP_EPOCHS = 1  # the first epoch carries graph tracing and warm-up


def format_duration(seconds):
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def format_progress(prefix, record, total_epochs, elapsed_seconds):
    """One line per epoch: epoch k/N, loss, accuracy, validation, seconds and an estimate of the time left."""
    done = record["epoch"]
    left = elapsed_seconds / done * (total_epochs - done) if done else 0.0
    val = ""
    if record.get("val_accuracy") is not None:
        val = f"  val_loss {record['val_loss']:.4f}  val_acc {record['val_accuracy']:.4f}"
    return (f"[{prefix}] epoch {done}/{total_epochs}  loss {record['loss']:.4f}  acc {record['accuracy']:.4f}"
            f"{val}  {record['seconds']:.1f}s  ~{format_duration(left)} left")


def epoch_recorder(total_epochs, on_epoch=None, initial_epoch=0, ticker=None):
    """A Keras callback that times each epoch and keeps its metrics as the results schema's history rows.
    `on_epoch(record, elapsed)` is called after each epoch (to print or report it). `ticker` (a
    step_progress.StepTicker) reads the step counter from its own thread while fit runs."""
    import tensorflow as tf

    class EpochRecorder(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history = []
            self.steps_in_epoch = []
            self.fit_started = None
            self.fit_ended = None
            self.total_epochs = total_epochs
            # Read by the ticker's thread: the epoch under way (1-based), when it started, its steps so far.
            self.epoch = None
            self.epoch_started = None
            self.steps_done = 0

        def on_train_begin(self, logs=None):
            self.fit_started = time.time()
            if ticker is not None:
                ticker.start(self)

        def on_epoch_begin(self, epoch, logs=None):
            self.steps_done = 0
            self._epoch_cpu = cpu_usage.snapshot()
            self.epoch_started = time.monotonic()
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            self.steps_done += 1

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            lr = getattr(self.model.optimizer, "learning_rate", None)
            record = {
                "epoch": epoch + 1,
                "loss": float(logs["loss"]),
                "accuracy": float(logs["accuracy"]),
                "val_loss": float(logs["val_loss"]) if "val_loss" in logs else None,
                "val_accuracy": float(logs["val_accuracy"]) if "val_accuracy" in logs else None,
                "seconds": time.monotonic() - self.epoch_started,
                "learning_rate": float(tf.keras.backend.get_value(lr)) if lr is not None else None,
                **cpu_usage.since(self._epoch_cpu),
            }
            self.history.append(record)
            self.steps_in_epoch.append(self.steps_done)
            self.epoch_started = None  # the epoch's line says the rest; no progress line until the next begins
            if on_epoch is not None:
                on_epoch(record, sum(r["seconds"] for r in self.history))

        def on_train_end(self, logs=None):
            self.fit_ended = time.time()
            if ticker is not None:
                ticker.stop()

    return EpochRecorder()


def standard_callbacks(early_stopping_patience):
    """Callbacks every run uses: halve the rate when validation loss stalls; optionally stop early."""
    import tensorflow as tf

    callbacks = [tf.keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-5)]
    if early_stopping_patience:
        callbacks.append(tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping_patience,
                                                          restore_best_weights=True))
    return callbacks


def run_fit(model, train_ds, val_ds, epochs, callbacks, initial_epoch=0, steps_per_epoch=None,
            validation_steps=None):
    """The one model.fit call of the kit. Returns its wall time in seconds. Step counts are needed for
    distributed datasets, whose length Keras cannot see."""
    started = time.monotonic()
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=initial_epoch,
              steps_per_epoch=steps_per_epoch, validation_steps=validation_steps, callbacks=callbacks, verbose=0)
    return time.monotonic() - started


def steady_state_epoch_seconds(history):
    """Median epoch time after warm-up: what the per-epoch cost converges to."""
    rows = history[STEADY_STATE_SKIP_EPOCHS:] or history
    times = sorted(r["seconds"] for r in rows)
    if not times:
        return None
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2


def process_start_time(fallback):
    """When the kernel started this process (Unix time), so start-up costs include the interpreter's own start
    and the kit's first imports; `fallback` where /proc cannot tell."""
    try:
        with open("/proc/self/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])  # since boot, in clock ticks
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return fallback


def first_epoch_excess(history):
    """How much longer the first epoch took than a steady one: tf.function tracing and warm-up."""
    steady = steady_state_epoch_seconds(history)
    return history[0]["seconds"] - steady if history and steady is not None and len(history) > 1 else None
