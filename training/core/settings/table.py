"""The table of every setting: its name, type (with its choices), default and the reason for it, which programs
take it, and how it travels (environment, flag, pod, results, a sweep's run id). Everything else in this package,
and every program, reads a setting's facts from its row."""

from dataclasses import dataclass, field

from training.core.settings.kinds import (accuracy, checkpoint_policy, choice, data_dir, fraction, non_negative_float,
                                          non_negative_int, policy_list, positive_float, positive_int, seconds_list,
                                          share_below_one, switch, text)

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
    # A hyper-parameter of model.build_model, which both trainers pass it as its lower-case name: exposing one
    # is a row here, a parameter there, and a test.
    model: bool = False
    # Written into a trainer's results `config` under its lower-case name (resolved.py); off for paths and
    # switches that say where or how, not what, a run computes.
    recorded: bool = True
    # The baseline and a Ray run must agree on it for the comparison to mean anything (compare.py warns).
    must_match: bool = False

    def flag(self, program):
        return self.flags.get(program, "--" + self.name.lower().replace("_", "-"))

    def dest(self, program):
        """The attribute argparse gives the flag's value (the namespace a program's parser returns)."""
        return self.flag(program).lstrip("-").replace("-", "_")

    def parser(self):
        return self.kind(self.name)

    @property
    def is_switch(self):
        return self.kind is switch


TRAINING = ("baseline", "ray")
CHECKPOINTING = ("ray", "patterns", "simulate")
SETTINGS = (
    Setting("EPOCHS", positive_int, "epochs to train", TRAINING + ("patterns", "local", "cluster"), "10",
            "enough for the CNN to pass 70% on CIFAR-10, short enough for a laptop", must_match=True),
    Setting("BATCH_SIZE", positive_int, "images per step: in a Ray run PER WORKER by default, so the global "
            "batch is NUM_WORKERS times larger (see BATCH_SIZE_MODE); the baseline's whole batch",
            TRAINING + ("patterns", "benchmark", "local", "cluster"), "64",
            "large enough to keep a core busy, small enough for 4 GiB pods"),
    Setting("LEARNING_RATE", positive_float, "Adam's learning rate of a single worker (Ray scales it: LR_SCALING)",
            TRAINING + ("patterns",), "0.001", "Adam's usual rate for one worker", hashed=True),
    Setting("SEED", non_negative_int, "seed of data order, splits, weights and every random draw",
            TRAINING + ("patterns", "simulate"), "42", "any fixed seed makes runs repeatable", hashed=True,
            must_match=True),
    Setting("DATASET", choice(DATASETS),
            "cifar10 (real data; downloads once), synthetic (random images: throughput only, "
            "accuracy means nothing), digits (scikit-learn's bundled 8x8 digits upscaled to 32x32: real, offline)",
            TRAINING + ("patterns", "local", "cluster"), "cifar10", "the benchmark the kit is named for", hashed=True,
            must_match=True),
    Setting("DATA_DIR", data_dir, "a cifar-10-batches-py folder (or its parent) to read CIFAR-10 from instead of "
            "Keras' download", TRAINING + ("patterns",), hashed=True, pod="refuse", recorded=False),
    Setting("TRAIN_SAMPLES", positive_int, "train on this many images only (default: all)",
            TRAINING + ("patterns",), hashed=True),
    Setting("TEST_SAMPLES", positive_int, "evaluate on this many test images only (default: all)",
            TRAINING + ("patterns",), hashed=True),
    Setting("VAL_FRACTION", fraction, "share of the training images held out for validation", TRAINING, "0.1",
            "a tenth: enough images to see overfitting, few taken from training", hashed=True, must_match=True),
    Setting("BN_MOMENTUM", fraction, "batch normalization's momentum: how fast the moving statistics that "
            "validation and test use follow the weights", TRAINING, "0.9", "Keras' 0.99 needs hundreds of steps "
            "to catch up, and quick runs take tens (model.py)", hashed=True, model=True, must_match=True),
    Setting("EARLY_STOPPING_PATIENCE", non_negative_int, "stop after this many epochs without a better val_loss; "
            "0 turns it off", TRAINING, "0", "off: a benchmark compares equal numbers of epochs", hashed=True),
    Setting("RUN_ID", text, "identifier stored in the results (default: type and time)", TRAINING, recorded=False),
    Setting("PROGRESS_INTERVAL", non_negative_float, "seconds between the in-epoch progress lines (step, images/s, "
            "time left; on Ray rank 0's, for the group); 0 turns them off. scripts/run-benchmark.sh on a terminal "
            "makes it 1 where unset and redraws the line in place", TRAINING + ("local", "cluster"), "10",
            "a pipe, a log file or `kubectl exec` gets a line often enough to tell a slow run from a hung one, "
            "and few enough to read", recorded=False),
    Setting("THREADS", positive_int, "TensorFlow's thread pools in the baseline: the CPUs it may use (default: "
            "all CPUs available to the process)", ("baseline",), recorded=False),
    Setting("NUM_WORKERS", positive_int, "Ray Train workers", ("ray", "benchmark", "local", "cluster", "compare"),
            "2", "the Kubernetes cluster has two worker pods"),
    Setting("CPUS_PER_WORKER", positive_int, "CPUs Ray reserves for each worker (or the tasks demo's actor); "
            "TensorFlow's thread pools use exactly this many (cluster target: default a worker pod's CPUs)",
            ("ray", "patterns", "local", "cluster"), "1", "a 2-core laptop gives one core to each of two workers",
            flags={"patterns": "--cpus"}),
    Setting("RAY_ADDRESS", text, "Ray cluster to join: 'auto' inside one (the head pod), host:port of a head, or "
            "empty for a private single-node Ray with token auth", ("ray", "patterns"), pod="local", recorded=False),
    Setting("USE_GPU", switch, "give each Ray worker one GPU (the cluster target needs nvidia.com/gpu pods)",
            ("ray", "cluster"), "0", "the kit's image and pods are CPU-only"),
    Setting("BATCH_SIZE_MODE", choice(BATCH_SIZE_MODES),
            "per-worker: each Ray worker takes BATCH_SIZE images per step (weak "
            "scaling); global: the workers split BATCH_SIZE (strong scaling; must divide evenly)",
            ("ray", "local", "cluster"), "per-worker", "weak scaling keeps each worker's step as large as the "
            "baseline's"),  # not hashed: a sweep's SCALING sets it for every run, and SCALING is in the hash
    Setting("LR_SCALING", choice(LR_SCALINGS),
            "how Ray's learning rate follows the global batch: LEARNING_RATE x sqrt(k), "
            "x k, or unchanged, where k = global batch / BATCH_SIZE", ("ray",), "sqrt",
            "the square-root rule is the safe middle for Adam", hashed=True),
    Setting("STORAGE_PATH", text, "folder (or URI) every Ray node sees, for checkpoints (default: "
            "RESULTS_DIR/checkpoints)", ("ray",), pod="local", recorded=False),
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
    Setting("INJECT_FAILURE_EPOCH", non_negative_int, "demo: a process dies in the middle of this epoch, once per "
            "run (0: off): in a Ray run the last worker's process exits, in the tasks demo the actor (FAILURE_MODE)",
            ("ray", "patterns"), "0", "off; the tasks demo's is 3, late enough to have a checkpoint to go back to"),
    Setting("COLLECTIVE", choice(COLLECTIVES),
            "MultiWorkerMirroredStrategy's all-reduce implementation", ("ray",), "AUTO",
            "TensorFlow picks the one that fits the devices", hashed=True),
    Setting("ALLREDUCE_DTYPE", choice(ALLREDUCE_DTYPES),
            "what gradients cross workers in: float32 (exact), bfloat16 (half the bytes, "
            "float32's range) or float16; weights and updates stay float32", ("ray",), "float32",
            "exact gradients", hashed=True),
    Setting("RESUME", switch, "continue the run RUN_ID from its latest checkpoint in STORAGE_PATH; starts fresh "
            "when there is none (without it, a RUN_ID that has checkpoints is refused)", ("ray",), env=False,
            recorded=False),
    Setting("RECORD_SHARDS", switch, "store every Ray worker's training-image indices in the results (to check "
            "that shards are disjoint)", ("ray",), env=False, recorded=False),
    Setting("OUTPUT", text, "results JSON to write; never written unless the run succeeds (default: "
            "RESULTS_DIR/<type>_results.json)", TRAINING + ("patterns",), env=False, recorded=False),
    Setting("RESULTS_DIR", text, "where results go", TRAINING + ("simulate", "sweep", "compare", "local", "cluster"),
            "results", "the folder the README points at", flags={"simulate": "--output-dir"}, pod="local",
            recorded=False),
    # The Ray tasks-and-actors demo.
    Setting("FAILURE_MODE", choice(FAILURE_MODES),
            "tasks demo: exit (the actor's process calls os._exit) or kill (the driver "
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
    Setting("TARGET_ACCURACY", accuracy,
            "sweep: report each run's time to this validation accuracy, such as 0.7", ("sweep",)),
    Setting("STOP_AT_TARGET", switch, "sweep: end once a run reaches TARGET_ACCURACY", ("sweep",), "0", "off"),
    Setting("SCALING", choice(SCALINGS),
            "sweep: weak (BATCH_SIZE per worker) or strong (BATCH_SIZE is the global batch "
            "the workers split)", ("sweep",), "weak", "each worker's step stays the baseline's", hashed=False),
    Setting("SWEEP_TARGET", choice(SWEEP_TARGETS),
            "sweep: local (runs start on this machine) or k8s (inside the RayCluster's "
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
    Setting("BENCH_ALLREDUCE_DTYPE", choice(ALLREDUCE_DTYPES), "benchmark: what its Ray runs all-reduce gradients in",
            ("benchmark",), "float32", "exact gradients"),
    # The local Ray cluster and the Kubernetes target of scripts/run-benchmark.sh.
    Setting("LOCAL_RAY_PORT", positive_int, "--local: port of the local Ray head (its workers take ports above "
            "it)", ("local", "benchmark"), "6390", "clear of Ray's own 6379, so a Ray you run yourself is left "
            "alone"),
    Setting("KIT_PYTHON", text, "the Python 3.11 that makes .venv", ("local", "cluster", "benchmark"), "python3",
            "the system's Python"),
    Setting("LOCAL_RAY_PIN_CPUS", choice(("0", "1")),
            "--local, an experiment: 1 holds each worker's TensorFlow op threads "
            "to a CPU of its own", ("local", "benchmark"), "0", "the kernel's scheduling is the honest default"),
    Setting("SUBMIT", choice(SUBMIT_MODES),
            "cluster target: exec (kubectl exec in the head pod) or jobs (ray job submit over "
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
# The allowed values of the settings with choices.
CHOICES = {setting.name: setting.kind.choices for setting in SETTINGS if hasattr(setting.kind, "choices")}
DEFAULTS = {setting.name: setting.default for setting in SETTINGS if setting.default is not None}
# Settings that change what a sweep's run computes: changing one makes another experiment.
HASHED_SETTINGS = tuple(setting.name for setting in SETTINGS if setting.hashed)
# The results `config` keys both sides of a comparison must share (besides the batch, which compare.py picks by
# BATCH_SIZE_MODE).
MUST_MATCH = tuple(setting.name.lower() for setting in SETTINGS if setting.must_match)


def of_program(program):
    return [setting for setting in SETTINGS if program in setting.programs]


def allowed(setting):
    """What a setting may be, in words, for errors and the docs table."""
    return getattr(setting.parser(), "allowed", "text")


def model_options(args):
    """build_model's keyword arguments from a parsed namespace (or a dict of the same names): the table's model
    hyper-parameters, so the trainers pass them on without naming them."""
    get = args.get if isinstance(args, dict) else lambda name: getattr(args, name)
    return {s.name.lower(): get(s.name.lower()) for s in SETTINGS if s.model}
