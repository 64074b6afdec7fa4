"""What each Ray Train worker runs: the kit's model under MultiWorkerMirroredStrategy on this worker's shard.

train_loop_per_worker is a list of named steps: start TensorFlow, load this worker's shards, build the model and
restore it with its checkpoint loop, build the datasets, fit with the epoch-end callback, score the test shard,
report. Rank 0 returns the run's summary (its history, the controller's state, the data's facts), which reaches
the driver as Ray Train's Result.return_value. What only a live stream or every rank can tell (rank 0's in-epoch and
per-epoch progress and checkpoint writes of every attempt, where each worker ran, its test counts) goes through the
progress queue. Metrics also go to Ray Train with ray.train.report, once per epoch from every worker: Ray requires
every worker to report equally often, and a report is where checkpoints are committed.
"""

import hashlib
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass

from training.checkpointing import checkpoints
from training.checkpointing.checkpoint_loop import CheckpointLoop
from training.core import data
from training.core.evaluation import evaluate_counts
from training.core.fitting import epoch_recorder, run_fit, standard_callbacks
from training.core.model import build_model
from training.core.step_progress import StepTicker
from training.core import tf_env
from training.core.tf_env import WORKER_ENV, configure_tensorflow, pin_compute_threads, worker_cpus
from training.core import storage
from training.distributed.ray_run_config import RayRunConfig

# The worker that the --inject-failure-epoch demo kills: the last rank, so rank 0 (which reports and saves)
# survives and the recovery is Ray's, not ours.
INJECTED_EXIT_CODE = 17


def _send(queue, message):
    message.setdefault("time", time.time())
    queue.put(message)


def _node_info(ctx):
    import ray

    runtime = ray.get_runtime_context()
    return {
        "rank": ctx.get_world_rank(),
        "local_rank": ctx.get_local_rank(),
        "node_rank": ctx.get_node_rank(),
        "node_ip": ray.util.get_node_ip_address(),
        "node_id": runtime.get_node_id(),
        "hostname": socket.gethostname(),
        # On Kubernetes a pod's hostname is the pod's name; the node comes from the downward API
        # (k8s/ray-cluster.yaml sets KIT_NODE_NAME from spec.nodeName). None off Kubernetes.
        "kubernetes_node": os.environ.get("KIT_NODE_NAME") or None,
        "pid": os.getpid(),
    }


def _indices_digest(indices):
    return hashlib.sha256(",".join(str(int(i)) for i in indices).encode()).hexdigest()[:16]


class Spans:
    """Seconds each named setup step took, in order: where a worker's setup goes, for the run's fixed costs."""

    def __init__(self, started):
        self.seconds, self._last = {}, started

    def mark(self, name):
        now = time.time()
        self.seconds[name], self._last = now - self._last, now


# --- the steps ----------------------------------------------------------------------------------------------------


def start_tensorflow(cpus):
    """(tf, facts): TensorFlow held to this worker's CPUs, and what the process started with."""
    # What this process was started with, before configure_tensorflow() fills in the rest: the malloc arena
    # limit only works from the environment in a process whose Ray threads already allocated.
    facts = {"env_at_start": {name: os.environ.get(name) for name in WORKER_ENV},
             # The local cluster's CPU for this worker (None on Kubernetes); applied once TensorFlow's threads exist.
             "pinned_cpus": worker_cpus()}
    # Thread pools first: TensorFlow reads them once, when its runtime starts.
    tf, facts["tf_threads"] = configure_tensorflow(cpus)
    # "process start" where runtime_env.train_worker_env's hook ran, as it should on every cluster.
    facts["tf_import_started_by"] = tf_env.import_started_by
    return tf, facts


def make_strategy(tf, collective):
    # The TensorFlow backend (tf_backend.py) has set TF_CONFIG for this worker; the strategy reads it here.
    options = tf.distribute.experimental.CommunicationOptions(implementation=collective)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


@dataclass
class Shards:
    """This worker's share of the data set: indices into its train, validation and test splits."""

    ds: data.Dataset
    train: object
    val: object
    test: object
    batch: int

    @property
    def steps(self):
        return len(self.train) // self.batch

    @property
    def val_steps(self):
        return -(-len(self.val) // self.batch)


def load_shards(run, rank, world):
    ds = data.load_dataset(run.dataset, run.data_dir, run.train_samples, run.test_samples, run.val_fraction,
                           run.seed)
    batch = run.per_worker_batch
    # Validation: an equal share each, whole images; Keras sums the metrics' totals and counts over workers.
    return Shards(ds, data.shard_indices(len(ds.y_train), rank, world, batch),
                  data.even_shard(len(ds.y_val), rank, world),
                  data.even_shard(len(ds.y_test), rank, world, drop_remainder=False), batch)


def build_and_restore(strategy, run, world):
    """(model, restored): the model under the strategy, with Ray's latest checkpoint in it when there is one
    (restored is checkpoints.restore_latest's state, or None)."""
    import ray.train

    with strategy.scope():
        # One worker has nothing to all-reduce: narrowing its gradients would only lose precision.
        model = build_model(learning_rate=run.learning_rate, seed=run.seed,
                            allreduce_dtype=run.allreduce_dtype if world > 1 else None, **run.model_options)
        # Optimizer slots must be created inside the scope to be mirrored like the weights.
        restored = checkpoints.restore_latest(ray.train.get_checkpoint(), model)
    return model, restored


def measure_checkpoint_cost(strategy, model, rank):
    """Seconds one checkpoint write takes, measured once before training, so the adaptive policy starts from
    the real cost instead of assuming a checkpoint costs a whole epoch (and saving nothing for many epochs).
    Every rank reads the weights (sync-on-read variables make that a collective); rank 0 writes and times."""
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)  # the Adam moments are part of every checkpoint
    weights = model.get_weights()
    if rank != 0:
        return None
    started = time.monotonic()
    folder = tempfile.mkdtemp(prefix="kit-ckpt-cost-")
    try:
        checkpoints.write_folder(folder, model, weights, 0, [], None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return time.monotonic() - started


def start_checkpoint_loop(run, restored, strategy, model, rank, run_started):
    """(loop, recovery): after a restart, the restored checkpoint's controller, told what the restart cost (the
    adaptive policy learns from that); otherwise a fresh one, told what a checkpoint costs here."""
    if restored and restored.get("controller"):
        recovery = checkpoints.recovery_account(restored, checkpoints.read_progress(run.storage_dir), run_started,
                                                time.time())
        return CheckpointLoop.resumed(restored["controller"], run.epochs, recovery), recovery
    cost = measure_checkpoint_cost(strategy, model, rank)
    return CheckpointLoop.fresh(run.checkpoint_policy, run.epochs, checkpoint_seconds=cost,
                                **run.controller_args), None


def make_datasets(strategy, shards, seed, rank, start_epoch):
    """(train, validation): each worker's own shard, batched at the per-worker batch. Through
    distribute_datasets_from_function, because a plain dataset given to fit() under MultiWorkerMirroredStrategy is
    taken as GLOBAL batches and rebatched: every worker would keep only its 1/N slice of each of its batches."""
    ds, batch = shards.ds, shards.batch
    x_train, y_train = ds.x_train[shards.train], ds.y_train[shards.train]
    x_val, y_val = ds.x_val[shards.val], ds.y_val[shards.val]
    # A resumed run continues the data order where the undisturbed run would be, not from epoch 1's order.
    train_ds = strategy.distribute_datasets_from_function(lambda _: data.make_tf_dataset(
        x_train, y_train, batch, shuffle_seed=seed + rank, drop_remainder=True, repeat=True,
        skip_batches=start_epoch * shards.steps))
    val_ds = strategy.distribute_datasets_from_function(
        lambda _: data.make_tf_dataset(x_val, y_val, batch, repeat=True))
    return keep_iterators(train_ds), val_ds


# Every iterator made over the training set, kept for the life of the worker process (keep_iterators).
_KEPT_ITERATORS = []


def keep_iterators(distributed_dataset):
    """The same dataset, whose iterators live as long as this worker process. model.fit destroys its training
    iterator as it returns, and destroying MultiWorkerMirroredStrategy's (a multi-device iterator) took about 7 s
    in 8 of 12 fits (benchmarks/fit_exit_probe.py); kept, fit returned at once every time. The process ends with
    the run, so keeping it costs a few prefetched batches of memory (BENCHMARKS.md, "What was tried")."""

    class KeptIterators(type(distributed_dataset)):
        def __iter__(self):
            iterator = super().__iter__()
            _KEPT_ITERATORS.append(iterator)
            return iterator

    distributed_dataset.__class__ = KeptIterators
    return distributed_dataset


def describe_worker(ctx, run, shards, facts, start_epoch, recovery):
    """The `worker` message's facts: where this worker runs, what it trains on, how its threads are held."""
    info = _node_info(ctx)
    info.update({
        "shard_size": int(len(shards.train)),
        "shard_digest": _indices_digest(shards.train),
        "shard_first": int(shards.train[0]),
        "val_shard_size": int(len(shards.val)),
        "test_shard_size": int(len(shards.test)),
        "steps_per_epoch": int(shards.steps),
        "batches_skipped": int(start_epoch * shards.steps),
        **facts,
        "recovery_observed": recovery,
    })
    if run.record_shards:
        info["shard_indices"] = [int(i) for i in shards.train]
    return info


def images_per_step(strategy, train_ds):
    """Recorded so the results prove how many images one step of this worker really takes."""
    first_images, _ = next(iter(train_ds))
    return int(strategy.experimental_local_results(first_images)[0].shape[0])


class FailureInjector:
    """The --inject-failure-epoch demo: the last rank's process exits halfway through that epoch, once per run."""

    def __init__(self, run, rank, world, steps, queue):
        self.epoch = run.inject_failure_epoch if rank == world - 1 else 0
        self.step, self.rank, self.queue = max(1, steps // 2), rank, queue
        # Once per run, never again after the restart: the marker lives in storage every node sees.
        self.marker = storage.join(run.storage_dir, "failure_injected")

    def after_step(self, epoch, step):
        if not self.epoch or epoch != self.epoch or step + 1 != self.step or storage.exists(self.marker):
            return
        storage.write_text(self.marker, f"rank {self.rank} pid {os.getpid()} epoch {epoch} step {step + 1}\n")
        _send(self.queue, {"type": "failure_injected", "rank": self.rank, "epoch": epoch, "step": step + 1})
        os._exit(INJECTED_EXIT_CODE)


class EpochEnd:
    """Runs after the recorder: after each step (first-step signal, thread pinning, the injected failure) and
    after each epoch, when rank 0 drives the checkpoint loop and saves, and every rank reports to Ray Train.
    `loop` is rank 0's CheckpointLoop, None on the other ranks."""

    def __init__(self, model, recorder, history, loop, queue, rank, storage_dir, injector, pinned_cpus):
        self.model, self.recorder, self.history, self.loop = model, recorder, history, loop
        self.queue, self.rank, self.storage_dir = queue, rank, storage_dir
        self.injector, self.pinned_cpus = injector, pinned_cpus
        self.first_step_done = False
        # The latest epoch's weights, as every rank read them together: the test scoring takes them from here.
        self.weights = None
        # When model.fit reached its edges (the first epoch's begin, the last epoch's callbacks' end, Keras' end of
        # training): what inside model.fit is outside the epochs (run_report.fit_edges).
        self.marks = {}

    def keras_callback(self, tf):
        return tf.keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs=None: self.marks.setdefault("first_epoch_begin", time.time()),
            on_train_batch_end=self.after_step, on_epoch_end=self.after_epoch,
            on_train_end=lambda logs=None: self.mark("train_end"))

    def mark(self, name):
        self.marks[name] = time.time()

    def after_step(self, step, logs=None):
        if not self.first_step_done:
            self.first_step_done = True
            if self.pinned_cpus:  # running the step may have started more of TensorFlow's threads
                pin_compute_threads(self.pinned_cpus)
            if self.rank == 0:
                # The first step carries tf.function tracing: its end is when training really runs.
                _send(self.queue, {"type": "first_step"})
        self.injector.after_step(len(self.history) + 1, step)

    def after_epoch(self, epoch, logs=None):
        import ray.train

        record = self.recorder.history[-1]
        self.history.append(record)
        # Batch normalization's moving statistics are sync-on-read variables: reading them is an all-reduce
        # that every worker must join, so all ranks read the weights, though only rank 0 may save them.
        weights = self.weights = self.model.get_weights()
        written = self.checkpoint_if_due(record, weights) if self.loop is not None else {}
        ray.train.report({"epoch": record["epoch"], "loss": record["loss"], "val_loss": record["val_loss"],
                          "val_accuracy": record["val_accuracy"]}, checkpoint=written.get("checkpoint"),
                         checkpoint_dir_name=checkpoints.dir_name(record["epoch"]) if written else None)
        if written:
            checkpoints.discard_local(written["folder"])
        self.mark("last_epoch_done")

    def checkpoint_if_due(self, record, weights):
        """Rank 0 only (every worker holds the same weights after the all-reduce): the loop decides, and the
        checkpoint it asks for is written locally for the report to commit. Returns {checkpoint, folder} or {}."""
        written = {}

        def save(controller_state):
            written["checkpoint"], written["folder"], seconds = checkpoints.save(
                self.model, weights, record["epoch"], self.history, controller_state)
            return seconds

        decision = self.loop.end_epoch(record["epoch"], record["seconds"], save)
        _send(self.queue, {"type": "epoch", **record, **decision.record()})
        checkpoints.record_progress(self.storage_dir, record["epoch"])
        return written


def fit(model, datasets, shards, run, callbacks, start_epoch, rank, queue):
    """(started, seconds) of model.fit; nothing to fit when a resumed run had already finished its epochs."""
    if start_epoch >= run.epochs:
        return time.time(), 0.0
    started = time.time()
    if rank == 0:
        _send(queue, {"type": "fit_started", "time": started, "initial_epoch": start_epoch})
    train_ds, val_ds = datasets
    run_fit(model, train_ds, val_ds, run.epochs, callbacks, initial_epoch=start_epoch, steps_per_epoch=shards.steps,
            validation_steps=shards.val_steps)
    return started, time.time() - started


def score_test_shard(model, shards, run, weights=None):
    """Each worker scores its own test share with a plain copy of the trained weights (no collectives); the
    driver adds the counts, which equal one process scoring the whole set. `weights` are the final epoch's, which
    every rank read together at its end (EpochEnd): reading them again here is a collective of its own (batch
    normalization's statistics), which the ranks reach at different times after fit: it took about 6 s in 2 of 6
    runs of a probe, 0.15 s otherwise (BENCHMARKS.md, "What was tried"). None (nothing was fitted): read now."""
    started = time.time()
    plain = build_model(learning_rate=run.learning_rate, seed=run.seed, **run.model_options)
    built = time.time()
    plain.set_weights(model.get_weights() if weights is None else weights)
    copied = time.time()
    ds = shards.ds
    counts = evaluate_counts(plain, ds.x_test[shards.test], ds.y_test[shards.test], data.NUM_CLASSES)
    return {**counts, "spans": {"build": built - started, "weights": copied - built, "score": time.time() - copied}}


def final_weights(callbacks, epoch_end):
    """The weights model.fit ended with, as already read by every rank: early stopping's best epoch's when it
    restores them at the end of training (tf-keras does, in on_train_end), else the final epoch's."""
    for callback in callbacks:
        if getattr(callback, "restore_best_weights", False) and getattr(callback, "best_weights", None) is not None:
            return callback.best_weights
    return epoch_end.weights


def step_ticker(run, rank, world, shards, queue):
    """Rank 0 speaks for the group (every worker is at the same step: the all-reduce keeps them there): its
    in-epoch progress goes to the driver like the epoch lines, images/s counted for the global batch."""
    if rank != 0 or not run.progress_interval:
        return None
    return StepTicker(lambda state: _send(queue, {"type": "step_progress", **state}), run.progress_interval,
                      shards.steps, shards.batch * world)


def report_done(queue, rank, fit_span, recorder, counts, fit_marks):
    """Every rank's own end of training, for the driver: its fit times, CPU per epoch and test counts."""
    started, seconds = fit_span
    _send(queue, {"type": "done", "rank": rank, "fit_started": started, "fit_seconds": seconds,
                  "fit_ended": started + seconds, "fit_marks": fit_marks, "epochs_run": len(recorder.history),
                  "steps_in_epoch": recorder.steps_in_epoch, "counts": counts,
                  "epoch_cpu": [{k: r.get(k) for k in ("epoch", "seconds", "cpu_seconds", "cpu_wait_seconds")}
                                for r in recorder.history]})


def run_summary(history, shards, model, loop):
    """Rank 0's return value, which Ray Train hands the driver as Result.return_value."""
    ds = shards.ds
    return {"history": history, "controller": loop.state(), "class_names": list(ds.class_names),
            "data_source": ds.source, "accuracy_meaningful": ds.accuracy_meaningful, "sizes": ds.sizes(),
            "num_parameters": int(model.count_params())}


# --- the entry point ----------------------------------------------------------------------------------------------


def train_loop_per_worker(config):
    """Ray Train entry point. `config` is ray_training.worker_config's dict: the run's RayRunConfig as a dict
    ("run"), the progress queue and when the run started. Returns rank 0's run_summary, None on other ranks."""
    import ray.train

    attempt_started = time.time()
    spans = Spans(attempt_started)
    run, queue = RayRunConfig.from_dict(config["run"]), config["queue"]
    tf, facts = start_tensorflow(run.cpus_per_worker)
    spans.mark("tensorflow")
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    strategy = make_strategy(tf, run.collective)
    spans.mark("strategy")
    shards = load_shards(run, rank, world)
    spans.mark("data")
    model, restored = build_and_restore(strategy, run, world)
    spans.mark("model")
    loop, recovery = start_checkpoint_loop(run, restored, strategy, model, rank, config["run_started"])
    spans.mark("checkpoint_cost")
    start_epoch = restored["epoch"] if restored else 0
    history = list(restored["history"]) if restored else []

    # TensorFlow's op threads exist now that the model is built: the opt-in local pinning can take them.
    facts["pinned_threads"] = pin_compute_threads(facts["pinned_cpus"]) if facts["pinned_cpus"] else 0
    datasets = make_datasets(strategy, shards, run.seed, rank, start_epoch)
    spans.mark("datasets")
    info = describe_worker(ctx, run, shards, facts, start_epoch, recovery)
    info["images_per_step"] = images_per_step(strategy, datasets[0])
    spans.mark("first_batch")
    info["setup_spans"] = spans.seconds
    _send(queue, {"type": "worker", "attempt_started": attempt_started, "resumed_from_epoch": start_epoch,
                  "restored_from": restored["path"] if restored else None,
                  "skipped_checkpoints": restored["skipped"] if restored else [], **info})

    ticker = step_ticker(run, rank, world, shards, queue)
    recorder = epoch_recorder(run.epochs, initial_epoch=start_epoch, ticker=ticker)
    epoch_end = EpochEnd(model, recorder, history, loop if rank == 0 else None, queue, rank, run.storage_dir,
                         FailureInjector(run, rank, world, shards.steps, queue), facts["pinned_cpus"])
    callbacks = standard_callbacks(run.early_stopping_patience) + [recorder, epoch_end.keras_callback(tf)]
    fit_span = fit(model, datasets, shards, run, callbacks, start_epoch, rank, queue)

    counts = score_test_shard(model, shards, run, final_weights(callbacks, epoch_end))
    report_done(queue, rank, fit_span, recorder, counts, epoch_end.marks)
    return run_summary(history, shards, model, loop) if rank == 0 else None
