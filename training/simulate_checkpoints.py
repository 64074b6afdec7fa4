"""Which checkpoint policy pays off, and when: a Monte Carlo replay of a training run under random failures.

    python training/simulate_checkpoints.py                                   # the defaults below
    python training/simulate_checkpoints.py --timings results/ray_results_2workers.json   # a measured run
    SIM_MTBF_SECONDS=600,3600 SIM_TRIALS=500 python training/simulate_checkpoints.py

A run of E epochs is replayed many times. Failures arrive as a Poisson process in wall-clock time (during
epochs, checkpoint writes and restarts alike); a failure throws away everything since the last committed
checkpoint (from scratch when there is none), costs a restart, and training resumes from that checkpoint. Each
policy (every, never, interval:K, adaptive) runs the same trials: the same epoch times and the same failure
arrival times, so their differences are the policies' and not the dice's.

The adaptive policy is the kit's CheckpointController exactly as Ray training uses it: it starts from the prior
MTBF the kit assumes (not the true one, which a real run does not know), is told the cost of one checkpoint (the
kit measures one save before the clock starts), and after a failure continues from the state stored in the
restored checkpoint, or from scratch when there was none, as a restarted worker does.

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
import sys

import settings
from checkpoint_policy import CheckpointController, PolicyError, parse_policy
from settings import env, fail, fraction, non_negative_int, positive_float, positive_int

OUTPUT_JSON = "checkpoint_simulation.json"
OUTPUT_PNG = "checkpoint_simulation.png"

# Defaults, each a plausible value for the kit's CIFAR-10 run on Kubernetes: ~2 minutes per epoch on laptop pods,
# a 40 MB checkpoint (3.25M weights and Adam's two moments) written to shared storage in a few seconds, and a
# worker group that takes half a minute to come back (pod restart, Ray worker start, TensorFlow import).
SIM_DEFAULTS = {
    "SIM_EPOCHS": "20",
    "SIM_EPOCH_SECONDS": "120",
    "SIM_CHECKPOINT_SECONDS": "5",
    "SIM_RESTART_SECONDS": "30",
    "SIM_JITTER": "0.1",  # epochs and checkpoints vary by this share (uniform), as measured ones do
    "SIM_MTBF_SECONDS": "300,900,3600,14400,86400",  # from a failure every 5 minutes to one a day
    "SIM_POLICIES": "every,never,interval:5,adaptive",
    "SIM_TRIALS": "2000",  # keeps the standard error of each mean near 1% of it at the highest failure rate
    "SIM_CAP_FACTOR": "50",
}


def parse_mtbf_list(text):
    try:
        values = [float(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 < v < math.inf for v in values):
        raise settings.SettingsError(f"SIM_MTBF_SECONDS must be a comma-separated list of positive seconds, "
                                     f"got '{text}'")
    return sorted(set(values))


def parse_policy_list(text):
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    try:
        policies = [parse_policy(name) for name in names]
    except PolicyError:
        policies = []
    if not policies:
        raise settings.SettingsError(f"SIM_POLICIES must be a comma-separated list of every, never, interval:K "
                                     f"(K a positive integer), adaptive, got '{text}'")
    return list(dict.fromkeys(policies))


def non_negative_float(setting):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 <= value < math.inf:
            raise settings.SettingsError(f"{setting} must be a number, 0 or more, got '{text}'")
        return value

    return parse


def jitter_share(text):
    value = non_negative_float("SIM_JITTER")(text)
    if value >= 1:
        raise settings.SettingsError(f"SIM_JITTER must be at least 0 and below 1, got '{text}'")
    return value


def parse_args(argv=None):
    parser = settings.KitArgumentParser(
        description="Compare checkpoint policies on expected total training time under random failures.")

    def sim(name):
        return env(name, SIM_DEFAULTS[name])

    parser.add_argument("--timings", default=env("SIM_TIMINGS", ""),
                        help="a results JSON of a Ray run to replay: its epoch seconds, mean checkpoint seconds and "
                             "worker restart seconds replace --epochs, --epoch-seconds, --checkpoint-seconds and "
                             "--restart-seconds (env SIM_TIMINGS)")
    parser.add_argument("--epochs", type=positive_int("SIM_EPOCHS"), default=sim("SIM_EPOCHS"),
                        help="epochs in the run (env SIM_EPOCHS, default %(default)s)")
    parser.add_argument("--epoch-seconds", type=positive_float("SIM_EPOCH_SECONDS"), default=sim("SIM_EPOCH_SECONDS"),
                        help="mean seconds per epoch (env SIM_EPOCH_SECONDS, default %(default)s)")
    parser.add_argument("--checkpoint-seconds", type=non_negative_float("SIM_CHECKPOINT_SECONDS"),
                        default=sim("SIM_CHECKPOINT_SECONDS"),
                        help="mean seconds to write one checkpoint (env SIM_CHECKPOINT_SECONDS, default %(default)s)")
    parser.add_argument("--restart-seconds", type=non_negative_float("SIM_RESTART_SECONDS"),
                        default=sim("SIM_RESTART_SECONDS"),
                        help="seconds from a failure until training runs again (env SIM_RESTART_SECONDS, default "
                             "%(default)s)")
    parser.add_argument("--jitter", type=jitter_share, default=sim("SIM_JITTER"),
                        help="epochs and checkpoints take their mean times this share more or less, uniformly "
                             "(env SIM_JITTER, default %(default)s)")
    parser.add_argument("--mtbf-seconds", type=parse_mtbf_list, default=sim("SIM_MTBF_SECONDS"),
                        help="true mean times between failures to compare at, comma-separated (env "
                             "SIM_MTBF_SECONDS, default %(default)s)")
    parser.add_argument("--policies", type=parse_policy_list, default=sim("SIM_POLICIES"),
                        help="policies to compare, comma-separated (env SIM_POLICIES, default %(default)s)")
    parser.add_argument("--prior-mtbf-seconds", type=positive_float("MTBF_SECONDS"),
                        default=env("MTBF_SECONDS", "3600"),
                        help="the MTBF the adaptive policy assumes until it sees failures, as in ray_training.py "
                             "(env MTBF_SECONDS, default %(default)s)")
    parser.add_argument("--checkpoint-budget", type=fraction("CHECKPOINT_BUDGET"),
                        default=env("CHECKPOINT_BUDGET", "0.05"),
                        help="adaptive policy's largest share of training time for checkpoints (env "
                             "CHECKPOINT_BUDGET, default %(default)s)")
    parser.add_argument("--trials", type=positive_int("SIM_TRIALS"), default=sim("SIM_TRIALS"),
                        help="replays per policy and failure rate (env SIM_TRIALS, default %(default)s)")
    parser.add_argument("--cap-factor", type=positive_float("SIM_CAP_FACTOR"), default=sim("SIM_CAP_FACTOR"),
                        help="a trial stops at this many times the failure-free run time (env SIM_CAP_FACTOR, "
                             "default %(default)s)")
    parser.add_argument("--seed", type=non_negative_int("SEED"), default=env("SEED"),
                        help="seed of every random draw (env SEED, default %(default)s)")
    parser.add_argument("--output-dir", default=env("RESULTS_DIR"),
                        help="folder for checkpoint_simulation.json/.png (env RESULTS_DIR, default %(default)s)")
    args = parser.parse_args(argv)
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


def run_policy(trial, policy, restart_seconds, cap_seconds, controller_args):
    """Replays one trial under `policy`; returns where its time went."""
    total = len(trial.epochs)
    new_controller = lambda: CheckpointController(policy, **controller_args)  # noqa: E731
    controller = new_controller()
    now, failures, epoch = 0.0, 0, 0
    saved = None  # (epoch, controller state, commit time) of the latest committed checkpoint
    out = {"checkpoints": 0, "checkpoint_seconds": 0.0, "failures": 0, "restart_seconds": 0.0, "finished": True}

    def fail_and_restart():
        nonlocal now, failures, epoch, controller
        now = trial.failure_at(failures)
        failures += 1
        while True:  # a failure during the restart starts the restart again
            if trial.failure_at(failures) < now + restart_seconds:
                out["restart_seconds"] += trial.failure_at(failures) - now
                now = trial.failure_at(failures)
                failures += 1
                continue
            now += restart_seconds
            out["restart_seconds"] += restart_seconds
            break
        if saved is None:
            controller, epoch = new_controller(), 0
        else:
            saved_epoch, state, committed = saved
            controller = CheckpointController.from_state(state)
            controller.observe_recovery(epoch - saved_epoch, seconds_lost=now - committed)
            epoch = saved_epoch

    while epoch < total:
        if now > cap_seconds:
            out["finished"] = False
            break
        seconds = trial.epochs[epoch]
        if trial.failure_at(failures) < now + seconds:
            fail_and_restart()
            continue
        now += seconds
        epoch += 1
        controller.observe_epoch(seconds)
        if controller.should_checkpoint(epoch, total):
            state = controller.state()
            cost = trial.checkpoints[epoch - 1]
            if trial.failure_at(failures) < now + cost:  # died while writing: the checkpoint never committed
                out["checkpoint_seconds"] += trial.failure_at(failures) - now
                fail_and_restart()
                continue
            now += cost
            out["checkpoint_seconds"] += cost
            out["checkpoints"] += 1
            controller.observe_checkpoint(cost)
            saved = (epoch, state, now)
    out["failures"] = failures
    out["total_seconds"] = min(now, cap_seconds) if not out["finished"] else now
    out["work_seconds"] = sum(trial.epochs)
    out["lost_seconds"] = out["total_seconds"] - out["work_seconds"] - out["checkpoint_seconds"] - \
        out["restart_seconds"] if out["finished"] else None
    return out


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
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


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
    try:
        main()
    except KeyboardInterrupt:
        print("error: interrupted; nothing written", file=sys.stderr)
        sys.exit(130)
