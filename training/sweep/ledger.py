"""A sweep's durable progress: the append-only ledger RESULTS_DIR/experiments/<name>/ledger.jsonl, replayed into
each run's state, and the lock that allows one sweep per experiment.

Each event is one JSON line, written with one write() and fsync()ed before the sweep goes on, so a kill at any
instant leaves every complete line readable. Only the last line can be cut short by a kill: it is dropped with a
warning and the file rewritten atomically. Any other bad line stops the sweep with the file and line number.

Events (each also has "v": 1, "ts" and "event"):
  sweep_started   pid, argv, runs                       a sweep took the lock and starts work
  planned         run_id, index, repeat, kind, config_hash, cpus, scale
  started         run_id, attempt, pid, command, run_dir, resume
  succeeded       run_id, attempt, seconds, exit_code, results, training_time_seconds, best_val_accuracy,
                  recovered (true: the trainer had written valid results before the sweep was killed)
  failed          run_id, attempt, seconds, exit_code, error, retryable (false for bad input: exit 2 or 3)
  interrupted     run_id, attempt, error                an attempt cut off by a kill or Ctrl-C; not a failure
  stopped         reason, run_id                        the --target-accuracy stop rule ended the sweep
  sweep_finished  exit_code
State of a run, by replay: pending -> running -> succeeded | failed; interrupted puts it back to pending.
"""

import fcntl
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from training.core import atomic_files
from training.sweep import EXIT_FAILED, SweepError

LEDGER_VERSION = 1
LEDGER_FILE = "ledger.jsonl"
LOCK_FILE = "sweep.lock"
RUN_EVENTS = ("planned", "started", "succeeded", "failed", "interrupted")
EVENTS = RUN_EVENTS + ("sweep_started", "stopped", "sweep_finished")
ENDED = {"succeeded": "succeeded", "failed": "failed", "interrupted": "pending"}


@dataclass
class RunState:
    run_id: str
    planned: dict
    state: str = "pending"
    attempts: list = field(default_factory=list)  # one dict per attempt: attempt, outcome, seconds, error, ...
    last_event: dict = field(default_factory=dict)

    @property
    def gave_up(self):
        """A failed run that the sweep will not try again: its error is not one a retry can fix."""
        return self.state == "failed" and not self.attempts[-1].get("retryable", True)

    @property
    def failures(self):
        """Attempts that failed on their own; interrupted ones do not count against --max-attempts."""
        return sum(1 for attempt in self.attempts if attempt["outcome"] == "failed")


def utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_line(raw, path, number):
    problem = None
    try:
        event = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        problem = f"not JSON: {err}"
    else:
        if not isinstance(event, dict) or event.get("event") not in EVENTS:
            problem = "not a ledger event (no known 'event' field)"
        elif event.get("v") != LEDGER_VERSION:
            problem = f"ledger version {event.get('v')!r}, this sweep reads version {LEDGER_VERSION}"
        elif event["event"] in RUN_EVENTS and not isinstance(event.get("run_id"), str):
            problem = f"'{event['event']}' event without a run_id"
    if problem:
        raise SweepError(f"ledger '{path}' line {number} is corrupt ({problem}); move the file aside to keep it, "
                         f"or start over with --fresh", code=EXIT_FAILED)
    return event


def read_ledger(path, repair):
    """Returns [(line number, event)]. A cut-short last line is dropped with a warning on stderr, and with
    `repair` the file is rewritten without it (only the lock holder repairs; --status just reads)."""
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        return []
    *complete, tail = data.split(b"\n")  # a file that ends in a newline leaves an empty tail
    events = [(number, parse_line(raw, path, number)) for number, raw in enumerate(complete, 1)]
    if tail:
        number = len(complete) + 1
        try:
            event = parse_line(tail, path, number)
        except SweepError:
            print(f"warning: ledger '{path}' line {number} was cut short (a kill while writing it?); ignoring "
                  f"it{' and rewriting the file without it' if repair else ''}: {tail[:80]!r}", file=sys.stderr)
            keep = data[: len(data) - len(tail)]
        else:
            # Whole record, only its newline lost: keep it and end the file properly.
            print(f"warning: ledger '{path}' line {number} had no newline; "
                  f"{'adding it' if repair else 'reading it as complete'}", file=sys.stderr)
            events.append((number, event))
            keep = data + b"\n"
        if repair:
            atomic_files.write_bytes(path, keep)
    return events


def replay(events, path):
    """Folds the events into {run_id: RunState} (in planning order) and the last stop-rule event, if any."""
    states, stopped = {}, None
    for number, event in events:
        kind = event["event"]
        if kind == "stopped":
            stopped = event
        if kind not in RUN_EVENTS:
            continue
        run_id = event["run_id"]
        if kind == "planned":
            states.setdefault(run_id, RunState(run_id=run_id, planned=event))
            continue
        state = states.get(run_id)
        if state is None:
            raise SweepError(f"ledger '{path}' line {number} is corrupt ('{kind}' event for run {run_id}, which "
                             f"was never planned); move the file aside to keep it, or start over with --fresh",
                             code=EXIT_FAILED)
        if kind == "started":
            state.state = "running"
            state.attempts.append({"attempt": event.get("attempt"), "outcome": "running", "started_at": event["ts"],
                                   "resume": event.get("resume", False), "pid": event.get("pid"),
                                   "seconds": None, "error": None})
            continue
        if state.state != "running":
            raise SweepError(f"ledger '{path}' line {number} is corrupt ('{kind}' event for run {run_id}, which is "
                             f"not running); move the file aside to keep it, or start over with --fresh",
                             code=EXIT_FAILED)
        state.state = ENDED[kind]
        state.attempts[-1].update(outcome=kind, ended_at=event["ts"], seconds=event.get("seconds"),
                                  error=event.get("error"), exit_code=event.get("exit_code"),
                                  retryable=event.get("retryable", True), recovered=event.get("recovered", False))
        state.last_event = event
    return states, stopped


class LedgerWriter:
    """Appends events; each is on disk (fsync) before append() returns."""

    def __init__(self, path):
        self.path = path
        created = not os.path.exists(path)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:
            atomic_files.fsync(os.path.dirname(os.path.abspath(path)))

    def append(self, event, **fields):
        record = {"v": LEDGER_VERSION, "ts": utc_now(), "event": event, **fields}
        view = memoryview((json.dumps(record) + "\n").encode("utf-8"))
        # A Ctrl-C handler that raised between two partial writes would leave half a line in the middle of the
        # file once the next event is appended; the signals wait until the line is on disk.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            while view:
                view = view[os.write(self.fd, view):]
            os.fsync(self.fd)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return record

    def close(self):
        os.close(self.fd)


class SweepLock:
    """flock on <experiment>/sweep.lock for the sweep's lifetime. The kernel drops it when the process dies, even
    by SIGKILL, so a dead sweep never blocks the next one. The fd is not inherited by the trainers, so an
    orphaned trainer cannot hold it either."""

    def __init__(self, experiment_dir):
        self.path = os.path.join(experiment_dir, LOCK_FILE)
        self.fd = None

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            name = os.path.basename(os.path.dirname(self.path))
            raise SweepError(f"experiment '{name}' is already being run by another sweep (pid {holder}, lock "
                             f"{self.path}); wait for it to end, or watch it with --status", code=EXIT_FAILED) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def lock_holder(experiment_dir):
    """The pid text of a live sweep on this experiment, or None; only looks (for --status)."""
    path = os.path.join(experiment_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)
    return None


def move_aside(experiment_dir):
    """--fresh: the old experiment becomes <name>.<timestamp>.old next to it. Nothing is ever deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = f"{experiment_dir}.{stamp}.old"
    suffix = 1
    while os.path.exists(target):
        suffix += 1
        target = f"{experiment_dir}.{stamp}-{suffix}.old"
    os.rename(experiment_dir, target)
    atomic_files.fsync(os.path.dirname(os.path.abspath(experiment_dir)))
    return target
