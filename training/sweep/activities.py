"""The sweep's one activity, `train_run`: one run of the plan through the kit's one launcher (training/launch.py),
in its own process group. A run's folder, <experiment>/runs/<run_id>/, holds results.json (written atomically by
the trainer once it finished; an attempt finding a valid one returns it), attempt-K.log and, for a local Ray run,
checkpoints/ (what a retried attempt resumes from).
"""

import asyncio
import os
import re
import time
from typing import Callable, Optional
from urllib.parse import urlsplit, urlunsplit

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from training import launch
from training.cluster import head_run
from training.core import results as results_schema
from training.sweep import workflow

RESULTS_FILE = "results.json"
CHECKPOINTS_DIR = "checkpoints"
POLL_S = 0.5
PROGRESS = re.compile(r"\] epoch (\d+)/(\d+)")


def valid_results(path, run_id):
    """The run's results document, or None with the reason: missing, not the schema, or another run's."""
    try:
        result = results_schema.load_results(path)
    except results_schema.ResultsError as err:
        return None, str(err)
    if result["run_id"] != run_id:
        return None, f"results file '{path}' belongs to run '{result['run_id']}', not '{run_id}'"
    return result, None


def run_command(request, run_dir, attempt, ray_env, execution=""):
    """(argv, environment, resumes) of one attempt: the settings the scale decides, the environment's others
    riding along as flags (trainer_argv). A local Ray run resumes whenever its folder has a checkpoint (the
    trainer refuses to start over on one unasked, whatever the attempt). k8s: checkpoints go to the cluster's
    store (CHECKPOINT_STORAGE_URI), which cannot be listed from here, under the workflow's execution (a --fresh
    sweep keeps the run ids, and must neither meet nor resume the checkpoints of the one before): every retry
    resumes."""
    run, k8s = request.run, request.target == "k8s"
    output = f"{head_run.POD_KIT_DIR}/{run.run_id}.json" if k8s else os.path.join(run_dir, RESULTS_FILE)
    values = {"EPOCHS": run.epochs, "BATCH_SIZE": run.batch_size, "RUN_ID": run.run_id, "OUTPUT": output}
    resume = False
    if run.kind == "baseline":
        values["THREADS"] = run.cpus_per_worker
    else:
        checkpoints = os.path.join(run_dir, CHECKPOINTS_DIR)
        resume = attempt > 1 if k8s else os.path.isdir(checkpoints) and any(os.scandir(checkpoints))
        if k8s:
            store = urlsplit(os.environ.get("CHECKPOINT_STORAGE_URI")
                             or launch.settings.BY_NAME["CHECKPOINT_STORAGE_URI"].default)
            checkpoints = urlunsplit(store._replace(path=f"{store.path.rstrip('/')}/{execution}".rstrip("/")))
        # strong: BATCH_SIZE is the global batch the workers split; weak: every worker takes BATCH_SIZE.
        values.update(NUM_WORKERS=run.workers, CPUS_PER_WORKER=run.cpus_per_worker,
                      BATCH_SIZE_MODE="global" if request.scaling == "strong" else "per-worker")
        optional = {"STORAGE_PATH": checkpoints,
                    "RAY_ADDRESS": "auto" if k8s else ray_env.get("RAY_ADDRESS"),
                    "USE_GPU": int(bool(run.gpus_per_worker)), "RESUME": int(resume)}
        values.update({name: value for name, value in optional.items() if value})
    program = "baseline" if run.kind == "baseline" else "ray"
    if k8s:  # the pod's own `timeout` takes the plan's limit, whatever RUN_TIMEOUT_S this environment holds
        env = {**os.environ, "RUN_TIMEOUT_S": str(request.run_timeout_s)}
        return launch.command(program, "k8s", values, run_dir=run_dir, cpus=run.cpus), env, resume
    return launch.command(program, "local", values), {**os.environ, **ray_env}, resume


def error_line(log_path):
    """The trainers end a failure with one `error: ...` line, the first of the log (pod-run's own comes after it);
    failing that, the log's last line."""
    try:
        with open(log_path, errors="replace") as handle:
            lines = [line.strip() for line in handle if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("error:")]
    return (errors[:1] or lines[-1:] or ["(no output)"])[0][:500]


class Activities:
    """`build_command` is run_command (a stand-in trainer's in the tests); `cluster(run)` gives the environment of
    a local Ray run (the cluster's address and token), starting it on first use; `echo` prints to the console."""

    def __init__(self, build_command: Callable = run_command, cluster: Optional[Callable] = None,
                 echo: Callable = print):
        self.build_command, self.cluster, self.echo = build_command, cluster, echo

    @activity.defn(name=workflow.ACTIVITY_NAME)
    async def train_run(self, request: workflow.RunRequest) -> workflow.RunResult:
        run, info = request.run, activity.info()
        run_dir = os.path.join(request.experiment_dir, "runs", run.run_id)
        results_path = os.path.join(run_dir, RESULTS_FILE)
        label = f"[sweep] {run.run_id}"
        done, _ = valid_results(results_path, run.run_id)
        if done is not None:
            self.echo(f"{label}: finished before, its results are kept and not run again")
            return self.result(run, done, info.attempt, None, reused=True)
        os.makedirs(run_dir, exist_ok=True)
        if os.path.exists(results_path):  # not this run's, or cut short: kept aside, never read as this attempt's
            os.replace(results_path, os.path.join(run_dir, f"results.before-attempt-{info.attempt}.json"))
        ray_env = {}
        if run.kind == "ray" and request.target == "local" and self.cluster:
            ray_env = await asyncio.to_thread(self.cluster, run)
        argv, env, resumes = self.build_command(request, run_dir, info.attempt, ray_env, info.workflow_run_id)
        log_path = os.path.join(run_dir, f"attempt-{info.attempt}.log")
        self.echo(f"{label}: attempt {info.attempt}{' (resuming from its checkpoint)' if resumes else ''}; "
                  f"log {log_path}")
        started = time.monotonic()
        code = await self.supervise(argv, env, log_path, info.attempt, request.run_timeout_s, label)
        seconds = round(time.monotonic() - started, 3)
        result, problem = valid_results(results_path, run.run_id) if code == 0 else (None, None)
        if result is None:
            raise self.failure(label, info.attempt, seconds, code, problem or error_line(log_path),
                               request.run_timeout_s)
        self.echo(f"{label}: succeeded in {seconds:.1f}s (training {result['training_time_seconds']:.1f}s)")
        return self.result(run, result, info.attempt, seconds)

    def failure(self, label, attempt, seconds, code, detail, timeout_s):
        """Benign: an expected outcome, which the SDK logs without a traceback. Exit 2 or 3 (a setting no retry
        can fix) is never retried."""
        if code is None:
            message, kind = f"did not finish within RUN_TIMEOUT_S={timeout_s}s; stopped", "Timeout"
        else:
            message, kind = f"exit {code}: {detail}", workflow.BAD_INPUT if code in (2, 3) else "RunFailed"
        self.echo(f"{label}: attempt {attempt} failed after {seconds:.1f}s: {message}")
        return ApplicationError(message, type=kind, non_retryable=kind == workflow.BAD_INPUT,
                                category=ApplicationErrorCategory.BENIGN)

    @staticmethod
    def result(run, document, attempt, seconds, reused=False):
        accuracies = [row["val_accuracy"] for row in document["history"] if row.get("val_accuracy") is not None]
        return workflow.RunResult(run_id=run.run_id, results=os.path.join("runs", run.run_id, RESULTS_FILE),
                                  attempt=attempt, seconds=seconds, reused=reused,
                                  training_time_seconds=document["training_time_seconds"],
                                  best_val_accuracy=max(accuracies, default=None))

    async def supervise(self, argv, env, log_path, attempt, timeout_s, label):
        """The trainer's exit code (None: stopped at the run timeout). Cancelled, it kills the trainer's process
        group before the cancellation goes on."""
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            process = launch.start(argv, env, stdout=log)
        started, offset = time.monotonic(), 0
        # The heartbeat's details: what --status and Temporal Web show of the run in flight.
        progress = {"attempt": attempt, "epoch": 0, "epochs": 0, "seconds": 0.0, "line": ""}
        try:
            while process.poll() is None:
                await asyncio.sleep(POLL_S)
                offset = self.read_progress(log_path, offset, progress)
                progress["seconds"] = round(time.monotonic() - started, 1)
                activity.heartbeat(progress)  # the SDK sends at most one per throttle interval
                if timeout_s and progress["seconds"] > timeout_s:
                    await asyncio.to_thread(launch.stop, process)
                    return None
        except asyncio.CancelledError:
            await asyncio.to_thread(launch.stop, process)
            self.echo(f"{label}: cancelled; stopped the trainer's process group (pid {process.pid}), nothing of "
                      f"it keeps running")
            raise
        self.read_progress(log_path, offset, progress)
        return process.returncode

    def read_progress(self, log_path, offset, progress):
        """Echoes the trainer's progress lines (they start with '[') and keeps the last for the heartbeat."""
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
                progress["line"] = line[:300]
                match = PROGRESS.search(line)
                if match:
                    progress.update(epoch=int(match.group(1)), epochs=int(match.group(2)))
        return offset + complete


