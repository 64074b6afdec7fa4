"""The workflow's determinism, checked the way Temporal checks it: a history recorded from a real sweep
(tests/sweep/fixtures/sweep_history.json, `python -m tests.helpers.sweep record DIR` records it again) replays
against today's workflow code, in the worker's sandbox; a workflow that schedules its runs differently fails
the replay. A change to the workflow that fails here would break every sweep in flight when it is deployed."""

import asyncio

import pytest

pytest.importorskip("temporalio", reason="the temporalio wheel is not installed (docker/requirements.txt)")

from temporalio import workflow  # noqa: E402
from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

from tests.helpers.sweep import HISTORY_FIXTURE  # noqa: E402
from training.sweep.workflow import WORKFLOW_NAME, Cifar10ScalingWorkflow, SweepPlan, SweepSummary  # noqa: E402


def recorded():
    with open(HISTORY_FIXTURE) as handle:
        return WorkflowHistory.from_json("sweep-replay", handle.read())


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class LargestScaleFirst(Cifar10ScalingWorkflow):
    """A plausible edit: run the biggest scale first. Harmless for a new sweep, fatal for one in flight."""

    @workflow.run
    async def run(self, plan: SweepPlan) -> SweepSummary:
        plan.runs.reverse()
        return await super().run(plan)


def test_the_recorded_history_replays_against_todays_workflow():
    history = recorded()
    assert len(history.events) > 10  # a real sweep: two activities, one completed and one failed
    result = asyncio.run(Replayer(workflows=[Cifar10ScalingWorkflow]).replay_workflow(history))
    assert result.replay_failure is None


def test_a_workflow_that_schedules_runs_in_another_order_fails_the_replay():
    with pytest.raises(workflow.NondeterminismError):
        asyncio.run(Replayer(workflows=[LargestScaleFirst]).replay_workflow(recorded()))
