"""Drives one experiment's workflow (id and task queue `sweep-<experiment>`, so the same command finds it and
two experiments never run each other's runs): starts it, attaches to it after a crash, reports it once
finished, or with --fresh starts a new execution under the same id; runs its worker; reads --status.
"""

import asyncio
import dataclasses
import os
import signal
import socket
import time
from collections import Counter
from datetime import timedelta

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from training.core import atomic_files
from training.sweep import EXIT_FAILED, EXIT_INTERRUPTED, SweepError, report, scales, workflow
from training.sweep.workflow import Cifar10ScalingWorkflow

# The worker sends heartbeats (and so learns of a cancellation) at least this often, whatever the timeout.
HEARTBEAT_THROTTLE = timedelta(seconds=2)


def workflow_id(experiment):
    return f"sweep-{experiment}"


SWEEP_MODULES = (b"training.sweep", b"tests.helpers.sweep")  # `python -m` of the sweep, and of the tests' one


def sweep_alive(pid):
    """Whether `pid` is a sweep still running. A killed sweep can linger as a zombie that nobody reaped (its
    parent died with it), and its pid can be reused; /proc tells both apart, kill(0) where there is none (macOS)."""
    if not os.path.isdir("/proc"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().split(b"\0")
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z" and any(w.endswith(SWEEP_MODULES) for w in words)
    except FileNotFoundError:
        return False
    except OSError:  # unreadable (hidepid): not ours to call dead
        return True


def shown(path):
    """Paths in messages: relative when under the current folder (the usual RESULTS_DIR=results), else whole."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


async def describe(handle):
    try:
        return await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


def make_worker(client, experiment, activities=None):
    """The experiment's worker; without activities it only answers queries (--status)."""
    return Worker(client, task_queue=workflow_id(experiment), workflows=[Cifar10ScalingWorkflow],
                  activities=[activities.train_run] if activities else [],
                  identity=f"{os.getpid()}@{socket.gethostname()}",
                  max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
                  default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE)


async def release_dead_attempts(client, handle, described, echo):
    """An attempt held by a sweep of this machine that is gone (killed, crashed) is failed now, so the retry
    starts at once instead of after the heartbeat timeout. An attempt of a sweep still running is refused: one
    sweep per experiment."""
    host = socket.gethostname()
    for pending in described.raw_description.pending_activities:
        if pending.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:  # no worker holds it
            continue
        pid, _, where = pending.last_worker_identity.partition("@")
        if where != host or not pid.isdigit():
            continue
        if int(pid) != os.getpid() and sweep_alive(int(pid)):
            raise SweepError(f"experiment '{handle.id.removeprefix('sweep-')}' is being run by another sweep (pid "
                             f"{pid}); wait for it to end, or watch it with --status", code=EXIT_FAILED)
        echo(f"[sweep] run {pending.activity_id}: its sweep (pid {pid}) is gone; retrying it now")
        activity = client.get_async_activity_handle(workflow_id=handle.id, run_id=described.run_id,
                                                    activity_id=pending.activity_id)
        try:
            await activity.fail(RuntimeError(f"the sweep running this attempt (pid {pid}) died"))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:  # ended meanwhile: nothing to release
                raise


def move_aside(folder):
    """--fresh: the old experiment becomes <name>.<timestamp>[-N].old next to it. Nothing is ever deleted."""
    stamp, suffix = time.strftime("%Y%m%d-%H%M%S"), 1
    while os.path.exists(target := f"{folder}.{stamp}{f'-{suffix}' if suffix > 1 else ''}.old"):
        suffix += 1
    os.rename(folder, target)
    return target


def write_outputs(plan, summary, echo):
    """The export of the workflow's result (the report's input) and the report files."""
    document = {"workflow_id": workflow_id(plan.experiment), "experiment": plan.experiment, "scaling": plan.scaling,
                "target": plan.target, "settings": plan.settings, "target_accuracy": plan.target_accuracy,
                **dataclasses.asdict(summary)}
    atomic_files.write_json(os.path.join(plan.experiment_dir, report.EXPORT_FILE), document)
    written = report.write_report(plan.experiment_dir)
    if written:
        echo(f"[sweep] report: {', '.join(shown(p) for p in written)}")


def exit_code(summary):
    return EXIT_FAILED if any(record.state == "failed" for record in summary.records) else 0


async def run(client, plan, activities, fresh=False, echo=print, web_ui=None):
    """Starts or resumes the experiment's workflow and works on it until it ends; returns the exit code."""
    handle = client.get_workflow_handle_for(Cifar10ScalingWorkflow.run, workflow_id(plan.experiment))
    described = await describe(handle)
    running = described is not None and described.status == WorkflowExecutionStatus.RUNNING
    folder = plan.experiment_dir
    if fresh:
        if running:
            await handle.terminate(reason="--fresh: the sweep starts over")
            running = False
        if os.path.exists(folder):
            echo(f"[sweep] --fresh: the earlier experiment is kept as {shown(move_aside(folder))}")
    elif described is not None and described.status == WorkflowExecutionStatus.COMPLETED:
        summary = await handle.result()
        echo(f"[sweep] experiment {plan.experiment} finished before (workflow {handle.id}); its report:")
        write_outputs(plan, summary, echo)
        return exit_code(summary)
    os.makedirs(folder, exist_ok=True)
    if running:
        await release_dead_attempts(client, handle, described, echo)
        echo(f"[sweep] resuming workflow {handle.id}: runs that finished are kept, the rest go on")
    else:
        handle = await client.start_workflow(Cifar10ScalingWorkflow.run, plan, id=workflow_id(plan.experiment),
                                             task_queue=workflow_id(plan.experiment))
        echo(f"[sweep] started workflow {handle.id}")
    if web_ui:
        echo(f"[sweep] Temporal Web: {web_ui}/namespaces/{client.namespace}/workflows/{handle.id}")
    async with make_worker(client, plan.experiment, activities):
        if running:
            await check_same_plan(handle, plan)
        try:
            summary = await handle.result()
        except WorkflowFailureError as err:
            raise SweepError(f"workflow {handle.id} ended without finishing ({workflow.failure_text(err.cause)}); "
                             f"finished runs are kept: run the same command to go on", code=EXIT_FAILED) from None
    write_outputs(plan, summary, echo)
    if summary.stopped:
        echo(f"[sweep] stop rule: {summary.stopped}")
    return exit_code(summary)


async def check_same_plan(handle, plan):
    records = await handle.query(Cifar10ScalingWorkflow.progress)
    if [record.run.run_id for record in records] != [run.run_id for run in plan.runs]:
        raise SweepError(f"experiment '{plan.experiment}' is running with other scales or settings; run the same "
                         f"sweep as before, name another --experiment, or start over with --fresh")


def run_until_done(coroutine_factory):
    """asyncio.run that turns Ctrl-C and SIGTERM into a cancellation of the sweep: the worker shuts down, which
    cancels the activity in flight, which kills its trainer's process group. Returns the exit code."""
    async def main():
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        return await coroutine_factory()

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        print("[sweep] interrupted: the run in flight was stopped; finished runs are kept. Run the same command "
              "to resume", flush=True)
        return EXIT_INTERRUPTED


# --- --status ------------------------------------------------------------------------------------------------------


async def status(client, experiment):
    """The experiment's table: each run's state and result from the workflow's query, the run in flight's
    attempt and heartbeat from the server's description."""
    handle = client.get_workflow_handle_for(Cifar10ScalingWorkflow.run, workflow_id(experiment))
    described = await describe(handle)
    if described is None:
        raise SweepError(f"no sweep has run as experiment '{experiment}' on this Temporal server; start it "
                         f"without --status")
    async with make_worker(client, experiment):
        records = await handle.query(Cifar10ScalingWorkflow.progress)
    pending = {info.activity_id: (info.attempt, (await client.data_converter.decode(info.heartbeat_details.payloads)
                                                 or [{}])[-1])
               for info in described.raw_description.pending_activities}
    return table(experiment, described.status.name, records, pending)


def table(experiment, state, records, pending):
    header = ("run_id", "scale", "repeat", "state", "attempt", "seconds", "training_s", "progress / error")
    rows = []
    for record in records:
        run, result = record.run, record.result
        attempt, beat = pending.get(run.run_id, (result.attempt if result else None, {}))
        scale = scales.describe(run.kind, run.workers, run.cpus_per_worker, run.cpus)
        seconds = result.seconds if result else beat.get("seconds")
        note = (f"epoch {beat.get('epoch')}/{beat.get('epochs')}: {beat.get('line', '')}"[:90] if beat else
                "results kept from before" if result and result.reused else record.error or "")
        rows.append((run.run_id, scale, str(run.repeat), record.state, str(attempt or "-"),
                     f"{seconds:.1f}" if seconds else "-",
                     f"{result.training_time_seconds:.1f}" if result else "-", note))
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    lines = [f"experiment {experiment}: workflow {workflow_id(experiment)} is {state}"]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header] + rows]
    counts = Counter(record.state for record in records)
    return "\n".join(lines + [", ".join(f"{n} {name}" for name, n in sorted(counts.items()))])
