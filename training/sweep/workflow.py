"""Cifar10ScalingWorkflow: the baseline and every (scale, repeat) of the plan, in order, each one `train_run`
activity (activities.py); the `progress` query gives each run's state. Deterministic, and imports only the
standard library, dataclasses and temporalio: the worker's sandbox re-imports this module. The activity
options, and why they are what they are: docs/SWEEPS.md.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Optional

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

WORKFLOW_NAME = "Cifar10ScalingWorkflow"
ACTIVITY_NAME = "train_run"
BAD_INPUT = "BadInput"
HEARTBEAT_TIMEOUT_S = 120
NO_LIMIT_S = 24 * 3600
STOP_GRACE_S = 60


@dataclass
class RunSpec:
    run_id: str
    index: int
    repeat: int
    kind: str  # baseline | ray
    workers: int
    epochs: int
    batch_size: int
    cpus_per_worker: int
    gpus_per_worker: float
    cpus: int
    config_hash: str


@dataclass
class SweepPlan:
    experiment: str
    experiment_dir: str  # where runs/<run_id>/ go (absolute, on the worker's machine)
    scaling: str
    target: str  # local | k8s
    runs: list[RunSpec]
    settings: dict[str, str] = field(default_factory=dict)  # the hashed settings, for the report
    max_attempts: int = 3
    run_timeout_s: int = 0
    target_accuracy: Optional[float] = None
    stop_at_target: bool = False
    heartbeat_timeout_s: int = HEARTBEAT_TIMEOUT_S
    retry_interval_s: float = 2.0  # doubling up to a minute: a resumed crash waits 2 s, a flaky start longer


@dataclass
class RunRequest:  # what one activity gets: the run and what it needs of the plan
    experiment_dir: str
    scaling: str
    target: str
    run: RunSpec
    run_timeout_s: int


@dataclass
class RunResult:
    run_id: str
    results: str  # the results file, relative to the experiment folder
    attempt: int
    seconds: Optional[float]  # this attempt's wall time; None when the file was there already (reused)
    training_time_seconds: float
    best_val_accuracy: Optional[float]
    reused: bool = False


@dataclass
class RunRecord:
    run: RunSpec
    state: str = "pending"  # running, succeeded, failed, skipped or cancelled
    result: Optional[RunResult] = None
    error: Optional[str] = None


@dataclass
class SweepSummary:
    records: list[RunRecord]
    stopped: Optional[str] = None  # why the stop rule ended the sweep early


def failure_text(err):
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    return getattr(cause, "message", None) or str(cause)


@workflow.defn(name=WORKFLOW_NAME)
class Cifar10ScalingWorkflow:
    def __init__(self):
        self.records = []
        self.stopped = None

    @workflow.run
    async def run(self, plan: SweepPlan) -> SweepSummary:
        self.records = [RunRecord(run=run) for run in plan.runs]
        for record in self.records:
            self.stopped = self.target_reached(plan)
            if self.stopped:
                for rest in self.records:
                    rest.state = "skipped" if rest.state == "pending" else rest.state
                break
            await self.run_one(plan, record)
        return SweepSummary(records=self.records, stopped=self.stopped)

    async def run_one(self, plan, record):
        record.state = "running"
        request = RunRequest(experiment_dir=plan.experiment_dir, scaling=plan.scaling, target=plan.target,
                             run=record.run, run_timeout_s=plan.run_timeout_s)
        try:
            record.result = await workflow.execute_activity(
                ACTIVITY_NAME, request, result_type=RunResult, activity_id=record.run.run_id,
                start_to_close_timeout=timedelta(seconds=plan.run_timeout_s + STOP_GRACE_S if plan.run_timeout_s
                                                 else NO_LIMIT_S),
                heartbeat_timeout=timedelta(seconds=plan.heartbeat_timeout_s),
                retry_policy=RetryPolicy(maximum_attempts=plan.max_attempts, backoff_coefficient=2.0,
                                         initial_interval=timedelta(seconds=plan.retry_interval_s),
                                         maximum_interval=timedelta(seconds=60),
                                         non_retryable_error_types=[BAD_INPUT]),
                # Not TRY_CANCEL, which reports "cancelled" while the trainer trains on.
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                record.state, record.error = "cancelled", "cancelled"
                raise
            record.state, record.error = "failed", failure_text(err)
            return
        record.state = "succeeded"

    def target_reached(self, plan):
        if not plan.stop_at_target or plan.target_accuracy is None:
            return None
        for record in self.records:
            value = record.result.best_val_accuracy if record.result else None
            if value is not None and value >= plan.target_accuracy:
                return (f"run {record.run.run_id} reached val_accuracy {value:.4f} >= {plan.target_accuracy}; "
                        f"the remaining runs are skipped")
        return None

    @workflow.query
    def progress(self) -> list[RunRecord]:
        return self.records

