"""Runs a plan: each run in its own subprocess and folder, every step recorded in the ledger first, so that
running the same sweep again picks up exactly where a crash, a Ctrl-C or a lost machine left it.

A run's folder, RESULTS_DIR/experiments/<name>/runs/<run_id>/, holds results.json (only once the run succeeded
and the file validated), attempt-K.log (the trainer's stdout and stderr, one file per attempt) and, for Ray,
checkpoints/ (what a retried attempt resumes from).
"""

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

from training.core import results as results_schema
from training.sweep import EXIT_FAILED, EXIT_INTERRUPTED, SweepError, ledger
from training.sweep.commands import REPO_ROOT, RESULTS_FILE

POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 20  # a trainer given SIGINT says "interrupted" and exits; one that hangs gets SIGKILL
RUN_MARK = "KIT_SWEEP_RUN"  # in each trainer's environment: tells the next sweep which orphan is whose
PR_SET_PDEATHSIG = 1


@dataclass
class Options:
    build_command: Callable  # (run, run_dir, scaling, attempt) -> (argv, resumes)
    max_attempts: int = 3
    target_accuracy: Optional[float] = None
    stop_at_target: bool = False
    run_timeout: float = 0  # seconds; 0 = no limit
    target: str = "local"
    echo: Callable = print


class Interrupted(Exception):
    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)


def _die_with_parent():
    """In the trainer, before exec: the kernel kills it when the sweep dies, even by SIGKILL, so no orphan
    trains on (and skews the next attempt's timing) after the sweep is gone. Linux only; elsewhere the next
    sweep's orphan check covers it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def shown(path):
    """Paths in messages: relative when under the current folder (the usual RESULTS_DIR=results), else whole."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def experiment_paths(root, experiment):
    # Absolute: the trainers run from the repository root, the sweep from wherever the user is.
    folder = os.path.join(os.path.abspath(root), "experiments", experiment)
    return folder, os.path.join(folder, ledger.LEDGER_FILE)


def best_val_accuracy(result):
    values = [row["val_accuracy"] for row in result["history"] if row.get("val_accuracy") is not None]
    return max(values) if values else None


def valid_results(path, run_id):
    """The run's results document, or None with the reason: missing, not the schema, or another run's."""
    try:
        result = results_schema.load_results(path)
    except results_schema.ResultsError as err:
        return None, str(err)
    if result["run_id"] != run_id:
        return None, f"results file '{path}' belongs to run '{result['run_id']}', not '{run_id}'"
    return result, None


def last_error_line(log_path):
    """The trainers end a failure with one `error: ...` line; failing that, the log's last line."""
    try:
        with open(log_path, errors="replace") as handle:
            lines = [line.strip() for line in handle if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["(no output)"])[-1][:500]


def _orphan_matches(pid, mark):
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return f"{RUN_MARK}={mark}".encode() in handle.read().split(b"\0")
    except OSError:
        return False


def stop_orphan(attempt, run_id, echo):
    """A trainer the dead sweep left behind (where the parent-death signal did not reach it) is stopped before
    the run starts again. Only a process whose environment carries this run's mark is touched."""
    pid = attempt.get("pid")
    if not pid or not _orphan_matches(pid, f"{run_id}/{attempt['attempt']}"):
        return
    echo(f"[sweep] stopping trainer pid {pid} left running by the interrupted sweep")
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + 10
    while _orphan_matches(pid, f"{run_id}/{attempt['attempt']}") and time.monotonic() < deadline:
        time.sleep(0.1)


class Sweep:
    def __init__(self, plan, root, options):
        self.plan, self.options = plan, options
        self.folder, self.ledger_path = experiment_paths(root, plan.experiment)
        self.states = {}
        self.writer = None
        self.echo = options.echo

    # --- start-up: lock, ledger, plan -------------------------------------------------------------------------

    def open(self, argv):
        """Takes the lock, reads (and repairs) the ledger, checks it against the plan, then records the sweep
        and any newly planned runs. Refusals happen before the first write."""
        os.makedirs(self.folder, exist_ok=True)
        self.lock = ledger.SweepLock(self.folder).acquire()
        try:
            events = ledger.read_ledger(self.ledger_path, repair=True)
            self.states, _ = ledger.replay(events, self.ledger_path)
            planned = {run.run_id for run in self.plan.runs}
            foreign = [run_id for run_id in self.states if run_id not in planned]
            if foreign:
                raise SweepError(f"experiment '{self.plan.experiment}' holds runs planned with other scales or "
                                 f"settings (such as {foreign[0]}); run the same sweep as before, name another "
                                 f"--experiment, or start over with --fresh")
            self.writer = ledger.LedgerWriter(self.ledger_path)
            self.writer.append("sweep_started", pid=os.getpid(), argv=list(argv), experiment=self.plan.experiment,
                               scaling=self.plan.scaling, settings=self.plan.hashed_settings,
                               target=self.options.target, target_accuracy=self.options.target_accuracy,
                               max_attempts=self.options.max_attempts, runs=len(self.plan.runs))
            for run in self.plan.runs:
                if run.run_id not in self.states:
                    event = self.writer.append("planned", **run.planned_fields())
                    self.states[run.run_id] = ledger.RunState(run_id=run.run_id, planned=event)
        except BaseException:
            self.lock.release()
            raise

    def close(self, exit_code):
        if self.writer:
            self.writer.append("sweep_finished", exit_code=exit_code)
            self.writer.close()
        self.lock.release()

    # --- the runs -----------------------------------------------------------------------------------------------

    def run_all(self):
        """Returns the sweep's exit code: 0 all done, 1 some run failed for good, 130 interrupted."""
        previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for number, run in enumerate(self.plan.runs, 1):
                reached = self.target_reached()
                if reached:
                    self.writer.append("stopped", reason=f"val_accuracy {reached[1]:.4f} reached the target "
                                                         f"{self.options.target_accuracy} in run {reached[0]}",
                                       run_id=reached[0])
                    self.echo(f"[sweep] stop rule: run {reached[0]} reached val_accuracy {reached[1]:.4f} >= "
                              f"{self.options.target_accuracy}; the remaining runs are skipped")
                    break
                self.run_one(number, run)
        except Interrupted as stop:
            self.echo(f"[sweep] interrupted by {stop}; finished runs are kept, run the same command to resume")
            return EXIT_INTERRUPTED
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        failed = [s for s in self.states.values() if s.state == "failed"]
        return EXIT_FAILED if failed else 0

    def target_reached(self):
        if not self.options.stop_at_target or self.options.target_accuracy is None:
            return None
        for state in self.states.values():
            value = state.last_event.get("best_val_accuracy") if state.state == "succeeded" else None
            if value is not None and value >= self.options.target_accuracy:
                return state.run_id, value
        return None

    def run_one(self, number, run):
        state = self.states[run.run_id]
        label = f"[sweep] run {number}/{len(self.plan.runs)} {run.run_id} ({run.scale.describe()})"
        run_dir = os.path.join(self.folder, "runs", run.run_id)
        if state.state == "running":
            # The ledger says running but we hold the lock: the sweep that started it is gone.
            stop_orphan(state.attempts[-1], run.run_id, self.echo)
            if self.recover(state, run, run_dir, label):
                return
            self.record(state, "interrupted", attempt=state.attempts[-1]["attempt"],
                        error="the sweep stopped while this attempt ran (killed, or the machine went down)")
        if state.state == "succeeded":
            self.echo(f"{label}: done before (attempt {state.attempts[-1]['attempt']}), not run again")
            return
        while state.state != "succeeded":
            if state.gave_up:
                self.echo(f"{label}: failed with an error a retry cannot fix: {state.attempts[-1]['error']}")
                return
            if state.failures >= self.options.max_attempts:
                self.echo(f"{label}: failed {state.failures} time(s), the --max-attempts limit; last error: "
                          f"{state.attempts[-1]['error']}")
                return
            self.attempt(state, run, run_dir, label, len(state.attempts) + 1)

    def recover(self, state, run, run_dir, label):
        """The trainer may have finished and written its results just before the sweep died: keep that work."""
        path = os.path.join(run_dir, RESULTS_FILE)
        result, _ = valid_results(path, run.run_id)
        if result is None:
            return False
        self.echo(f"{label}: finished before the sweep was stopped; keeping its results")
        self.record(state, "succeeded", attempt=state.attempts[-1]["attempt"], seconds=None, exit_code=None,
                    recovered=True, **self.result_fields(result, run_dir))
        return True

    def result_fields(self, result, run_dir):
        return {"results": os.path.relpath(os.path.join(run_dir, RESULTS_FILE), self.folder),
                "training_time_seconds": result["training_time_seconds"],
                "images_per_second": result["images_per_second"],
                "best_val_accuracy": best_val_accuracy(result)}

    def record(self, state, event, **fields):
        record = self.writer.append(event, run_id=state.run_id, **fields)
        if event == "started":
            state.state = "running"
            state.attempts.append({"attempt": fields["attempt"], "outcome": "running", "pid": fields["pid"],
                                   "resume": fields["resume"], "seconds": None, "error": None})
            return
        state.state = ledger.ENDED[event]
        state.attempts[-1].update(outcome=event, seconds=fields.get("seconds"), error=fields.get("error"),
                                  exit_code=fields.get("exit_code"), retryable=fields.get("retryable", True))
        state.last_event = record

    def attempt(self, state, run, run_dir, label, number):
        os.makedirs(run_dir, exist_ok=True)
        results_path = os.path.join(run_dir, RESULTS_FILE)
        if os.path.exists(results_path):
            # Left by an attempt the ledger does not count as a success: kept, but never read as this one's.
            os.replace(results_path, os.path.join(run_dir, f"results.before-attempt-{number}.json"))
        command, resumes = self.options.build_command(run, run_dir, self.plan.scaling, number)
        log_path = os.path.join(run_dir, f"attempt-{number}.log")
        env = {**os.environ, RUN_MARK: f"{run.run_id}/{number}", "PYTHONUNBUFFERED": "1"}
        self.echo(f"{label}: attempt {number}{' (resuming from its checkpoint)' if resumes else ''}; "
                  f"log {shown(log_path)}")
        started = time.monotonic()
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=REPO_ROOT, env=env, start_new_session=True,
                                       preexec_fn=_die_with_parent)
        self.record(state, "started", attempt=number, pid=process.pid, command=command,
                    run_dir=os.path.relpath(run_dir, self.folder), log=os.path.relpath(log_path, self.folder),
                    resume=resumes)
        try:
            code, timed_out = self.wait(process, log_path, started)
        except Interrupted as stop:
            self.stop(process)
            self.record(state, "interrupted", attempt=number, seconds=round(time.monotonic() - started, 3),
                        error=f"interrupted by {stop} (Ctrl-C or a stop request)")
            raise
        seconds = round(time.monotonic() - started, 3)
        if timed_out:
            self.record(state, "failed", attempt=number, seconds=seconds, exit_code=code, retryable=True,
                        error=f"did not finish within --run-timeout {self.options.run_timeout:g}s; stopped")
        elif code != 0:
            error = last_error_line(log_path)
            # Exit 2 (bad input) and 3 (missing prerequisite) fail the same way every time.
            retryable = code not in (2, 3)
            self.record(state, "failed", attempt=number, seconds=seconds, exit_code=code, retryable=retryable,
                        error=f"exit {code}: {error}")
        else:
            result, problem = valid_results(results_path, run.run_id)
            if result is None:
                self.record(state, "failed", attempt=number, seconds=seconds, exit_code=code, retryable=True,
                            error=f"exit 0 but {problem}")
            else:
                self.record(state, "succeeded", attempt=number, seconds=seconds, exit_code=code,
                            **self.result_fields(result, run_dir))
        outcome = state.attempts[-1]
        if state.state == "succeeded":
            self.echo(f"{label}: succeeded in {seconds:.1f}s (training {state.last_event['training_time_seconds']:.1f}s)")
        else:
            self.echo(f"{label}: attempt {number} failed after {seconds:.1f}s: {outcome['error']}")

    def wait(self, process, log_path, started):
        """Waits for the trainer, echoing its progress lines (they start with '[') from the log."""
        offset = 0
        while True:
            code = process.poll()
            offset = self.echo_progress(log_path, offset)
            if code is not None:
                return code, False
            if self.options.run_timeout and time.monotonic() - started > self.options.run_timeout:
                self.stop(process)
                return process.returncode, True
            time.sleep(POLL_SECONDS)

    def echo_progress(self, log_path, offset):
        try:
            with open(log_path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except OSError:
            return offset
        complete = data.rfind(b"\n") + 1
        for line in data[:complete].decode(errors="replace").splitlines():
            if line.startswith("["):
                self.echo(f"    {line}")
        return offset + complete

    def stop(self, process):
        """SIGINT to the trainer's process group (it exits saying 'interrupted'), SIGKILL if it lingers."""
        for sig, grace in ((signal.SIGINT, STOP_GRACE_SECONDS), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue


def run_sweep(plan, root, options, argv):
    """Runs the plan under the experiment's lock and writes the report; returns the exit code."""
    from training.sweep import report

    sweep = Sweep(plan, root, options)
    sweep.open(argv)
    code = EXIT_FAILED
    try:
        code = sweep.run_all()
    finally:
        try:
            written = report.write_report(sweep.folder, target_accuracy=options.target_accuracy)
            if written:
                options.echo(f"[sweep] report: {', '.join(shown(p) for p in written)}")
        except Exception as err:  # the report must never cost the ledger its closing record
            print(f"warning: the report could not be written: {err}", file=sys.stderr)
        sweep.close(code)
    return code
