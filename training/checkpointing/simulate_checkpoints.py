"""Which checkpoint policy pays off, and when: a Monte Carlo replay of a training run under random failures.

    python -m training.checkpointing.simulate_checkpoints                                   # the defaults below
    python -m training.checkpointing.simulate_checkpoints --timings results/ray_results_2workers.json   # a measured run
    SIM_MTBF_SECONDS=600,3600 SIM_TRIALS=500 python -m training.checkpointing.simulate_checkpoints

A run of E epochs is replayed many times. Failures arrive as a Poisson process in wall-clock time (during
epochs, checkpoint writes and restarts alike); a failure throws away everything since the last committed
checkpoint (from scratch when there is none), costs a restart, and training resumes from that checkpoint. Each
policy (every, never, interval:K, adaptive) runs the same trials: the same epoch times and the same failure
arrival times, so their differences are the policies' and not the dice's.

Every policy is the kit's CheckpointController driven exactly as Ray training drives it, through the same
checkpoint_loop.CheckpointLoop the workers use: it starts from the prior MTBF the kit assumes (not the true one,
which a real run does not know), is told the cost of one checkpoint (the kit measures one save before the clock
starts), and after a failure continues from the state stored in the restored checkpoint, told the epochs redone and
the seconds lost since that checkpoint's commit, or from scratch when there was none, as a restarted worker does.

Prints a table and writes OUTPUT_DIR/checkpoint_simulation.json and checkpoint_simulation.png. Expected total
time is the mean over trials, with its standard error and the 10th/90th percentiles; overhead is relative to the
same run with no failures and no checkpoints. A trial still unfinished at SIM_CAP_FACTOR times that run counts
at the cap, so a table entry marked '>=' is a lower bound.
"""

import json
import math
import os
import random
import statistics

from training.checkpointing.checkpoint_loop import CheckpointLoop
from training.core import settings
from training.core.settings import fail

OUTPUT_JSON = "checkpoint_simulation.json"
OUTPUT_PNG = "checkpoint_simulation.png"

def parse_args(argv=None):
    args = settings.parse("simulate", "Compare checkpoint policies on expected total training time under random "
                                      "failures.", argv)
    args.epoch_times = [args.epoch_seconds] * args.epochs
    args.timings_source = "flags"
    if args.timings:
        replay_timings(args)
    return args


def replay_timings(args):
    """Takes epoch, checkpoint and restart times from a Ray run's results file."""
    try:
        with open(args.timings) as handle:
            doc = json.load(handle)
        epoch_times = [float(row["seconds"]) for row in doc["history"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        fail(f"SIM_TIMINGS '{args.timings}' is not a readable results file with a history ({type(err).__name__})")
    if not epoch_times or any(not 0 < s < math.inf for s in epoch_times):
        fail(f"SIM_TIMINGS '{args.timings}' has no usable epoch times")
    args.epoch_times, args.epochs = epoch_times, len(epoch_times)
    saved = (doc.get("checkpoints") or {})
    if saved.get("saved"):
        args.checkpoint_seconds = float(saved["seconds"]) / saved["saved"]
    fixed = doc.get("fixed_costs") or {}
    restart = [fixed.get("worker_group_start_seconds"), fixed.get("worker_setup_seconds")]
    if all(isinstance(v, (int, float)) for v in restart):
        args.restart_seconds = float(sum(restart))
    args.timings_source = os.path.abspath(args.timings)


# --- the simulation ---------------------------------------------------------------------------------------------


class Trial:
    """One trial's dice, shared by every policy: epoch and checkpoint times, and the failure arrival times."""

    def __init__(self, rng, epoch_times, checkpoint_seconds, jitter, mtbf_seconds):
        self.epochs = [s * rng.uniform(1 - jitter, 1 + jitter) for s in epoch_times]
        # One cost per epoch boundary: a checkpoint after epoch k costs the same whichever policy writes it.
        self.checkpoints = [checkpoint_seconds * rng.uniform(1 - jitter, 1 + jitter) for _ in epoch_times]
        self._rng, self._mtbf, self._arrivals = rng, mtbf_seconds, []

    def failure_at(self, index):
        """The index-th failure's time; drawn on first use, so every policy sees the same arrivals."""
        while len(self._arrivals) <= index:
            last = self._arrivals[-1] if self._arrivals else 0.0
            self._arrivals.append(last + self._rng.expovariate(1 / self._mtbf))
        return self._arrivals[index]


class _FailedWhileWriting(Exception):
    """A failure arrived before the checkpoint write finished: the checkpoint never committed."""


class _Replay:
    """One trial under one policy, the clock and the failures included, driving the controller through
    checkpoint_loop as a Ray worker does: from the restored checkpoint's state after a failure, else from scratch."""

    def __init__(self, trial, policy, restart_seconds, controller_args):
        self.trial, self.restart_seconds = trial, restart_seconds
        self.loop = CheckpointLoop.fresh(policy, len(trial.epochs), **controller_args)
        self.now, self.failures, self.epoch = 0.0, 0, 0
        self.saved = None  # (epoch, controller state, commit time) of the latest committed checkpoint
        self.out = {"checkpoints": 0, "checkpoint_seconds": 0.0, "failures": 0, "restart_seconds": 0.0,
                    "finished": True}

    def next_failure(self):
        return self.trial.failure_at(self.failures)

    def run(self, cap_seconds):
        total = len(self.trial.epochs)
        while self.epoch < total:
            if self.now > cap_seconds:
                self.out["finished"] = False
                break
            seconds = self.trial.epochs[self.epoch]
            if self.next_failure() < self.now + seconds:
                self.fail_and_restart()
                continue
            self.now += seconds
            self.epoch += 1
            try:
                self.loop.end_epoch(self.epoch, seconds, self.write_checkpoint)
            except _FailedWhileWriting:
                self.fail_and_restart()
        return self.outcome(cap_seconds)

    def write_checkpoint(self, state):
        cost = self.trial.checkpoints[self.epoch - 1]
        if self.next_failure() < self.now + cost:
            self.out["checkpoint_seconds"] += self.next_failure() - self.now
            raise _FailedWhileWriting()
        self.now += cost
        self.out["checkpoint_seconds"] += cost
        self.out["checkpoints"] += 1
        self.saved = (self.epoch, state, self.now)
        return cost

    def fail_and_restart(self):
        self.now = self.next_failure()
        self.failures += 1
        while self.next_failure() < self.now + self.restart_seconds:  # a failure in the restart starts it again
            self.out["restart_seconds"] += self.next_failure() - self.now
            self.now = self.next_failure()
            self.failures += 1
        self.now += self.restart_seconds
        self.out["restart_seconds"] += self.restart_seconds
        if self.saved is None:
            self.loop, self.epoch = self.loop.start_over(), 0
            return
        saved_epoch, state, committed = self.saved
        recovery = {"epochs_redone": self.epoch - saved_epoch, "seconds_lost": self.now - committed}
        self.loop, self.epoch = CheckpointLoop.resumed(state, len(self.trial.epochs), recovery), saved_epoch

    def outcome(self, cap_seconds):
        out = self.out
        out["failures"] = self.failures
        out["total_seconds"] = self.now if out["finished"] else min(self.now, cap_seconds)
        out["work_seconds"] = sum(self.trial.epochs)
        out["lost_seconds"] = (out["total_seconds"] - out["work_seconds"] - out["checkpoint_seconds"] -
                               out["restart_seconds"]) if out["finished"] else None
        return out


def run_policy(trial, policy, restart_seconds, cap_seconds, controller_args):
    """Replays one trial under `policy`; returns where its time went."""
    return _Replay(trial, policy, restart_seconds, controller_args).run(cap_seconds)


def summarize(outcomes):
    totals = [o["total_seconds"] for o in outcomes]
    overheads = [o["total_seconds"] / o["work_seconds"] - 1 for o in outcomes]
    finished = [o for o in outcomes if o["finished"]]
    deciles = statistics.quantiles(totals, n=10) if len(totals) > 1 else [totals[0]] * 9
    mean = statistics.fmean
    return {
        "trials": len(outcomes),
        "unfinished_trials": len(outcomes) - len(finished),
        "expected_total_seconds": mean(totals),
        "stderr_total_seconds": statistics.stdev(totals) / math.sqrt(len(totals)) if len(totals) > 1 else 0.0,
        "stdev_total_seconds": statistics.stdev(totals) if len(totals) > 1 else 0.0,
        "p10_total_seconds": deciles[0],
        "p90_total_seconds": deciles[-1],
        "expected_overhead": mean(overheads),
        "checkpoints_mean": mean(o["checkpoints"] for o in outcomes),
        "checkpoint_seconds_mean": mean(o["checkpoint_seconds"] for o in outcomes),
        "restart_seconds_mean": mean(o["restart_seconds"] for o in outcomes),
        "lost_seconds_mean": mean(o["lost_seconds"] for o in finished) if finished else None,
        "failures_mean": mean(o["failures"] for o in outcomes),
    }


def simulate(args):
    """Every policy on every failure rate, on the same trials. Returns the JSON document."""
    cap = args.cap_factor * sum(args.epoch_times)
    controller_args = {"mtbf_seconds": args.prior_mtbf_seconds, "checkpoint_seconds": args.checkpoint_seconds,
                       "budget_fraction": args.checkpoint_budget}
    cells = []
    for m_index, mtbf in enumerate(args.mtbf_seconds):
        outcomes = {str(p): [] for p in args.policies}
        for t in range(args.trials):
            seed = (args.seed * 1_000_003 + m_index) * 1_000_003 + t
            trial = Trial(random.Random(seed), args.epoch_times, args.checkpoint_seconds, args.jitter, mtbf)
            for policy in args.policies:
                outcomes[str(policy)].append(run_policy(trial, policy, args.restart_seconds, cap, controller_args))
        summaries = {name: summarize(runs) for name, runs in outcomes.items()}
        best = min(summaries, key=lambda name: summaries[name]["expected_total_seconds"])
        for name, summary in summaries.items():
            cells.append({"mtbf_seconds": mtbf, "policy": name, "best": name == best, **summary})
    return {
        "settings": {
            "epochs": args.epochs, "epoch_seconds": args.epoch_times, "checkpoint_seconds": args.checkpoint_seconds,
            "restart_seconds": args.restart_seconds, "jitter": args.jitter, "mtbf_seconds": args.mtbf_seconds,
            "policies": [str(p) for p in args.policies], "prior_mtbf_seconds": args.prior_mtbf_seconds,
            "checkpoint_budget": args.checkpoint_budget, "trials": args.trials, "cap_seconds": cap,
            "seed": args.seed, "timings_source": args.timings_source,
        },
        "failure_free_seconds": sum(args.epoch_times),
        "results": cells,
    }


# --- reporting --------------------------------------------------------------------------------------------------


def table(doc):
    header = (f"{'MTBF s':>8}  {'policy':<11} {'E[total] s':>11} {'+-SE':>6} {'p10-p90 s':>15} {'overhead':>9} "
              f"{'ckpts':>6} {'ckpt s':>7} {'lost s':>7} {'restart s':>9} {'fails':>6}")
    lines = [header, "-" * len(header)]
    previous = None
    for c in doc["results"]:
        if previous is not None and c["mtbf_seconds"] != previous:
            lines.append("")
        previous = c["mtbf_seconds"]
        bound = ">=" if c["unfinished_trials"] else ""
        lost = "-" if c["lost_seconds_mean"] is None else f"{c['lost_seconds_mean']:.0f}"
        lines.append(
            f"{c['mtbf_seconds']:>8.0f}  {c['policy']:<11} {bound + format(c['expected_total_seconds'], '.0f'):>11} "
            f"{c['stderr_total_seconds']:>6.1f} {c['p10_total_seconds']:>7.0f}-{c['p90_total_seconds']:<7.0f} "
            f"{bound + format(c['expected_overhead'], '.1%'):>9} {c['checkpoints_mean']:>6.1f} "
            f"{c['checkpoint_seconds_mean']:>7.1f} {lost:>7} {c['restart_seconds_mean']:>9.0f} "
            f"{c['failures_mean']:>6.2f}{'  <- best' if c['best'] else ''}")
    if any(c["unfinished_trials"] for c in doc["results"]):
        lines.append(f"'>=': some trials were still running at the cap ({doc['settings']['cap_seconds']:.0f}s) and "
                     f"count at it; 'lost s' is over the finished trials only")
    return "\n".join(lines)


def plot(doc, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (time_ax, ckpt_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for policy in doc["settings"]["policies"]:
        rows = [c for c in doc["results"] if c["policy"] == policy]
        x = [c["mtbf_seconds"] for c in rows]
        overhead = [100 * c["expected_overhead"] for c in rows]
        error = [100 * c["stderr_total_seconds"] / doc["failure_free_seconds"] for c in rows]
        line = time_ax.errorbar(x, overhead, yerr=error, marker="o", capsize=3, label=policy)
        for c, y in zip(rows, overhead):
            if c["unfinished_trials"]:  # a lower bound: some trials were stopped at the cap
                time_ax.annotate(">= (capped)", (c["mtbf_seconds"], y), textcoords="offset points", xytext=(6, 2),
                                 fontsize=7, color=line[0].get_color())
        ckpt_ax.plot(x, [c["checkpoints_mean"] for c in rows], marker="o", label=policy)
    s = doc["settings"]
    time_ax.set_yscale("log")
    time_ax.set_ylabel("expected overhead over a failure-free run (%)")
    time_ax.set_title("Expected time lost to failures and checkpoints")
    ckpt_ax.set_ylabel("checkpoints written per run (mean)")
    ckpt_ax.set_title("Checkpoints written")
    for ax in (time_ax, ckpt_ax):
        ax.set_xscale("log")
        ax.set_xlabel("true mean time between failures (s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{s['epochs']} epochs, {doc['failure_free_seconds']:.0f}s of work, checkpoint "
                 f"{s['checkpoint_seconds']:.3g}s, restart {s['restart_seconds']:.3g}s; adaptive assumes MTBF "
                 f"{s['prior_mtbf_seconds']:.4g}s until it sees failures; {s['trials']} trials per point "
                 f"(error bars: standard error)", fontsize=9)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def write_atomic(path, text):
    from training.core import atomic_files

    atomic_files.write_text(path, text)


def main(argv=None):
    args = parse_args(argv)
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as err:
        fail(f"RESULTS_DIR '{args.output_dir}' cannot be created ({err.strerror})")
    print(f"Simulating {len(args.policies)} policies x {len(args.mtbf_seconds)} failure rates x {args.trials} "
          f"trials: {args.epochs} epochs ({sum(args.epoch_times):.0f}s of work), checkpoint "
          f"{args.checkpoint_seconds:.3g}s, restart {args.restart_seconds:.3g}s, seed {args.seed}", flush=True)
    doc = simulate(args)
    print(table(doc))
    json_path = os.path.join(args.output_dir, OUTPUT_JSON)
    png_path = os.path.join(args.output_dir, OUTPUT_PNG)
    plot(doc, png_path)
    write_atomic(json_path, json.dumps(doc, indent=2) + "\n")
    print(f"Wrote {json_path} and {png_path}")


if __name__ == "__main__":
    settings.run_program(main, kept="nothing written")
