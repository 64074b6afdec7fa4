"""Ray Train: the kit's CNN trained by N workers with TensorflowTrainer + MultiWorkerMirroredStrategy.

    python training/ray_training.py --num-workers 2 --ray-address auto        # in a Ray cluster (the head pod)
    DATASET=digits EPOCHS=3 python training/ray_training.py                   # starts a private local Ray

Each worker trains on its own 1/N shard of the training set with `--batch-size` images per step (per worker by
default), the gradients are averaged by an all-reduce every step, and the driver prints one line per epoch.
Writes RESULTS_DIR/ray_results_{N}workers.json (same schema as the baseline) only when the run succeeds.
"""

import os
import re
import sys
import threading
import time

import settings
import storage
from settings import env, fail, non_negative_int, one_of, positive_float, positive_int

TRAINING_TYPE = "ray_distributed"
COLLECTIVES = ("AUTO", "RING", "NCCL")
EXIT_INFRA = 4
# Where Ray Train 2.60 keeps a run's checkpoint index inside RunConfig storage (ray.train.v2 constants).
RAY_SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"
STOP_MARKER = "_progress_stop"


def parse_args(argv=None):
    parser = settings.KitArgumentParser(
        description="Train the CIFAR-10 CNN with Ray Train (TensorflowTrainer + MultiWorkerMirroredStrategy).")
    settings.add_training_args(parser)
    parser.add_argument("--num-workers", type=positive_int("NUM_WORKERS"), default=env("NUM_WORKERS"),
                        help="Ray Train workers (env NUM_WORKERS, default %(default)s)")
    parser.add_argument("--cpus-per-worker", type=positive_int("CPUS_PER_WORKER"), default=env("CPUS_PER_WORKER"),
                        help="CPUs Ray reserves for each worker; TensorFlow's thread pools use exactly this many "
                             "(env CPUS_PER_WORKER, default %(default)s)")
    parser.add_argument("--ray-address", default=env("RAY_ADDRESS", ""),
                        help="Ray cluster to join: 'auto' inside a cluster (the head pod), host:port of a head, or "
                             "empty to start a private single-node Ray for this run (env RAY_ADDRESS)")
    parser.add_argument("--use-gpu", action="store_true", default=env("USE_GPU", "0") in ("1", "true", "yes"),
                        help="give each worker one GPU (env USE_GPU=1)")
    parser.add_argument("--batch-size", type=positive_int("BATCH_SIZE"), default=env("BATCH_SIZE"),
                        help="images per step; PER WORKER by default, so the global batch is NUM_WORKERS times "
                             "larger (see --batch-size-mode) (env BATCH_SIZE, default %(default)s)")
    parser.add_argument("--batch-size-mode", type=one_of("BATCH_SIZE_MODE", settings.BATCH_SIZE_MODES),
                        default=env("BATCH_SIZE_MODE", "per-worker"),
                        help="per-worker: each worker takes BATCH_SIZE images per step (weak scaling, the "
                             "default); global: the workers split BATCH_SIZE between them (strong scaling; must "
                             "divide evenly) (env BATCH_SIZE_MODE)")
    parser.add_argument("--lr-scaling", type=one_of("LR_SCALING", settings.LR_SCALINGS),
                        default=env("LR_SCALING", "sqrt"),
                        help="how the learning rate follows the global batch: LEARNING_RATE x sqrt(k) (default), "
                             "x k, or unchanged, where k = global batch / BATCH_SIZE (k = NUM_WORKERS with "
                             "per-worker batches, 1 with a global batch) (env LR_SCALING)")
    parser.add_argument("--storage-path", default=env("STORAGE_PATH", ""),
                        help="folder every Ray node sees, for checkpoints (env STORAGE_PATH, default "
                             "RESULTS_DIR/checkpoints)")
    parser.add_argument("--checkpoint-policy", default=env("CHECKPOINT_POLICY", "adaptive"),
                        help="when rank 0 saves a checkpoint: every, never, interval:K or adaptive "
                             "(env CHECKPOINT_POLICY, default %(default)s; the final epoch is always saved "
                             "except with never)")
    parser.add_argument("--checkpoint-budget", type=settings.fraction("CHECKPOINT_BUDGET"),
                        default=env("CHECKPOINT_BUDGET", "0.05"),
                        help="adaptive policy: largest share of training time spent saving checkpoints "
                             "(env CHECKPOINT_BUDGET, default %(default)s)")
    parser.add_argument("--mtbf-seconds", type=positive_float("MTBF_SECONDS"), default=env("MTBF_SECONDS", "3600"),
                        help="adaptive policy: the mean time between failures it assumes until it has seen some "
                             "(env MTBF_SECONDS, default %(default)s)")
    parser.add_argument("--max-failures", type=non_negative_int("MAX_FAILURES"), default=env("MAX_FAILURES", "1"),
                        help="worker-group restarts allowed; each resumes from the latest checkpoint "
                             "(env MAX_FAILURES, default %(default)s)")
    parser.add_argument("--inject-failure-epoch", type=non_negative_int("INJECT_FAILURE_EPOCH"),
                        default=env("INJECT_FAILURE_EPOCH", "0"),
                        help="demo: the last worker's process exits in the middle of this epoch, once per run "
                             "(env INJECT_FAILURE_EPOCH, default 0 = off)")
    parser.add_argument("--collective", type=one_of("COLLECTIVE", COLLECTIVES), default=env("COLLECTIVE", "AUTO"),
                        help="MultiWorkerMirroredStrategy's all-reduce implementation (env COLLECTIVE, "
                             "default %(default)s)")
    parser.add_argument("--allreduce-dtype", type=one_of("ALLREDUCE_DTYPE", settings.ALLREDUCE_DTYPES),
                        default=env("ALLREDUCE_DTYPE", "float32"),
                        help="what gradients cross workers in: float32 (exact, the default), bfloat16 (half the "
                             "bytes, float32's range) or float16; weights and updates stay float32 "
                             "(env ALLREDUCE_DTYPE)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run RUN_ID from its latest checkpoint in STORAGE_PATH (Ray Train finds "
                             "it there); starts fresh when there is none. Without it, a RUN_ID that already has "
                             "checkpoints is refused rather than silently continued")
    parser.add_argument("--record-shards", action="store_true",
                        help="store every worker's training-image indices in the results (to check that shards "
                             "are disjoint)")
    args = parser.parse_args(argv)
    try:
        import checkpoint_policy

        args.policy = checkpoint_policy.parse_policy(args.checkpoint_policy)
    except (ValueError, settings.SettingsError) as err:
        fail(str(err))
    if args.inject_failure_epoch > args.epochs:
        fail(f"INJECT_FAILURE_EPOCH must be at most EPOCHS ({args.epochs}), got {args.inject_failure_epoch}")
    if args.inject_failure_epoch and args.max_failures < 1:
        fail("INJECT_FAILURE_EPOCH needs MAX_FAILURES of at least 1, or the injected failure ends the run")
    if args.batch_size_mode == "global":
        if args.batch_size % args.num_workers:
            fail(f"BATCH_SIZE must divide evenly among {args.num_workers} workers with BATCH_SIZE_MODE=global, "
                 f"got {args.batch_size}")
        args.per_worker_batch = args.batch_size // args.num_workers
    else:
        args.per_worker_batch = args.batch_size
    args.global_batch = args.per_worker_batch * args.num_workers
    k = args.global_batch / args.batch_size
    args.lr_factor = {"sqrt": k ** 0.5, "linear": k, "none": 1.0}[args.lr_scaling]
    if args.output is None:
        args.output = os.path.join(env("RESULTS_DIR"), f"ray_results_{args.num_workers}workers.json")
    if not args.storage_path:
        args.storage_path = os.path.join(env("RESULTS_DIR"), "checkpoints")
    if "://" not in args.storage_path:
        args.storage_path = os.path.abspath(args.storage_path)
    return args


def check_data(args):
    """Loads the data once on the driver, so a bad DATA_DIR or TRAIN_SAMPLES fails here in seconds instead of
    inside every worker after Ray has started them."""
    import data

    try:
        ds = data.load_dataset(args.dataset, args.data_dir, args.train_samples, args.test_samples,
                               args.val_fraction, args.seed)
        data.shard_indices(len(ds.y_train), 0, args.num_workers, args.per_worker_batch)
    except data.DataError as err:
        fail(str(err))
    return ds.sizes()


def start_ray(args):
    """Joins the given cluster, or starts a private one with token auth, carrying tf-keras to every worker."""
    if not args.ray_address:
        import local_ray_auth

        # Before Ray is imported: it reads its auth mode once, at import.
        local_ray_auth.enable_token_auth()
    import ray

    from tf_env import WORKER_ENV

    runtime_env = {
        "working_dir": os.path.dirname(os.path.abspath(__file__)),
        "env_vars": dict(WORKER_ENV),
    }
    if args.ray_address:
        ray.init(address=args.ray_address, runtime_env=runtime_env, logging_level="WARNING",
                 log_to_driver=False)
    else:
        ray.init(num_cpus=args.num_workers * args.cpus_per_worker, include_dashboard=False,
                 runtime_env=runtime_env, logging_level="WARNING", log_to_driver=False)
    return ray


def cluster_shape(ray):
    """Nodes and CPUs as Ray sees them; workers can only go where a node has a whole worker's share."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    per_node = [int(n["Resources"].get("CPU", 0)) for n in nodes]
    return {
        "nodes": len(nodes),
        "cpus": sum(per_node),
        "cpus_per_node": per_node,
        "gpus": int(sum(n["Resources"].get("GPU", 0) for n in nodes)),
    }


def check_capacity(args, shape):
    fits = sum(cpus // args.cpus_per_worker for cpus in shape["cpus_per_node"])
    if fits < args.num_workers:
        fail(f"NUM_WORKERS={args.num_workers} with CPUS_PER_WORKER={args.cpus_per_worker} needs "
             f"{args.num_workers * args.cpus_per_worker} CPUs in whole-worker shares; the Ray cluster has "
             f"{shape['cpus']} CPUs on {shape['nodes']} node(s) ({'+'.join(map(str, shape['cpus_per_node']))}), "
             f"room for {fits} worker(s)")
    if args.use_gpu and shape["gpus"] < args.num_workers:
        fail(f"USE_GPU needs {args.num_workers} GPUs, one per worker; the Ray cluster has {shape['gpus']}")


class Progress:
    """Drains the workers' queue on a thread while trainer.fit() blocks, printing one line per epoch."""

    def __init__(self, queue, args):
        self.queue, self.args = queue, args
        self.messages = []
        self.label = f"ray {args.num_workers}w"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        from ray.util.queue import Empty

        # A long wait per call: each get() is a call to the queue actor, and on a small machine a tight poll
        # takes CPU from the workers. finish() wakes it with a marker.
        while not self._stop.is_set():
            try:
                message = self.queue.get(block=True, timeout=30)
            except Empty:
                continue
            if message.get("type") == STOP_MARKER:
                break
            self.handle(message)

    def finish(self):
        """Stops the thread and takes whatever is still queued (every put() completed before its worker ended)."""
        self._stop.set()
        self.queue.put({"type": STOP_MARKER})
        self._thread.join()
        while not self.queue.empty():
            message = self.queue.get_nowait()
            if message.get("type") != STOP_MARKER:
                self.handle(message)

    def handle(self, message):
        from fitting import format_progress

        self.messages.append(message)
        kind = message["type"]
        if kind == "epoch":
            elapsed = sum(m["seconds"] for m in self.messages if m["type"] == "epoch")
            line = format_progress(self.label, message, self.args.epochs, elapsed)
            if message.get("checkpointed"):
                line += f"  checkpoint {message['checkpoint_seconds']:.2f}s"
            print(line, flush=True)
        elif kind == "worker" and message["rank"] == 0 and message["resumed_from_epoch"]:
            print(f"[{self.label}] worker group restarted: resuming after epoch {message['resumed_from_epoch']} "
                  f"from {message['restored_from']}", flush=True)
        elif kind == "worker" and message.get("skipped_checkpoints") and message["rank"] == 0:
            for reason in message["skipped_checkpoints"]:
                print(f"[{self.label}] WARNING: skipped a damaged checkpoint: {reason}", flush=True)
        elif kind == "failure_injected":
            print(f"[{self.label}] injected failure: rank {message['rank']} exits in epoch {message['epoch']} "
                  f"(step {message['step']})", flush=True)


def error_summary(err):
    """Ray wraps a worker's exception in its traceback text; the last 'SomeError: message' line is the cause."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", line)]
    return causes[-1] if causes else (lines[0] if lines else type(err).__name__)


def worker_config(args, sizes, queue, storage_dir):
    return {
        "queue": queue,
        "epochs": args.epochs,
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "train_samples": args.train_samples,
        "test_samples": args.test_samples,
        "val_fraction": args.val_fraction,
        "seed": args.seed,
        "per_worker_batch_size": args.per_worker_batch,
        "learning_rate": args.learning_rate * args.lr_factor,
        "cpus_per_worker": args.cpus_per_worker,
        "early_stopping_patience": args.early_stopping_patience,
        "collective": args.collective,
        "allreduce_dtype": args.allreduce_dtype,
        "checkpoint_policy": args.checkpoint_policy,
        "controller_args": {"mtbf_seconds": args.mtbf_seconds, "budget_fraction": args.checkpoint_budget},
        "storage_dir": storage_dir,
        "inject_failure_epoch": args.inject_failure_epoch,
        "record_shards": args.record_shards,
        # Progress written before this moment is an earlier process's (a --resume), not this run's restart.
        "run_started": time.time(),
    }


def main(argv=None):
    started = time.time()
    from tf_env import LEGACY_KERAS_ENV

    # ray.train.tensorflow imports TensorFlow in this process too: Keras 2 here as well, and quiet.
    os.environ.update(LEGACY_KERAS_ENV)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    sizes = check_data(args)
    from run_report import assemble_result

    import_done = time.time()
    ray = start_ray(args)
    ray_ready = time.time()
    shape = cluster_shape(ray)
    check_capacity(args, shape)

    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer
    from ray.util.queue import Queue

    import ray_worker
    from results import default_run_id, write_results

    run_id = args.run_id or default_run_id(TRAINING_TYPE)
    storage_dir = storage.join(args.storage_path, run_id)
    # Ray Train restores a run by name from its storage on its own; the kit makes that an explicit choice.
    earlier = storage.exists(storage.join(storage_dir, RAY_SNAPSHOT_FILE))
    if earlier and not args.resume:
        fail(f"RUN_ID '{run_id}' already has checkpoints in {storage_dir}; pass --resume to continue from them, "
             f"or choose another RUN_ID")
    if args.resume and not earlier:
        print(f"[ray {args.num_workers}w] --resume: no checkpoint of {run_id} yet, starting from epoch 1", flush=True)
    try:
        storage.make_dirs(storage_dir)
    except OSError as err:
        fail(f"STORAGE_PATH '{args.storage_path}' is not writable ({err})", code=EXIT_INFRA)
    queue = Queue(actor_options={"num_cpus": 0})
    print(f"[ray {args.num_workers}w] {args.dataset}: {sizes['train']} train / {sizes['val']} val / "
          f"{sizes['test']} test images; {args.num_workers} worker(s) x {args.cpus_per_worker} CPU, batch "
          f"{args.per_worker_batch} per worker ({args.global_batch} global), learning rate "
          f"{args.learning_rate * args.lr_factor:.5g} ({args.lr_scaling} scaling: x{args.lr_factor:.3g}); "
          f"cluster {shape['nodes']} "
          f"node(s), {shape['cpus']} CPUs; checkpoints {args.checkpoint_policy} in {storage_dir}", flush=True)

    resources = {"CPU": args.cpus_per_worker}
    if args.use_gpu:
        resources["GPU"] = 1
    trainer = TensorflowTrainer(
        ray_worker.train_loop_per_worker,
        train_loop_config=worker_config(args, sizes, queue, storage_dir),
        scaling_config=ScalingConfig(num_workers=args.num_workers, use_gpu=args.use_gpu,
                                     resources_per_worker=resources),
        run_config=RunConfig(name=run_id, storage_path=args.storage_path,
                             failure_config=FailureConfig(max_failures=args.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
    )
    progress = Progress(queue, args)
    fit_called = time.time()
    try:
        trainer.fit()
    except Exception as err:  # Ray wraps worker errors; say what failed in one line, write nothing
        progress.finish()
        fail(f"Ray training failed: {error_summary(err)}; no results written (worker logs: "
             f"/tmp/ray/session_latest/logs on the Ray nodes)", code=EXIT_INFRA)
    fit_returned = time.time()
    progress.finish()

    from fitting import process_start_time

    timings = {"process_start": process_start_time(started), "script_start": started, "imports_done": import_done,
               "ray_ready": ray_ready,
               "fit_called": fit_called, "fit_returned": fit_returned}
    result = assemble_result(args, run_id, shape, progress.messages, timings, storage_dir)
    ray.shutdown()
    result["wall_time_seconds"] = time.time() - timings["process_start"]
    write_results(args.output, result)
    note = "" if result["accuracy_meaningful"] else " (synthetic data: accuracy is chance)"
    print(f"[ray {args.num_workers}w] done: {result['training_time_seconds']:.1f}s training, test accuracy "
          f"{result['test_accuracy']:.4f}{note}, {result['images_per_second']:.1f} images/s, "
          f"{result['fault_tolerance']['restarts']} restart(s) -> {args.output}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("error: interrupted; no results written", file=sys.stderr)
        sys.exit(130)
