"""Ray Train: the kit's CNN trained by N workers with Ray Train (TensorflowTrainer's construction, tf_backend.py) +
MultiWorkerMirroredStrategy.

    python -m training.ray_training --num-workers 2 --ray-address auto        # in a Ray cluster (the head pod)
    DATASET=digits EPOCHS=3 python -m training.ray_training                   # starts a private local Ray

Each worker trains on its own 1/N shard of the training set with `--batch-size` images per step (per worker by
default), the gradients are averaged by an all-reduce every step, and the driver prints one line per epoch.
Writes RESULTS_DIR/ray_results_{N}workers.json (same schema as the baseline) only when the run succeeds.
"""

import os
import re
import threading
import time

from training.core import settings, storage
from training.core.fitting import format_duration
from training.core.settings import fail
from training.distributed.ray_start import start_ray

TRAINING_TYPE = "ray_distributed"
EXIT_INFRA = 4
# Where Ray Train 2.60 keeps a run's checkpoint index inside RunConfig storage (ray.train.v2 constants).
RAY_SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"
STOP_MARKER = "_progress_stop"


def parse_args(argv=None):
    args = settings.parse("ray", "Train the CIFAR-10 CNN with Ray Train (TensorflowTrainer + "
                                 "MultiWorkerMirroredStrategy).", argv)
    if args.output is None:
        args.output = os.path.join(args.results_dir, f"ray_results_{args.num_workers}workers.json")
    if not args.storage_path:
        args.storage_path = os.path.join(args.results_dir, "checkpoints")
    if "://" not in args.storage_path:
        args.storage_path = os.path.abspath(args.storage_path)
    return args


def check_data(config):
    """The split's sizes, and a bad DATA_DIR or TRAIN_SAMPLES refused here in seconds instead of inside every
    worker after Ray has started them. A bundled dataset's sizes are known without loading it (the settings'
    rules have checked them); CIFAR-10 is loaded once, which also makes the download happen here."""
    from training.core.settings import datasets

    if config.dataset in datasets.BUNDLED:
        return datasets.bundled_sizes(config.dataset, config.train_samples, config.test_samples, config.val_fraction)
    from training.core import data

    try:
        ds = data.load_dataset(config.dataset, config.data_dir, config.train_samples, config.test_samples,
                               config.val_fraction, config.seed)
        data.shard_indices(len(ds.y_train), 0, config.num_workers, config.per_worker_batch)
    except data.DataError as err:
        fail(str(err))
    return ds.sizes()


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


def check_capacity(config, shape):
    fits = sum(cpus // config.cpus_per_worker for cpus in shape["cpus_per_node"])
    if fits < config.num_workers:
        fail(f"NUM_WORKERS={config.num_workers} with CPUS_PER_WORKER={config.cpus_per_worker} needs "
             f"{config.num_workers * config.cpus_per_worker} CPUs in whole-worker shares; the Ray cluster has "
             f"{shape['cpus']} CPUs on {shape['nodes']} node(s) ({'+'.join(map(str, shape['cpus_per_node']))}), "
             f"room for {fits} worker(s)")
    if config.use_gpu and shape["gpus"] < config.num_workers:
        fail(f"USE_GPU needs {config.num_workers} GPUs, one per worker; the Ray cluster has {shape['gpus']}")


class Progress:
    """Drains the workers' queue on a thread while trainer.fit() blocks, printing one line per epoch and rank 0's
    in-epoch progress lines."""

    def __init__(self, queue, config):
        self.queue, self.epochs = queue, config.epochs
        self.messages = []
        self.label = f"ray {config.num_workers}w"
        self.last_line = time.monotonic()
        self.quiet = QuietPhases(self, config.num_workers, config.epochs, config.progress_interval)
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
        self.quiet.stop()
        self._stop.set()
        self.queue.put({"type": STOP_MARKER})
        self._thread.join()
        while not self.queue.empty():
            message = self.queue.get_nowait()
            if message.get("type") != STOP_MARKER:
                self.handle(message)

    def say(self, line):
        """Prints one line (from the draining thread or QuietPhases') and notes when."""
        from training.core.step_progress import print_line

        self.last_line = time.monotonic()
        print_line(line)

    def handle(self, message):
        from training.core.fitting import format_progress
        from training.core.step_progress import format_step_progress

        kind = message["type"]
        self.quiet.note(message)
        if kind == "step_progress":  # a passing view: printed, never part of the results
            self.say(format_step_progress(self.label, message))
            return
        self.messages.append(message)
        if kind == "epoch":
            elapsed = sum(m["seconds"] for m in self.messages if m["type"] == "epoch")
            line = format_progress(self.label, message, self.epochs, elapsed)
            if message.get("checkpointed"):
                line += f"  checkpoint {message['checkpoint_seconds']:.2f}s"
            self.say(line)
            if message["epoch"] == self.epochs:  # what comes next takes a while and reports only at its end
                self.say(self.quiet.describe())
        elif kind == "worker" and message["rank"] == 0 and message["resumed_from_epoch"]:
            self.say(f"[{self.label}] worker group restarted: resuming after epoch {message['resumed_from_epoch']} "
                     f"from {message['restored_from']}")
        elif kind == "worker" and message.get("skipped_checkpoints") and message["rank"] == 0:
            for reason in message["skipped_checkpoints"]:
                self.say(f"[{self.label}] WARNING: skipped a damaged checkpoint: {reason}")
        elif kind == "failure_injected":
            self.say(f"[{self.label}] injected failure: rank {message['rank']} exits in epoch {message['epoch']} "
                     f"(step {message['step']})")


class QuietPhases:
    """When the workers have nothing to report, Ray starting them (until rank 0 starts fitting; again after a
    restart of the group) and the test set's scoring (after the final epoch, until fit returns), the driver says
    what it waits for every PROGRESS_INTERVAL seconds without a line, so a slow phase reads differently from a
    hung one."""

    def __init__(self, progress, workers, epochs, interval):
        self.progress, self.workers, self.epochs, self.interval = progress, workers, epochs, interval
        self.phase, self.ready = "starting", set()
        self._since = time.monotonic()
        self._stop = threading.Event()
        if interval:
            threading.Thread(target=self._run, name="quiet-phases", daemon=True).start()

    def note(self, message):
        """Follows the run from the messages: each rank's `worker` message, rank 0's fit start, the final epoch."""
        kind = message["type"]
        if kind == "worker":
            if message["rank"] in self.ready:  # a second one from a rank: the group restarted
                self.phase, self.ready, self._since = "starting", set(), time.monotonic()
            self.ready.add(message["rank"])
        elif kind == "fit_started":
            self.phase = None
        elif kind == "epoch" and message["epoch"] == self.epochs:
            self.phase, self._since = "scoring", time.monotonic()

    def describe(self):
        waited = format_duration(time.monotonic() - self._since)
        if self.phase == "starting":
            return f"[{self.progress.label}] starting the workers: {len(self.ready)}/{self.workers} ready ({waited})"
        return f"[{self.progress.label}] scoring the test set: each worker its share ({waited})"

    def stop(self):
        self._stop.set()

    def _run(self):
        while not self._stop.wait(self.interval):
            if self.phase and time.monotonic() - self.progress.last_line >= self.interval:
                self.progress.say(self.describe())


def error_summary(err):
    """Ray wraps a worker's exception in its traceback text; the last 'SomeError: message' line is the cause."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*:", line)]
    return causes[-1] if causes else (lines[0] if lines else type(err).__name__)


def worker_config(config, queue):
    """Ray Train's train_loop_config: the run's configuration as a plain dict (ray_worker reads it back into a
    RayRunConfig), the progress queue, and when this run started."""
    return {
        "run": config.to_dict(),
        "queue": queue,
        # Progress written before this moment is an earlier process's (a --resume), not this run's restart.
        "run_started": time.time(),
    }


def check_storage(config):
    """Refuses to continue an earlier run's checkpoints unasked (Ray Train would, by the run's name alone)."""
    earlier = storage.exists(storage.join(config.storage_dir, RAY_SNAPSHOT_FILE))
    if earlier and not config.resume:
        fail(f"RUN_ID '{config.run_id}' already has checkpoints in {config.storage_dir}; pass --resume to continue "
             f"from them, or choose another RUN_ID")
    if config.resume and not earlier:
        print(f"[ray {config.num_workers}w] --resume: no checkpoint of {config.run_id} yet, starting from epoch 1",
              flush=True)
    try:
        storage.make_dirs(config.storage_dir)
    except OSError as err:
        fail(f"STORAGE_PATH '{config.storage_path}' is not writable ({err})", code=EXIT_INFRA)


def make_trainer(config, queue):
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig

    from training.distributed import ray_worker
    from training.distributed.runtime_env import train_worker_env
    from training.distributed.tf_backend import TensorflowBackend
    from training.distributed.trainer import KitTrainer

    resources = {"CPU": config.cpus_per_worker}
    if config.use_gpu:
        resources["GPU"] = 1
    # TensorflowTrainer's own construction (DataParallelTrainer + its TF_CONFIG backend), without TensorFlow in
    # this process and in Ray Train's controller (tf_backend.py says what that saves), and without the helpers a
    # run without Ray Datasets does not use (trainer.py).
    return KitTrainer(
        ray_worker.train_loop_per_worker,
        backend_config=TensorflowBackend(threads=config.cpus_per_worker),
        train_loop_config=worker_config(config, queue),
        scaling_config=ScalingConfig(num_workers=config.num_workers, use_gpu=config.use_gpu,
                                     resources_per_worker=resources),
        run_config=RunConfig(name=config.run_id, storage_path=config.storage_path,
                             failure_config=FailureConfig(max_failures=config.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2),
                             worker_runtime_env=train_worker_env(config.cpus_per_worker)),
    )


def fit_or_fail(trainer, progress):
    """(trainer.fit()'s Result, when fit() returned); a failed run ends here in one line, and writes nothing."""
    try:
        result = trainer.fit()
        error = result.error  # Ray 2.60 raises it from fit(); a Result that carries one failed all the same
    except Exception as err:  # Ray wraps worker errors; say what failed in one line
        error = err
    returned = time.time()
    progress.finish()
    if error is not None:
        fail(f"Ray training failed: {error_summary(error)}; no results written (worker logs: "
             f"/tmp/ray/session_latest/logs on the Ray nodes)", code=EXIT_INFRA)
    return result, returned


def announce(config, sizes, shape):
    print(f"[ray {config.num_workers}w] {config.dataset}: {sizes['train']} train / {sizes['val']} val / "
          f"{sizes['test']} test images; {config.num_workers} worker(s) x {config.cpus_per_worker} CPU, batch "
          f"{config.per_worker_batch} per worker ({config.global_batch} global), learning rate "
          f"{config.learning_rate:.5g} ({config.lr_scaling} scaling: x{config.lr_factor:.3g}); "
          f"cluster {shape['nodes']} "
          f"node(s), {shape['cpus']} CPUs; checkpoints {config.checkpoint_policy} in {config.storage_dir}", flush=True)


def main(argv=None):
    started = time.time()
    from training.distributed.ray_run_config import RayRunConfig
    from training.core.results import default_run_id, write_results

    config = RayRunConfig.from_args(parse_args(argv))
    config = config.replace(run_id=config.run_id or default_run_id(TRAINING_TYPE))
    sizes = check_data(config)
    from training.distributed.run_report import assemble_result

    import_done = time.time()
    ray = start_ray(config.ray_address, config.num_workers * config.cpus_per_worker)
    ray_ready = time.time()
    from training.distributed.trainer import start_autoscaling_coordinator

    start_autoscaling_coordinator()
    shape = cluster_shape(ray)
    check_capacity(config, shape)

    from ray.util.queue import Queue

    check_storage(config)
    queue = Queue(actor_options={"num_cpus": 0})
    announce(config, sizes, shape)
    trainer = make_trainer(config, queue)
    progress = Progress(queue, config)
    fit_called = time.time()
    ray_result, fit_returned = fit_or_fail(trainer, progress)

    from training.core.fitting import process_start_time

    timings = {"process_start": process_start_time(started), "script_start": started, "imports_done": import_done,
               "ray_ready": ray_ready, "fit_called": fit_called, "fit_returned": fit_returned}
    result = assemble_result(config, ray_result, progress.messages, shape, timings)
    ray.shutdown()
    result["wall_time_seconds"] = time.time() - timings["process_start"]
    write_results(config.output, result)
    note = "" if result["accuracy_meaningful"] else " (synthetic data: accuracy is chance)"
    print(f"[ray {config.num_workers}w] done: {result['training_time_seconds']:.1f}s training, test accuracy "
          f"{result['test_accuracy']:.4f}{note}, {result['images_per_second']:.1f} images/s, "
          f"{result['fault_tolerance']['restarts']} restart(s) -> {config.output}", flush=True)


if __name__ == "__main__":
    settings.run_program(main)
