"""The one loop that drives a CheckpointController (checkpoint_policy.py) through a run and its restarts.

The Ray worker (ray_worker.py), the tasks-and-actors driver (ray_patterns.py), the policy simulation
(simulate_checkpoints.py) and the tests all go through it, so what the simulation predicts for a policy is what the
real runs do, by construction. Standard library only, like the controller.

    loop = CheckpointLoop.fresh(policy, total_epochs, mtbf_seconds=..., checkpoint_seconds=..., budget_fraction=...)
    after each epoch:
        decision = loop.end_epoch(epoch, seconds, save)   # save(state) writes a checkpoint holding `state`
        decision.record()                                 # checkpointed, checkpoint_seconds, checkpoint_reason
    after a restart that restored a checkpoint holding `state`:
        loop = CheckpointLoop.resumed(state, total_epochs, {"epochs_redone": ..., "seconds_lost": ...})
    after a restart with nothing to restore:
        loop = loop.start_over()                          # seconds_lost=...: where the failure is known

The order inside end_epoch is the controller's contract: it sees the epoch, decides, hands out its state before the
checkpoint is written (so the state can go inside it), and then sees what the write cost. A `save` that fails
raises, and the checkpoint counts as never written.
"""

from dataclasses import dataclass

from training.checkpointing.checkpoint_policy import CheckpointController


@dataclass(frozen=True)
class EpochDecision:
    """What the controller decided after one epoch, and what the checkpoint cost when it saved one."""

    checkpointed: bool
    reason: str
    seconds: float = None  # the checkpoint write; None when none was written

    def record(self):
        """The fields an epoch's record carries in the results and the progress messages."""
        return {"checkpointed": self.checkpointed, "checkpoint_seconds": self.seconds,
                "checkpoint_reason": self.reason}


class CheckpointLoop:
    def __init__(self, controller, total_epochs):
        self.controller = controller
        self.total_epochs = total_epochs

    @classmethod
    def fresh(cls, policy, total_epochs, **controller_args):
        """A run that starts from epoch 1 with what the controller is told beforehand (see CheckpointController)."""
        return cls(CheckpointController(policy, **controller_args), total_epochs)

    @classmethod
    def resumed(cls, state, total_epochs, recovery=None):
        """The loop after a restart from a checkpoint holding `state`. `recovery` ({"epochs_redone",
        "seconds_lost"}, as checkpoints.recovery_account gives them) is what the failure cost; None when nothing
        can be told, and the controller then only continues."""
        controller = CheckpointController.from_state(state)
        if recovery is not None:
            controller.observe_recovery(recovery["epochs_redone"], seconds_lost=recovery["seconds_lost"])
        return cls(controller, total_epochs)

    def start_over(self, seconds_lost=None):
        """The loop after a restart with no checkpoint to restore: the same priors, nothing learned. Where the
        failure is known (a driver that outlived it), `seconds_lost` lets the new controller count it."""
        controller = CheckpointController(self.controller.policy, **self.controller.priors())
        if seconds_lost is not None:
            controller.observe_failure(seconds_lost=seconds_lost)
        return CheckpointLoop(controller, self.total_epochs)

    def end_epoch(self, epoch, seconds, save):
        """After epoch `epoch` (1-based) took `seconds`: decides, and when it says save, calls save(state), which
        writes a checkpoint holding the controller's state and returns the seconds the write took."""
        controller = self.controller
        controller.observe_epoch(seconds)
        if not controller.should_checkpoint(epoch, self.total_epochs):
            return EpochDecision(False, controller.last_reason)
        reason = controller.last_reason
        cost = save(controller.state())
        controller.observe_checkpoint(cost)
        return EpochDecision(True, reason, cost)

    def state(self):
        return self.controller.state()
