"""Every setting of the kit in one table: its name, type, default and the reason for it, what is allowed, which
programs take it. The argparse parsers, their --help, the up-front check, the trainers' command lines, the sweep's
run-id hash and the settings table in docs/QUICK_REFERENCE.md are all made from SETTINGS; nothing else defaults or
validates a setting.

Standard library only (and so is every package above it): bash runs `python3 -m training.core.settings check
--programs ...` before any virtualenv exists, so a typo in EPOCHS fails in a second instead of after a
multi-minute install.

    python3 -m training.core.settings check --programs baseline,ray     validates the environment; one line, exit 2
    python3 -m training.core.settings defaults [--quick] [--programs P] NAME...   NAME=value lines for bash to export
    python3 -m training.core.settings argv --program ray --target pod NAME=VALUE ...   a trainer's argv, NUL-separated
    python3 -m training.core.settings rayjob                             k8s/ray-job.yaml, from the same argv builder
    python3 -m training.core.settings table                              the Markdown table of every setting
    python3 -m training.core.settings docs                               writes that table into docs/QUICK_REFERENCE.md
    python3 -m training.core.settings list --programs ...                NAME=default lines, for a script's --help

Bad input never produces a traceback: one line `error: <SETTING> ...` on stderr and exit code 2.
"""

import argparse
import math
import os
import sys
from dataclasses import dataclass, field

from training.core import cifar_files

EXIT_BAD_INPUT = 2
DATASETS = ("cifar10", "synthetic", "digits")
BATCH_SIZE_MODES = ("per-worker", "global")
# What gradients may be all-reduced in (model.ALLREDUCE_DTYPES; here so flags parse before TensorFlow loads).
ALLREDUCE_DTYPES = ("float32", "bfloat16", "float16")
LR_SCALINGS = ("sqrt", "linear", "none")
COLLECTIVES = ("AUTO", "RING", "NCCL")
FAILURE_MODES = ("exit", "kill")
SCALINGS = ("strong", "weak")
SWEEP_TARGETS = ("local", "k8s")
SUBMIT_MODES = ("exec", "jobs")
# How each program is started from the repository root, and how the builder names it.
PROGRAMS = {
    "baseline": "python -m training.baseline_training",
    "ray": "python -m training.ray_training",
    "patterns": "python -m training.walkthrough.ray_patterns",
    "simulate": "python -m training.checkpointing.simulate_checkpoints",
    "compare": "python -m training.compare",
    "sweep": "python -m training.sweep",
    "benchmark": "scripts/benchmark.sh",
    "cluster": "scripts/run-benchmark.sh (cluster target)",
    "local": "scripts/run-benchmark.sh --local",
}
TRAINERS = ("baseline", "ray")
TARGETS = ("local", "pod")
# The folder in the pods that scripts/lib/cluster_benchmark.sh copies results out of.
POD_KIT_DIR = "/tmp/kit"


class SettingsError(argparse.ArgumentTypeError, ValueError):
    """A setting has a value outside what is allowed; the message names the setting. An ArgumentTypeError so
    argparse shows its message instead of 'invalid parse value'."""


def fail(message, code=EXIT_BAD_INPUT):
    """Prints one line and exits: how every entry point reports bad input or a known failure."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def run_program(main, kept="no results written"):
    """Runs a program's main(); Ctrl-C ends it with one line saying what was kept, and exit code 130."""
    try:
        main()
    except KeyboardInterrupt:
        fail(f"interrupted; {kept}", code=130)


# --- value types: each takes the setting's name and returns a parser of its text ---------------------------------


def _number(text, kind, fallback):
    try:
        return kind(str(text).strip())
    except ValueError:
        return fallback


def _numeric(setting, kind, fallback, ok, allowed):
    """A parser of numbers of `kind` for which ok(value, text) holds; `allowed` says which, in the error."""
    def parse(text):
        value = _number(text, kind, fallback)
        if not ok(value, str(text).strip()):
            raise SettingsError(f"{setting} must be {allowed}, got '{text}'")
        return value

    parse.allowed = allowed
    return parse


def positive_int(setting):
    return _numeric(setting, int, 0, lambda v, text: v >= 1 and not text.startswith("+"), "a positive integer")


def non_negative_int(setting):
    return _numeric(setting, int, -1, lambda v, _: v >= 0, "a whole number, 0 or more")


def positive_float(setting):
    return _numeric(setting, float, -1.0, lambda v, _: 0 < v < math.inf, "a positive number")


def non_negative_float(setting):
    return _numeric(setting, float, -1.0, lambda v, _: 0 <= v < math.inf, "a number, 0 or more")


def number_between(setting, low, high, high_included=False):
    """low < value < high, or <= high when high_included."""
    return _numeric(setting, float, math.nan,
                    lambda v, _: low < v and (v <= high if high_included else v < high),
                    f"a number in ({low:g}, {high:g}{']' if high_included else ')'}")


def fraction(setting):
    return _numeric(setting, float, -1.0, lambda v, _: 0 < v < 1, "a number between 0 and 1 (exclusive)")


def share_below_one(setting):
    """0 <= value < 1: a share of a mean that something may vary by."""
    return _numeric(setting, float, -1.0, lambda v, _: 0 <= v < 1, "at least 0 and below 1")


def one_of(setting, allowed):
    def parse(text):
        if text not in allowed:
            raise SettingsError(f"{setting} must be one of {', '.join(allowed)}, got '{text}'")
        return text

    parse.allowed = ", ".join(allowed)
    return parse


def switch(setting):
    """On/off: 1/true/yes or 0/false/no (empty is off)."""
    def parse(text):
        value = str(text).strip().lower()
        if value in ("1", "true", "yes"):
            return True
        if value in ("", "0", "false", "no"):
            return False
        raise SettingsError(f"{setting} must be 0 or 1, got '{text}' (allowed: 0, 1, true, false, yes, no)")

    parse.allowed = "0 or 1"
    return parse


def text(setting):
    def parse(value):
        return str(value)

    parse.allowed = "text"
    return parse


def data_dir(setting):
    """An empty DATA_DIR means 'use Keras' download cache'; a given one must hold the CIFAR-10 batches."""
    def parse(value):
        if not value:
            return None
        try:
            cifar_files.locate_batches(value)
        except cifar_files.CifarFilesError as err:
            raise SettingsError(str(err)) from None
        return os.path.abspath(value)

    parse.allowed = "a cifar-10-batches-py folder or its parent"
    return parse


def checkpoint_policy(setting):
    def parse(value):
        from training.checkpointing import checkpoint_policy as policies  # standard library only, like this module

        try:
            return str(policies.parse_policy(value))
        except ValueError as err:
            raise SettingsError(str(err)) from None

    parse.allowed = "every, never, interval:K, adaptive"
    return parse


def seconds_list(setting):
    def parse(value):
        values = [_number(part, float, math.nan) for part in str(value).split(",") if part.strip()]
        if not values or any(not 0 < v < math.inf for v in values):
            raise SettingsError(f"{setting} must be a comma-separated list of positive seconds, got '{value}'")
        return sorted(set(values))

    parse.allowed = "positive seconds, comma-separated"
    return parse


def policy_list(setting):
    def parse(value):
        from training.checkpointing import checkpoint_policy as policies

        try:
            listed = [policies.parse_policy(part.strip()) for part in str(value).split(",") if part.strip()]
        except ValueError:
            listed = []
        if not listed:
            raise SettingsError(f"{setting} must be a comma-separated list of every, never, interval:K "
                                f"(K a positive integer), adaptive, got '{value}'")
        return list(dict.fromkeys(listed))

    parse.allowed = "policies, comma-separated"
    return parse


# --- the table ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str  # the environment variable (and, lower-cased with dashes, the flag)
    kind: object  # a type above: called with the name, it returns the parser of a value's text
    help: str
    programs: tuple
    default: str = None  # as the environment would give it; None: unset (the program decides, see help)
    why: str = ""  # the reason for the default
    flags: dict = field(default_factory=dict)  # program -> flag, where a program spells it differently
    env: bool = True  # False: a flag only (an output path, --resume)
    hashed: bool = False  # changes what a run computes: part of a sweep run's id
    # On the cluster target: "pass" as a flag to the pod, "refuse" with one line, "local" (kept on this machine).
    pod: str = "pass"
    pod_default: str = None  # what the pods use when the setting is unset (k8s/ray-job.yaml)
    # A hyper-parameter of model.build_model, which both trainers pass it as its lower-case name: exposing one
    # is a row here, a parameter there, and a test.
    model: bool = False

    def flag(self, program):
        return self.flags.get(program, "--" + self.name.lower().replace("_", "-"))

    def parser(self):
        return self.kind(self.name)

    @property
    def is_switch(self):
        return self.kind is switch


TRAINING = ("baseline", "ray")
CHECKPOINTING = ("ray", "patterns", "simulate")
SETTINGS = (
    Setting("EPOCHS", positive_int, "epochs to train", TRAINING + ("patterns", "local", "cluster"), "10",
            "enough for the CNN to pass 70% on CIFAR-10, short enough for a laptop"),
    Setting("BATCH_SIZE", positive_int, "images per step: in a Ray run PER WORKER by default, so the global "
            "batch is NUM_WORKERS times larger (see BATCH_SIZE_MODE); the baseline's whole batch",
            TRAINING + ("patterns", "benchmark", "local", "cluster"), "64",
            "large enough to keep a core busy, small enough for 4 GiB pods"),
    Setting("LEARNING_RATE", positive_float, "Adam's learning rate of a single worker (Ray scales it: LR_SCALING)",
            TRAINING + ("patterns",), "0.001", "Adam's usual rate for one worker", hashed=True),
    Setting("SEED", non_negative_int, "seed of data order, splits, weights and every random draw",
            TRAINING + ("patterns", "simulate"), "42", "any fixed seed makes runs repeatable", hashed=True),
    Setting("DATASET", one_of, "cifar10 (real data; downloads once), synthetic (random images: throughput only, "
            "accuracy means nothing), digits (scikit-learn's bundled 8x8 digits upscaled to 32x32: real, offline)",
            TRAINING + ("patterns", "local", "cluster"), "cifar10", "the benchmark the kit is named for", hashed=True),
    Setting("DATA_DIR", data_dir, "a cifar-10-batches-py folder (or its parent) to read CIFAR-10 from instead of "
            "Keras' download", TRAINING + ("patterns",), hashed=True, pod="refuse"),
    Setting("TRAIN_SAMPLES", positive_int, "train on this many images only (default: all)",
            TRAINING + ("patterns",), hashed=True),
    Setting("TEST_SAMPLES", positive_int, "evaluate on this many test images only (default: all)",
            TRAINING + ("patterns",), hashed=True),
    Setting("VAL_FRACTION", fraction, "share of the training images held out for validation", TRAINING, "0.1",
            "a tenth: enough images to see overfitting, few taken from training", hashed=True),
    Setting("BN_MOMENTUM", fraction, "batch normalization's momentum: how fast the moving statistics that "
            "validation and test use follow the weights", TRAINING, "0.9", "Keras' 0.99 needs hundreds of steps "
            "to catch up, and quick runs take tens (model.py)", hashed=True, model=True),
    Setting("EARLY_STOPPING_PATIENCE", non_negative_int, "stop after this many epochs without a better val_loss; "
            "0 turns it off", TRAINING, "0", "off: a benchmark compares equal numbers of epochs", hashed=True),
    Setting("RUN_ID", text, "identifier stored in the results (default: type and time)", TRAINING),
    Setting("PROGRESS_INTERVAL", non_negative_float, "seconds between the in-epoch progress lines (step, images/s, "
            "time left; on Ray rank 0's, for the group); 0 turns them off. scripts/run-benchmark.sh on a terminal "
            "makes it 1 where unset and redraws the line in place", TRAINING + ("local", "cluster"), "10",
            "a pipe, a log file or `kubectl exec` gets a line often enough to tell a slow run from a hung one, "
            "and few enough to read"),
    Setting("THREADS", positive_int, "TensorFlow's thread pools in the baseline: the CPUs it may use (default: "
            "all CPUs available to the process)", ("baseline",)),
    Setting("NUM_WORKERS", positive_int, "Ray Train workers", ("ray", "benchmark", "local", "cluster", "compare"),
            "2", "the Kubernetes cluster has two worker pods", pod_default="2"),
    Setting("CPUS_PER_WORKER", positive_int, "CPUs Ray reserves for each worker (or the tasks demo's actor); "
            "TensorFlow's thread pools use exactly this many (cluster target: default a worker pod's CPUs)",
            ("ray", "patterns", "local", "cluster"), "1", "a 2-core laptop gives one core to each of two workers",
            flags={"patterns": "--cpus"}, pod_default="2"),
    Setting("RAY_ADDRESS", text, "Ray cluster to join: 'auto' inside one (the head pod), host:port of a head, or "
            "empty for a private single-node Ray with token auth", ("ray", "patterns"), pod="local",
            pod_default="auto"),
    Setting("USE_GPU", switch, "give each Ray worker one GPU (the cluster target needs nvidia.com/gpu pods)",
            ("ray", "cluster"), "0", "the kit's image and pods are CPU-only"),
    Setting("BATCH_SIZE_MODE", one_of, "per-worker: each Ray worker takes BATCH_SIZE images per step (weak "
            "scaling); global: the workers split BATCH_SIZE (strong scaling; must divide evenly)",
            ("ray", "local", "cluster"), "per-worker", "weak scaling keeps each worker's step as large as the "
            "baseline's"),  # not hashed: a sweep's SCALING sets it for every run, and SCALING is in the hash
    Setting("LR_SCALING", one_of, "how Ray's learning rate follows the global batch: LEARNING_RATE x sqrt(k), "
            "x k, or unchanged, where k = global batch / BATCH_SIZE", ("ray",), "sqrt",
            "the square-root rule is the safe middle for Adam", hashed=True),
    Setting("STORAGE_PATH", text, "folder (or URI) every Ray node sees, for checkpoints (default: "
            "RESULTS_DIR/checkpoints)", ("ray",), pod="local"),
    Setting("CHECKPOINT_POLICY", checkpoint_policy, "when rank 0 saves a checkpoint: every, never, interval:K or "
            "adaptive (the final epoch is always saved except with never)", ("ray", "patterns"), "adaptive",
            "saves where the expected time lost to failures and checkpoints is least", hashed=True),
    Setting("CHECKPOINT_BUDGET", fraction, "adaptive policy: the largest share of training time spent saving "
            "checkpoints", CHECKPOINTING, "0.05", "checkpoints may cost at most 5% of the training time"),
    Setting("MTBF_SECONDS", positive_float, "adaptive policy: the mean time between failures it assumes until "
            "it has seen some", CHECKPOINTING, "3600", "a failure an hour: pessimistic for one machine, fair for "
            "laptop pods", flags={"simulate": "--prior-mtbf-seconds"}),
    Setting("MAX_FAILURES", non_negative_int, "worker-group restarts allowed; each resumes from the latest "
            "checkpoint", ("ray",), "1", "one restart shows recovery without hiding a crash loop"),
    Setting("INJECT_FAILURE_EPOCH", non_negative_int, "demo: the last Ray worker's process exits in the middle "
            "of this epoch, once per run (0: off)", ("ray",), "0", "off"),
    Setting("COLLECTIVE", one_of, "MultiWorkerMirroredStrategy's all-reduce implementation", ("ray",), "AUTO",
            "TensorFlow picks the one that fits the devices", hashed=True),
    Setting("ALLREDUCE_DTYPE", one_of, "what gradients cross workers in: float32 (exact), bfloat16 (half the bytes, "
            "float32's range) or float16; weights and updates stay float32", ("ray",), "float32",
            "exact gradients", hashed=True),
    Setting("RESUME", switch, "continue the run RUN_ID from its latest checkpoint in STORAGE_PATH; starts fresh "
            "when there is none (without it, a RUN_ID that has checkpoints is refused)", ("ray",), env=False),
    Setting("RECORD_SHARDS", switch, "store every Ray worker's training-image indices in the results (to check "
            "that shards are disjoint)", ("ray",), env=False),
    Setting("OUTPUT", text, "results JSON to write; never written unless the run succeeds (default: "
            "RESULTS_DIR/<type>_results.json)", TRAINING + ("patterns",), env=False),
    Setting("RESULTS_DIR", text, "where results go", TRAINING + ("simulate", "sweep", "compare", "local", "cluster"),
            "results", "the folder the README points at", flags={"simulate": "--output-dir"}, pod="local"),
    # The Ray tasks-and-actors demo.
    Setting("FAIL_AT_EPOCH", non_negative_int, "tasks demo: the actor dies halfway through this epoch, once "
            "(0: no failure)", ("patterns",), "3", "late enough to have a checkpoint to go back to"),
    Setting("FAILURE_MODE", one_of, "tasks demo: exit (the actor's process calls os._exit) or kill (the driver "
            "calls ray.kill)", ("patterns",), "exit", "a crash from inside, like a real one"),
    # The checkpoint-policy simulation.
    Setting("SIM_TIMINGS", text, "simulation: a results JSON of a Ray run to replay; its epoch, checkpoint and "
            "restart seconds replace SIM_EPOCHS, SIM_EPOCH_SECONDS, SIM_CHECKPOINT_SECONDS, SIM_RESTART_SECONDS",
            ("simulate",), flags={"simulate": "--timings"}),
    Setting("SIM_EPOCHS", positive_int, "simulation: epochs in the run", ("simulate",), "20",
            "a CIFAR-10 run long enough for failures to matter", flags={"simulate": "--epochs"}),
    Setting("SIM_EPOCH_SECONDS", positive_float, "simulation: mean seconds per epoch", ("simulate",), "120",
            "about two minutes per CIFAR-10 epoch on laptop pods", flags={"simulate": "--epoch-seconds"}),
    Setting("SIM_CHECKPOINT_SECONDS", non_negative_float, "simulation: mean seconds to write one checkpoint",
            ("simulate",), "5", "a 40 MB checkpoint (3.25M weights, Adam's two moments) to shared storage",
            flags={"simulate": "--checkpoint-seconds"}),
    Setting("SIM_RESTART_SECONDS", non_negative_float, "simulation: seconds from a failure until training runs "
            "again", ("simulate",), "30", "pod restart, Ray worker start, TensorFlow import",
            flags={"simulate": "--restart-seconds"}),
    Setting("SIM_JITTER", share_below_one, "simulation: epochs and checkpoints take their mean times this share "
            "more or less, uniformly", ("simulate",), "0.1", "measured epochs vary about this much",
            flags={"simulate": "--jitter"}),
    Setting("SIM_MTBF_SECONDS", seconds_list, "simulation: true mean times between failures to compare at",
            ("simulate",), "300,900,3600,14400,86400", "from a failure every 5 minutes to one a day",
            flags={"simulate": "--mtbf-seconds"}),
    Setting("SIM_POLICIES", policy_list, "simulation: policies to compare", ("simulate",),
            "every,never,interval:5,adaptive", "each kind once", flags={"simulate": "--policies"}),
    Setting("SIM_TRIALS", positive_int, "simulation: replays per policy and failure rate", ("simulate",), "2000",
            "keeps each mean's standard error near 1% of it at the highest failure rate",
            flags={"simulate": "--trials"}),
    Setting("SIM_CAP_FACTOR", positive_float, "simulation: a trial stops at this many times the failure-free run "
            "time", ("simulate",), "50", "far past any policy worth using", flags={"simulate": "--cap-factor"}),
    # Scaling sweeps.
    Setting("EXPERIMENT", text, "sweep: the experiment's name (default: derived from the scales and settings, so "
            "the same command finds the same experiment)", ("sweep",)),
    Setting("SWEEP", text, "sweep: Ray worker counts, such as 1,2,3; the baseline is added", ("sweep",)),
    Setting("SCALES_FILE", text, "sweep: a YAML or JSON file listing scales (training/sweep/scales.py)",
            ("sweep",), flags={"sweep": "--scales"}),
    Setting("REPEAT", positive_int, "sweep: run every scale this many times; the report gives medians and min-max",
            ("sweep",), "1", "one pass first; repeat for the spread"),
    Setting("MAX_ATTEMPTS", positive_int, "sweep: failed attempts allowed per run before it gives up on it; "
            "interrupted attempts do not count", ("sweep",), "3", "rides out a flaky start, not a broken setting"),
    Setting("TARGET_ACCURACY", lambda name: number_between(name, 0, 1, high_included=True),
            "sweep: report each run's time to this validation accuracy, such as 0.7", ("sweep",)),
    Setting("STOP_AT_TARGET", switch, "sweep: end once a run reaches TARGET_ACCURACY", ("sweep",), "0", "off"),
    Setting("SCALING", one_of, "sweep: weak (BATCH_SIZE per worker) or strong (BATCH_SIZE is the global batch "
            "the workers split)", ("sweep",), "weak", "each worker's step stays the baseline's", hashed=False),
    Setting("SWEEP_TARGET", one_of, "sweep: local (runs start on this machine) or k8s (inside the RayCluster's "
            "pods)", ("sweep",), "local", "no cluster needed", flags={"sweep": "--target"}),
    Setting("CLUSTER_CPUS", positive_int, "sweep: CPUs the runs may use; a scale needing more is refused "
            "(default: this machine's CPUs for local, the pods' for k8s)", ("sweep",)),
    Setting("RUN_TIMEOUT_S", non_negative_int, "stop a run after this many seconds and count it failed (default: "
            "3600 on the cluster target, so that a run that lost its worker for good ends; 0, no limit, in a "
            "sweep, whose activity then gives up on a run after 24 h)", ("sweep", "cluster"),
            flags={"sweep": "--run-timeout"}),
    Setting("TEMPORAL_ADDRESS", text, "sweep: host:port of a Temporal server of your own (self-hosted or Temporal "
            "Cloud; TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS* as the Temporal SDK reads them); unset: the "
            "embedded server, on 127.0.0.1 with its database in RESULTS_DIR/temporal/", ("sweep",)),
    Setting("TEMPORAL_UI", switch, "sweep: start the embedded Temporal server with its Web UI on 127.0.0.1 (the "
            "console prints the address)", ("sweep",), "0", "a sweep needs no browser, and one listener less"),
    # The kit's own benchmark (scripts/benchmark.sh).
    Setting("REPEATS", positive_int, "benchmark: repeats of every configuration (2 with --quick)",
            ("benchmark",), "3", "a median and a spread"),
    Setting("BENCH_EPOCHS", positive_int, "benchmark: epochs per throughput run (the first is warm-up)",
            ("benchmark",), "3", "two steady epochs after the warm-up"),
    Setting("BENCH_TRAIN_SAMPLES", positive_int, "benchmark: synthetic images per throughput run (768 with "
            "--quick)", ("benchmark",), "1536", "24 steps of 64 per epoch"),
    Setting("BENCH_ACCURACY_EPOCHS", positive_int, "benchmark: epochs of the digits accuracy check (3 with "
            "--quick)", ("benchmark",), "5", "enough for both sides to pass 90%"),
    Setting("BENCH_ALLREDUCE_DTYPE", one_of, "benchmark: what its Ray runs all-reduce gradients in",
            ("benchmark",), "float32", "exact gradients"),
    # The local Ray cluster and the Kubernetes target of scripts/run-benchmark.sh.
    Setting("LOCAL_RAY_PORT", positive_int, "--local: port of the local Ray head (its workers take ports above "
            "it)", ("local", "benchmark"), "6390", "clear of Ray's own 6379, so a Ray you run yourself is left "
            "alone"),
    Setting("KIT_PYTHON", text, "the Python 3.11 that makes .venv", ("local", "cluster", "benchmark"), "python3",
            "the system's Python"),
    Setting("LOCAL_RAY_PIN_CPUS", one_of, "--local, an experiment: 1 holds each worker's TensorFlow op threads "
            "to a CPU of its own", ("local", "benchmark"), "0", "the kernel's scheduling is the honest default"),
    Setting("SUBMIT", one_of, "cluster target: exec (kubectl exec in the head pod) or jobs (ray job submit over "
            "a port-forward)", ("cluster",), "exec", "needs nothing on this machine but kubectl"),
    Setting("LOCAL_RAY_DASHBOARD", switch, "--local: start the Ray Dashboard on the local head, bound to "
            "127.0.0.1 at DASHBOARD_LOCAL_PORT, up until the run ends", ("local",), "0",
            "the dashboard's processes take CPU the workers need on a small machine"),
    Setting("DASHBOARD_LOCAL_PORT", positive_int, "the Ray Dashboard's port on this machine (bound to 127.0.0.1 "
            "only): cluster target, SUBMIT=jobs, the local end of the port-forward; --local with "
            "LOCAL_RAY_DASHBOARD=1, the local head's dashboard", ("cluster", "local"), "8265",
            "Ray's own dashboard port"),
    Setting("CHECKPOINT_STORAGE_URI", text, "cluster target: where Ray Train keeps checkpoints, a store every pod "
            "reaches", ("cluster",),
            "s3://ray-checkpoints/runs?endpoint_override=checkpoint-store:9000&scheme=http&region=us-east-1"
            "&allow_bucket_creation=true",
            "the MinIO Service of k8s/checkpoint-store.yaml; pyarrow reads the endpoint from the URI"),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
# The allowed values of the one_of settings.
CHOICES = {"DATASET": DATASETS, "BATCH_SIZE_MODE": BATCH_SIZE_MODES, "LR_SCALING": LR_SCALINGS,
           "COLLECTIVE": COLLECTIVES, "ALLREDUCE_DTYPE": ALLREDUCE_DTYPES, "FAILURE_MODE": FAILURE_MODES,
           "SCALING": SCALINGS, "SWEEP_TARGET": SWEEP_TARGETS, "BENCH_ALLREDUCE_DTYPE": ALLREDUCE_DTYPES,
           "LOCAL_RAY_PIN_CPUS": ("0", "1"), "SUBMIT": SUBMIT_MODES}
DEFAULTS = {setting.name: setting.default for setting in SETTINGS if setting.default is not None}
# Settings that change what a sweep's run computes: changing one makes another experiment.
HASHED_SETTINGS = tuple(setting.name for setting in SETTINGS if setting.hashed)

# What `run-benchmark.sh --quick` sets where the user did not: a run of about two and a half minutes on 2 cores
# in which both sides learn. Measured by benchmarks/quick_recipe_probe.py (digits, one CPU, seed 42): 32 steps of
# 64 at LEARNING_RATE 0.001 scored 0.39 on the test set, 40 steps at 0.001 0.90, 40 at 0.002 0.99. With fewer
# steps batch normalization's moving statistics lag the weights: the old quick recipe's 16 steps of a global
# batch of 128 scored 0.12 with them and 0.95 with statistics recomputed from the final weights. A global batch
# split over the workers gives the two sides the same steps at the same rate, so their accuracies compare.
QUICK = {
    "DATASET": "digits",  # offline and real: every one of its 1,294 training images (TRAIN_SAMPLES unset)
    "EPOCHS": "2",  # 2 x 20 steps; the second epoch is the steady-state one
    "BATCH_SIZE": "64",
    "BATCH_SIZE_MODE": "global",  # Ray's 2 workers take 32 each: the baseline's batch, split
    "LEARNING_RATE": "0.002",  # reaches 0.85+ in 40 steps where 0.001 is at the edge
}
# Defaults of one program that differ from the table's, each overlay with its reason.
PROGRAM_DEFAULTS = {
    # A demo that injects a failure within a minute should tell the controller to expect one: with the
    # benchmark's 3600 s it would rightly save only the final epoch, and the recovery would start over.
    "patterns": {"DATASET": "digits", "TRAIN_SAMPLES": "320", "TEST_SAMPLES": "200", "EPOCHS": "4",
                 "BATCH_SIZE": "32", "MTBF_SECONDS": "60"},
    # scripts/benchmark.sh --quick: under 10 minutes on 2 cores.
    "benchmark --quick": {"REPEATS": "2", "BENCH_TRAIN_SAMPLES": "768", "BENCH_ACCURACY_EPOCHS": "3"},
    # A run in a pod that hangs (a worker lost for good) must end, or it holds the cluster's CPUs forever.
    "cluster": {"RUN_TIMEOUT_S": "3600"},
    "sweep": {"RUN_TIMEOUT_S": "0"},
    # Without --num-workers the comparison takes the one ray_results_<N>workers.json there is.
    "compare": {"NUM_WORKERS": None},
}


def allowed(setting):
    """What a setting may be, in words, for errors and the docs table."""
    parse = parser_of(setting)
    return getattr(parse, "allowed", "text")


def parser_of(setting):
    if setting.kind is one_of:
        return one_of(setting.name, CHOICES[setting.name])
    return setting.parser()


def of_program(program):
    return [setting for setting in SETTINGS if program in setting.programs]


def default_of(setting, program=None, overlay=None):
    for layer in (overlay or {}, PROGRAM_DEFAULTS.get(program, {})):
        if setting.name in layer:
            return layer[setting.name]
    return setting.default


def model_options(args):
    """build_model's keyword arguments from a parsed namespace (or a dict of the same names): the table's model
    hyper-parameters, so the trainers pass them on without naming them."""
    get = args.get if isinstance(args, dict) else lambda name: getattr(args, name)
    return {s.name.lower(): get(s.name.lower()) for s in SETTINGS if s.model}


# --- parsers ------------------------------------------------------------------------------------------------------


class KitArgumentParser(argparse.ArgumentParser):
    """argparse that reports errors as one line naming the setting, instead of usage text plus a message."""

    def error(self, message):
        # argparse wraps our own messages as "argument --x: <message>"; ours already name the setting.
        prefix, sep, rest = message.partition(": ")
        if sep and prefix.startswith("argument ") and rest.split(" ")[0].isupper():
            message = rest
        fail(message)

    def parse_args(self, args=None, namespace=None):
        try:
            return super().parse_args(args, namespace)
        except SettingsError as err:  # raised by a type function applied to an environment default
            fail(str(err))


def _help_text(setting, program, default):
    source = f"env {setting.name}" if setting.env else "flag only"
    shown = f", default {default}" if default not in (None, "") else ""
    return f"{setting.help} ({source}{shown})".replace("%", "%%")


def add_settings(parser, program, overlay=None, environ=None):
    """Adds a flag for each setting `program` takes, its default from the environment, else the table."""
    environ = os.environ if environ is None else environ
    for setting in of_program(program):
        default = default_of(setting, program, overlay)
        if setting.env and environ.get(setting.name):
            default = environ[setting.name]
        help_text = _help_text(setting, program, default_of(setting, program, overlay))
        if setting.is_switch:
            parser.add_argument(setting.flag(program), action="store_true",
                                default=switch(setting.name)(default or "0"), help=help_text)
        else:
            parser.add_argument(setting.flag(program), type=parser_of(setting), default=default, help=help_text)
    return parser


def parser_for(program, description, overlay=None, **kwargs):
    return add_settings(KitArgumentParser(description=description, **kwargs), program, overlay)


def parse(program, description, argv=None, overlay=None, **kwargs):
    """The program's settings from argv and the environment, every cross-setting rule checked."""
    args = parser_for(program, description, overlay, **kwargs).parse_args(argv)
    refuse_conflicts(program, args)
    return args


# --- rules between settings ----------------------------------------------------------------------------------------


def _get(values, name, program=None):
    """A setting's value in a namespace (by flag dest) or a dict of names; the default when absent."""
    if isinstance(values, dict):
        value = values.get(name)
    else:
        setting = BY_NAME[name]
        value = getattr(values, setting.flag(program).lstrip("-").replace("-", "_"), None)
    if value is None and BY_NAME[name].default is not None:
        value = parser_of(BY_NAME[name])(default_of(BY_NAME[name], program))
    return value


def conflicts(program, values):
    """Rules between settings that would otherwise fail only after other runs had started. `values` is a parsed
    namespace of `program` or a dict NAME -> parsed value (the environment check)."""
    def get(name):
        return _get(values, name, program)

    errors = []
    if program == "ray":
        workers, batch = get("NUM_WORKERS"), get("BATCH_SIZE")
        if get("BATCH_SIZE_MODE") == "global" and batch % workers:
            errors.append(f"BATCH_SIZE must divide evenly among NUM_WORKERS={workers} workers with "
                          f"BATCH_SIZE_MODE=global, got {batch}")
        epochs, inject = get("EPOCHS"), get("INJECT_FAILURE_EPOCH") or 0
        if inject > epochs:
            errors.append(f"INJECT_FAILURE_EPOCH must be at most EPOCHS ({epochs}), got {inject}")
        if inject and get("MAX_FAILURES") < 1:
            errors.append("INJECT_FAILURE_EPOCH needs MAX_FAILURES of at least 1, or the injected failure ends "
                          "the run")
        train = get("TRAIN_SAMPLES")
        global_batch = batch if get("BATCH_SIZE_MODE") == "global" else batch * workers
        if train and train < global_batch:
            errors.append(f"TRAIN_SAMPLES must hold at least one global batch ({global_batch} images: BATCH_SIZE "
                          f"{batch}, {get('BATCH_SIZE_MODE')}, {workers} workers), got {train}")
    if program == "baseline" and get("TRAIN_SAMPLES") and get("TRAIN_SAMPLES") < get("BATCH_SIZE"):
        errors.append(f"TRAIN_SAMPLES must hold at least one batch ({get('BATCH_SIZE')} images), "
                      f"got {get('TRAIN_SAMPLES')}")
    if program == "patterns":
        if get("FAIL_AT_EPOCH") > get("EPOCHS"):
            errors.append(f"FAIL_AT_EPOCH must be at most EPOCHS ({get('EPOCHS')}), got {get('FAIL_AT_EPOCH')}")
        if get("BATCH_SIZE") > get("TRAIN_SAMPLES"):
            errors.append(f"BATCH_SIZE must be at most TRAIN_SAMPLES ({get('TRAIN_SAMPLES')}), "
                          f"got {get('BATCH_SIZE')}")
    if program == "cluster" and get("RUN_TIMEOUT_S") == 0:
        errors.append("RUN_TIMEOUT_S must be a positive integer on the cluster target, where it bounds every run "
                      "in a pod, got '0'")
    if program == "sweep" and get("STOP_AT_TARGET") and get("TARGET_ACCURACY") is None:
        errors.append("STOP_AT_TARGET needs TARGET_ACCURACY (--stop-at-target needs --target-accuracy)")
    return errors


def refuse_conflicts(program, args):
    errors = conflicts(program, args)
    if errors:
        fail(errors[0])


def validate_environment(programs=("local",), environ=None):
    """Checks every setting the programs take, as the environment sets it, and the rules between them, without
    starting anything. Returns the errors, first one first."""
    environ = os.environ if environ is None else environ
    if "cluster" in programs:  # whatever its value, the pods cannot take it
        refused = [s for s in SETTINGS if s.pod == "refuse" and environ.get(s.name)]
        if refused:
            return [pod_refusal(refused[0])]
    errors, values = [], {}
    names = dict.fromkeys(s.name for program in programs for s in of_program(program) if s.env)
    for name in names:
        text_value = environ.get(name, "")
        if text_value == "":
            continue
        try:
            values[name] = parser_of(BY_NAME[name])(text_value)
        except SettingsError as err:
            errors.append(str(err))
    if errors:
        return errors
    return [error for program in programs for error in conflicts(program, values)]


def pod_refusal(setting):
    return (f"{setting.name} is a folder on this machine, which the pods cannot read; they use the CIFAR-10 copy "
            f"baked into the image (allowed: unset, on the cluster target)")


def quick_assignments(environ=None):
    """NAME=value lines for the QUICK settings the environment leaves unset, for bash to export."""
    environ = os.environ if environ is None else environ
    return [f"{name}={value}" for name, value in QUICK.items() if not environ.get(name)]


def default_assignments(names, program=None, environ=None, quick=False):
    """NAME=value for the settings bash reads itself (`names`) that the environment leaves unset: the quick
    recipe's first (with --quick), then the table's defaults for `program`."""
    environ = dict(os.environ if environ is None else environ)
    lines = quick_assignments(environ) if quick else []
    environ.update(line.split("=", 1) for line in lines)
    for name in names:
        if name not in BY_NAME:
            raise SettingsError(f"no setting {name} in the table")
        default = default_of(BY_NAME[name], program)
        if default is not None and not environ.get(name):
            lines.append(f"{name}={default}")
    return lines


# --- the trainers' command lines ---------------------------------------------------------------------------------


def trainer_argv(program, target="local", values=None, environ=None):
    """The argv of one training run, without the interpreter: `-m` and the trainer's module, then a flag for every setting of the
    program that `values` (NAME -> value, first) or the environment sets. The pods see no environment of this
    machine, so everything reaches them as a flag; a setting they cannot take is refused here, in one line."""
    if program not in TRAINERS:
        raise SettingsError(f"--program must be one of {', '.join(TRAINERS)}, got '{program}'")
    if target not in TARGETS:
        raise SettingsError(f"--target must be one of {', '.join(TARGETS)}, got '{target}'")
    environ = os.environ if environ is None else environ
    values = {name: str(value) for name, value in (values or {}).items()}
    foreign = sorted(set(values) - {setting.name for setting in of_program(program)})
    if foreign:
        raise SettingsError(f"{foreign[0]} is not a setting of {PROGRAMS[program]}")
    argv = PROGRAMS[program].split()[1:]
    for setting in of_program(program):
        given = setting.name in values
        value = values[setting.name] if given else (environ.get(setting.name, "") if setting.env else "")
        if value == "":
            continue
        if target == "pod" and not given and setting.pod == "refuse":
            raise SettingsError(pod_refusal(setting))
        if target == "pod" and not given and setting.pod == "local":
            continue
        parsed = parser_of(setting)(value)
        if setting.is_switch:
            argv += [setting.flag(program)] if parsed else []
        else:
            argv += [setting.flag(program), value]
    return argv


def pod_ray_values(environ=None, run_id=None):
    """What the head pod's Ray run gets besides the environment's settings: the defaults of the pods."""
    environ = os.environ if environ is None else environ
    workers = environ.get("NUM_WORKERS") or BY_NAME["NUM_WORKERS"].pod_default
    values = {
        "RAY_ADDRESS": BY_NAME["RAY_ADDRESS"].pod_default,
        "NUM_WORKERS": workers,
        "CPUS_PER_WORKER": environ.get("CPUS_PER_WORKER") or BY_NAME["CPUS_PER_WORKER"].pod_default,
        "STORAGE_PATH": environ.get("CHECKPOINT_STORAGE_URI") or BY_NAME["CHECKPOINT_STORAGE_URI"].default,
        "OUTPUT": f"{POD_KIT_DIR}/ray_results_{workers}workers.json",
    }
    if run_id:
        values["RUN_ID"] = run_id
    return values


RAYJOB_HEADER = """\
# Generated by `python3 -m training.core.settings rayjob` from the settings table (training/core/settings.py); a test
# checks that it is current. Other sizes: NUM_WORKERS=1 CPUS_PER_WORKER=1 python3 -m training.core.settings rayjob
#
# The Ray training as a RayJob against the RayCluster that scripts/install-ray.sh made (it creates no cluster of
# its own and never deletes that one):
#   kubectl -n ray apply -f k8s/ray-job.yaml
#   kubectl -n ray get rayjob raybench-training -w          # JOB STATUS ends SUCCEEDED
#   kubectl -n ray cp raybench-head-xxxxx:/tmp/kit/ray_results_{workers}workers.json results/ray_results_{workers}workers.json
#   kubectl -n ray delete rayjob raybench-training          # before applying it again
# The command is the one scripts/run-benchmark.sh runs in the head pod: {workers} workers x {cpus} CPUs (a worker
# pod's CPUs), checkpoints in the cluster's S3 store.
"""


def _folded(words, indent="    ", width=112):
    """Shell words as the lines of a YAML folded block (>-), which joins them back with single spaces."""
    lines, line = [], ""
    for word in words:
        if line and len(indent) + len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join(indent + item for item in lines + [line])


def rayjob_manifest(environ=None):
    """k8s/ray-job.yaml, its entrypoint from the same builder as the head pod's command."""
    import shlex

    environ = os.environ if environ is None else environ
    values = pod_ray_values(environ)
    argv = ["python"] + trainer_argv("ray", "pod", values, environ={})
    words = ["cd", "/home/ray", "&&", "mkdir", "-p", POD_KIT_DIR, "&&"] + [shlex.quote(word) for word in argv]
    header = RAYJOB_HEADER.format(workers=values["NUM_WORKERS"], cpus=values["CPUS_PER_WORKER"])
    return header + f"""apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: raybench-training
  labels:
    app.kubernetes.io/name: raybench
spec:
  clusterSelector:
    ray.io/cluster: raybench
  # The operator posts the job to the dashboard itself: no submitter pod, which a 2-node laptop cluster whose
  # CPUs the workers already hold might not be able to schedule.
  submissionMode: HTTPMode
  entrypoint: >-
{_folded(words)}
  # Stop a run that hangs (for example after losing a worker for good) instead of holding the cluster forever.
  activeDeadlineSeconds: 7200
"""


# --- the docs' table ---------------------------------------------------------------------------------------------


# Where a default differs by program or mode, the docs say so next to the table's default.
_DEFAULT_NOTES = (("--quick", QUICK), ("tasks demo", PROGRAM_DEFAULTS["patterns"]),
                  ("benchmark --quick", PROGRAM_DEFAULTS["benchmark --quick"]),
                  ("cluster target", PROGRAM_DEFAULTS["cluster"]), ("sweep", PROGRAM_DEFAULTS["sweep"]))


def _default_cell(setting):
    cell = f"`{setting.default}`" if setting.default not in (None, "") else "unset"
    notes = [f"{label}: `{layer[setting.name]}`" for label, layer in _DEFAULT_NOTES
             if layer.get(setting.name) not in (None, setting.default)]
    return cell + (f" ({'; '.join(notes)})" if notes else "")


def markdown_table():
    """docs/QUICK_REFERENCE.md's settings table (scripts/lib/settings_docs.py writes it there)."""
    rows = ["| Setting | Allowed | Default | Taken by | What it does; why the default |", "|---|---|---|---|---|"]
    for setting in SETTINGS:
        if not setting.env:
            continue
        why = f" *Default: {setting.why}.*" if setting.why else ""
        rows.append(f"| `{setting.name}` | {allowed(setting)} | {_default_cell(setting)} | "
                    f"{', '.join(setting.programs)} | {setting.help}.{why} |")
    return "\n".join(rows) + "\n"


DOCS_FILE = "docs/QUICK_REFERENCE.md"
DOCS_BLOCK = ("<!-- settings-table:begin (generated: python3 -m training.core.settings docs) -->",
              "<!-- settings-table:end -->")


def docs_block():
    legend = "Taken by: " + "; ".join(f"{name} = `{where}`" for name, where in PROGRAMS.items()) + ".\n\n"
    return f"{DOCS_BLOCK[0]}\n{legend}{markdown_table()}{DOCS_BLOCK[1]}"


def with_docs_block(text):
    """`text` (QUICK_REFERENCE.md) with its settings block replaced by the table's current one."""
    start, end = text.index(DOCS_BLOCK[0]), text.index(DOCS_BLOCK[1]) + len(DOCS_BLOCK[1])
    return text[:start] + docs_block() + text[end:]


def write_docs(repo_root):
    from training.core import atomic_files

    path = os.path.join(repo_root, DOCS_FILE)
    with open(path, encoding="utf-8") as handle:
        atomic_files.write_text(path, with_docs_block(handle.read()))
    return path


def listing(programs):
    """The settings of `programs`, one per line as NAME=default, for a script's --help."""
    import textwrap

    lines = []
    for setting in (s for s in SETTINGS if s.env and any(p in s.programs for p in programs)):
        lines.append(f"  {setting.name}={setting.default or ''}")
        lines += textwrap.wrap(f"{setting.help} (allowed: {allowed(setting)})", 110, initial_indent=" " * 6,
                               subsequent_indent=" " * 6)
    return "\n".join(lines) + "\n"


# --- the command line --------------------------------------------------------------------------------------------


def _programs(text_value):
    names = [name for name in text_value.split(",") if name]
    unknown = [name for name in names if name not in PROGRAMS]
    if unknown or not names:
        fail(f"--programs must list some of {', '.join(PROGRAMS)}, got '{text_value}'")
    return names


def main(argv):
    parser = KitArgumentParser(prog="settings.py", description="The kit's settings table, from bash.")
    parser.add_argument("command", choices=("check", "defaults", "argv", "rayjob", "table",
                                                        "list", "docs"))
    parser.add_argument("--programs", default="local")
    parser.add_argument("--program", default="ray")
    parser.add_argument("--target", default="local")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--head-run", action="store_true",
                        help="argv: the head pod's Ray run, with the pods' defaults (pod_ray_values) under VALUES")
    parser.add_argument("values", nargs="*", help="argv: NAME=VALUE settings; defaults: NAME of settings")
    args = parser.parse_intermixed_args(argv[1:])
    if args.command == "check":
        errors = validate_environment(_programs(args.programs))
        if errors:
            fail(errors[0])
    elif args.command == "defaults":
        try:
            lines = default_assignments(args.values, _programs(args.programs)[0], quick=args.quick)
        except SettingsError as err:
            fail(str(err))
        print("\n".join(lines))
    elif args.command == "argv":
        values = dict(value.split("=", 1) for value in args.values if "=" in value)
        if args.head_run:
            values = {**pod_ray_values(), **values}
        try:
            words = trainer_argv(args.program, args.target, values)
        except SettingsError as err:
            fail(str(err))
        sys.stdout.write("".join(f"{word}\0" for word in words))
    elif args.command == "docs":
        repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        print(f"Wrote the settings table into {write_docs(repo_root)}")
    elif args.command == "list":
        sys.stdout.write(listing(_programs(args.programs)))
    elif args.command == "rayjob":
        sys.stdout.write(rayjob_manifest())
    else:
        sys.stdout.write(markdown_table())


if __name__ == "__main__":
    main(sys.argv)
