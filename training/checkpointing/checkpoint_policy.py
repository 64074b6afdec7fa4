"""When to checkpoint: the `--checkpoint-policy every|never|interval:K|adaptive` controller.

Standard library only, so it runs (and is tested) outside Ray and TensorFlow. Use:

    controller = CheckpointController(parse_policy("adaptive"), mtbf_seconds=3600, checkpoint_seconds=0.5)
    for epoch in range(1, total_epochs + 1):
        train one epoch;                          controller.observe_epoch(seconds)
        if controller.should_checkpoint(epoch, total_epochs):   # controller.last_reason says why, either way
            state = controller.state()            # store it inside the checkpoint
            save the checkpoint;                  controller.observe_checkpoint(seconds)
    after a restart from that checkpoint:
        controller = CheckpointController.from_state(saved_state)
        controller.observe_recovery(epochs_redone, seconds_lost=...)

Nothing in the kit writes that loop out itself: checkpoint_loop.py owns it, and the Ray worker, the tasks-and-actors
driver, the simulation and the tests all drive the controller through it.

Why the adaptive rule looks the way it does
-------------------------------------------
A checkpoint costs C seconds every time; a failure costs the work done since the last checkpoint. Checkpointing
every tau seconds of work spends C/tau of the time on checkpoints and loses, on average, tau/2 per failure, i.e.
tau/(2M) of the time when failures come every M seconds on average. The sum is smallest where the two are equal:
Young's interval tau = sqrt(2*C*M). Daly's higher-order version (used here) adds the terms that matter once C is
no longer tiny next to M, and caps tau at M when C >= 2M, where checkpointing hardly pays at all.

Epochs are indivisible, so the controller checkpoints at the epoch boundary nearest to tau (when the work since
the last checkpoint plus half an epoch reaches tau), and skips a checkpoint near the end whose expected saving,
the work at risk times the chance of a failure before the final checkpoint, is smaller than its cost.

M is rarely known. It is estimated as (prior_failures * mtbf_seconds + time observed) / (prior_failures +
failures seen): the inverse of the posterior mean failure rate under a Gamma prior worth `prior_failures`
pseudo-failures. With no failures M grows with the time survived; each failure pulls it toward what was seen.
A large `prior_failures` pins M to the given `mtbf_seconds`.

Checkpoint time stays within `budget_fraction` of the training time so far: an optional checkpoint is taken only
if the checkpoint seconds spent plus a pessimistic cost for this one (the dearest seen, or the prior
`checkpoint_seconds`, or one mean epoch when nothing is known) fit. That bound holds as long as no checkpoint
costs more than the dearest one seen before it (or the prior); a surprise overruns it by that surprise only.
The final epoch is always saved by every policy except `never`: it is the run's result, not insurance, so it is
outside the budget. Pass a measured `checkpoint_seconds` (one save of the fresh model, before the clock starts),
or the controller assumes a checkpoint costs an epoch and a short run saves only at the end.

Learning from recoveries
------------------------
The estimates of M and C can be wrong, and failures are not always memoryless, so a multiplier s on tau is learned
from what checkpoints actually did. A recovery that restored a checkpoint lowers s by exp(-rate * min(1,
saved/tau)): saving a whole interval's work is strong evidence that checkpoints pay. Each checkpoint superseded
without ever being restored raises s by exp(rate * 2C/tau). The factor 2 is not arbitrary: unused checkpoints
come about every tau seconds and recoveries every M seconds, so the two pushes cancel exactly when 2C/tau^2 = 1/M,
which is Young's interval for the failure rate and cost actually met. s is kept within [1/4, 4].

The state saved inside a checkpoint is taken just before that checkpoint is written, so it cannot know the
checkpoint's cost; observe_recovery() charges the pessimistic cost estimate for it, which keeps the budget sound.
"""

import math

# The policy's text form is a setting's type; the controller's defaults are the settings rows'.
from training.core.settings.policies import CheckpointPolicy, parse_policy
from training.core.settings.table import BY_NAME

STATE_VERSION = 1

DEFAULT_MTBF_SECONDS = float(BY_NAME["MTBF_SECONDS"].default)
DEFAULT_BUDGET_FRACTION = float(BY_NAME["CHECKPOINT_BUDGET"].default)
DEFAULT_PRIOR_FAILURES = 1.0  # the prior weighs as much as one failure seen: the first real one moves M a lot
DEFAULT_LEARNING_RATE = 0.2  # five full-interval recoveries change s by e^-1; slow enough to ignore one fluke
SCALE_LIMITS = (0.25, 4.0)  # the learned multiplier may move tau by at most 4x either way from the model's value


def daly_interval(checkpoint_seconds, mtbf_seconds):
    """Daly's optimal seconds of work between checkpoints (2006, eq. 37); Young's sqrt(2CM) when C << M."""
    c, m = float(checkpoint_seconds), float(mtbf_seconds)
    if c <= 0:
        return 0.0
    if c >= 2 * m:
        return m
    ratio = c / (2 * m)
    return math.sqrt(2 * c * m) * (1 + math.sqrt(ratio) / 3 + ratio / 9) - c


class CheckpointController:
    """Decides after every epoch whether to checkpoint. Call observe_epoch() after each epoch, then
    should_checkpoint(); when it says yes, save state() inside the checkpoint and call observe_checkpoint()."""

    def __init__(self, policy="adaptive", mtbf_seconds=DEFAULT_MTBF_SECONDS, checkpoint_seconds=None,
                 budget_fraction=DEFAULT_BUDGET_FRACTION, prior_failures=DEFAULT_PRIOR_FAILURES,
                 learning_rate=DEFAULT_LEARNING_RATE):
        """policy: a CheckpointPolicy or its text. mtbf_seconds: prior mean time between failures.
        checkpoint_seconds: prior cost of one checkpoint (None: unknown until one is measured).
        budget_fraction: most of the training time that optional checkpoints may take (adaptive only)."""
        self.policy = policy if isinstance(policy, CheckpointPolicy) else parse_policy(policy)
        for name, value in (("mtbf_seconds", mtbf_seconds), ("prior_failures", prior_failures)):
            if not value > 0 or math.isinf(value):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if not 0 < budget_fraction < 1:
            raise ValueError(f"budget_fraction must be between 0 and 1, got {budget_fraction}")
        if not 0 <= learning_rate < math.inf:
            raise ValueError(f"learning_rate must be 0 or more, got {learning_rate}")
        self.mtbf_prior_seconds = float(mtbf_seconds)
        self.checkpoint_prior_seconds = (None if checkpoint_seconds is None
                                         else _non_negative("checkpoint_seconds", checkpoint_seconds))
        self.budget_fraction = float(budget_fraction)
        self.prior_failures = float(prior_failures)
        self.learning_rate = float(learning_rate)
        self.scale = 1.0  # the learned multiplier on the Daly interval
        self.epochs_observed = 0
        self.work_seconds = 0.0  # training time so far, redone epochs included: what the budget is a share of
        self.work_since_checkpoint = 0.0  # the work a failure now would lose
        self.checkpoints = 0
        self.checkpoint_seconds_total = 0.0
        self.checkpoint_seconds_max = 0.0
        self.exposed_seconds = 0.0  # time in which a failure could have been seen: epochs, checkpoints, lost work
        self.failures = 0
        self.recoveries = 0
        self.last_checkpoint_restored = False  # a restored checkpoint has paid; superseding it teaches nothing
        self.last_reason = ""  # why the latest should_checkpoint() answered as it did; not part of state()

    # --- what was seen ---------------------------------------------------------------------------------------

    def observe_epoch(self, seconds):
        """One epoch finished, taking `seconds`."""
        seconds = _non_negative("seconds", seconds)
        self.epochs_observed += 1
        self.work_seconds += seconds
        self.work_since_checkpoint += seconds
        self.exposed_seconds += seconds

    def observe_checkpoint(self, seconds):
        """A checkpoint was written, taking `seconds`. The previous one was never restored: it did not pay."""
        seconds = _non_negative("seconds", seconds)
        self._record_checkpoint(seconds)
        self.checkpoint_seconds_max = max(self.checkpoint_seconds_max, seconds)

    def _record_checkpoint(self, seconds):
        if self.checkpoints and not self.last_checkpoint_restored:
            self._learn(+2 * self.checkpoint_cost_seconds() / max(self.threshold_seconds(), 1e-9))
        self.checkpoints += 1
        self.checkpoint_seconds_total += seconds
        self.exposed_seconds += seconds
        self.work_since_checkpoint = 0.0
        self.last_checkpoint_restored = False

    def observe_failure(self, seconds_lost=0.0):
        """A failure with nothing to restore (the run starts over): it only informs the failure rate."""
        self.exposed_seconds += _non_negative("seconds_lost", seconds_lost)
        self.failures += 1

    def observe_recovery(self, epochs_redone, seconds_lost=None, seconds_saved=None):
        """Call on the controller restored with from_state() once training resumes from that checkpoint.
        epochs_redone: epochs finished after the checkpoint and lost. seconds_lost: the time the failed attempt
        spent after the checkpoint, restart included (default: epochs_redone mean epochs). seconds_saved: work
        the checkpoint spared (default: all the training time it holds)."""
        if not epochs_redone >= 0:
            raise ValueError(f"epochs_redone must be 0 or more, got {epochs_redone}")
        if seconds_lost is None:
            seconds_lost = epochs_redone * self.mean_epoch_seconds()
        seconds_lost = _non_negative("seconds_lost", seconds_lost)
        seconds_saved = _non_negative("seconds_saved", self.work_seconds if seconds_saved is None else seconds_saved)
        # The state was taken just before its checkpoint was written: record that checkpoint now, at the cost
        # the budget allowed it for.
        self._record_checkpoint(self.checkpoint_cost_bound_seconds())
        self.exposed_seconds += seconds_lost
        self.failures += 1
        self.recoveries += 1
        self._learn(-min(1.0, seconds_saved / max(self.threshold_seconds(), 1e-9)))
        self.last_checkpoint_restored = True

    def _learn(self, step):
        low, high = SCALE_LIMITS
        self.scale = min(high, max(low, self.scale * math.exp(self.learning_rate * step)))

    # --- estimates -------------------------------------------------------------------------------------------

    def mean_epoch_seconds(self):
        return self.work_seconds / self.epochs_observed if self.epochs_observed else 0.0

    def mtbf_seconds(self):
        """Estimated mean time between failures (see the module docstring)."""
        prior = self.prior_failures
        return (prior * self.mtbf_prior_seconds + self.exposed_seconds) / (prior + self.failures)

    def checkpoint_cost_seconds(self):
        """Expected cost of a checkpoint: the mean measured, else the prior, else a pessimistic bound."""
        if self.checkpoints and self.checkpoint_seconds_total > 0:
            return self.checkpoint_seconds_total / self.checkpoints
        if self.checkpoint_prior_seconds is not None:
            return self.checkpoint_prior_seconds
        return self.checkpoint_cost_bound_seconds()

    def checkpoint_cost_bound_seconds(self):
        """What the budget assumes the next checkpoint costs: the dearest seen or the prior, else one epoch."""
        known = [v for v in (self.checkpoint_prior_seconds, self.checkpoint_seconds_max or None) if v is not None]
        return max(known) if known else self.mean_epoch_seconds()

    def threshold_seconds(self):
        """Work between checkpoints the adaptive policy aims for: the learned multiplier times Daly's interval."""
        return self.scale * daly_interval(self.checkpoint_cost_seconds(), self.mtbf_seconds())

    def budget_left_seconds(self):
        return self.budget_fraction * self.work_seconds - self.checkpoint_seconds_total

    # --- the decision ----------------------------------------------------------------------------------------

    def should_checkpoint(self, epochs_done, total_epochs):
        """Whether to checkpoint now, after `epochs_done` (1-based) of `total_epochs`. Learns nothing; sets
        `last_reason`, a short sentence saying why (for the results)."""
        save, self.last_reason = self.decide(epochs_done, total_epochs)
        return save

    def decide(self, epochs_done, total_epochs):
        """(save?, reason) after `epochs_done` of `total_epochs`; changes nothing."""
        if not 1 <= epochs_done <= total_epochs:
            raise ValueError(f"epochs_done must be between 1 and total_epochs ({total_epochs}), got {epochs_done}")
        kind = self.policy.kind
        if kind == "never":
            return False, "never: this policy saves no checkpoint"
        if epochs_done == total_epochs:
            return True, "final epoch: always saved"
        if kind == "every":
            return True, "every: saves after each epoch"
        if kind == "interval":
            k = self.policy.interval
            if epochs_done % k == 0:
                return True, f"interval:{k}: epoch {epochs_done} is a multiple of {k}"
            return False, f"interval:{k}: next at epoch {(epochs_done // k + 1) * k}"
        return self._adaptive(total_epochs - epochs_done)

    def _adaptive(self, epochs_left):
        epoch = self.mean_epoch_seconds()
        at_risk = self.work_since_checkpoint
        target = self.threshold_seconds()
        cost = self.checkpoint_cost_seconds()
        model = f"C {cost:.3g}s, MTBF {self.mtbf_seconds():.4g}s, x{self.scale:.2f}"
        if at_risk + epoch / 2 < target:
            # The next epoch boundary is nearer to the target interval than this one.
            return False, f"adaptive: wait, {at_risk:.1f}s at risk < target {target:.1f}s ({model})"
        chance_of_failure = 1 - math.exp(-epochs_left * epoch / self.mtbf_seconds())
        if at_risk * chance_of_failure < cost:
            return False, (f"adaptive: skip, final save {epochs_left} epoch(s) away; expected saving "
                           f"{at_risk * chance_of_failure:.3g}s < cost {cost:.3g}s")
        bound, left = self.checkpoint_cost_bound_seconds(), self.budget_left_seconds()
        if bound > left:
            return False, (f"adaptive: skip, over budget: {bound:.3g}s needed, {max(left, 0.0):.3g}s left of "
                           f"{self.budget_fraction:.0%} of {self.work_seconds:.1f}s")
        return True, f"adaptive: save, {at_risk:.1f}s at risk >= target {target:.1f}s ({model})"

    # --- surviving a restart ---------------------------------------------------------------------------------

    def priors(self):
        """The constructor's arguments besides the policy: what a restart with nothing to restore starts from."""
        return {arg: getattr(self, key) for arg, key in _PRIOR_KEYS.items()}

    def state(self):
        """Everything learned, as a JSON-ready dict; save it inside the checkpoint about to be written."""
        return {"version": STATE_VERSION, "policy": str(self.policy), **{k: getattr(self, k) for k in _STATE_KEYS}}

    @classmethod
    def from_state(cls, state):
        """A controller that continues from state(); then call observe_recovery()."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"checkpoint controller state must be a dict of version {STATE_VERSION}")
        missing = [k for k in ("policy",) + _STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"checkpoint controller state lacks {', '.join(missing)}")
        controller = cls(state["policy"], **{arg: state[key] for arg, key in _PRIOR_KEYS.items()})
        for key in _STATE_KEYS:
            setattr(controller, key, state[key])
        return controller


# Constructor argument -> the attribute (and state key) holding it.
_PRIOR_KEYS = {"mtbf_seconds": "mtbf_prior_seconds", "checkpoint_seconds": "checkpoint_prior_seconds",
               "budget_fraction": "budget_fraction", "prior_failures": "prior_failures",
               "learning_rate": "learning_rate"}
_STATE_KEYS = (
    "mtbf_prior_seconds", "checkpoint_prior_seconds", "budget_fraction", "prior_failures", "learning_rate",
    "scale", "epochs_observed", "work_seconds", "work_since_checkpoint", "checkpoints", "checkpoint_seconds_total",
    "checkpoint_seconds_max", "exposed_seconds", "failures", "recoveries", "last_checkpoint_restored",
)


def _non_negative(name, value):
    value = float(value)
    if not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number, 0 or more, got {value}")
    return value
