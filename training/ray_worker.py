"""What each Ray Train worker runs: the kit's model under MultiWorkerMirroredStrategy on this worker's shard.

Everything a worker learns that the driver needs (per-epoch metrics, where it ran, which images it saw, its share
of the test-set counts) goes through one progress queue, so the driver can print live progress and build the
results without a second channel. Metrics also go to Ray Train with ray.train.report, once per epoch from every
worker: Ray requires every worker to report equally often, and a report is where checkpoints are committed.
"""

import hashlib
import os
import shutil
import socket
import tempfile
import time

import checkpoints
import storage

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


def train_loop_per_worker(config):
    """Ray Train entry point. `config` is the driver's plain dict (see ray_training.worker_config)."""
    import ray.train

    from tf_env import WORKER_ENV, configure_tensorflow, pin_compute_threads, worker_cpus

    # What this process was started with, before configure_tensorflow() fills in the rest: the malloc arena
    # limit only works from the environment in a process whose Ray threads already allocated.
    env_at_start = {name: os.environ.get(name) for name in WORKER_ENV}
    # The local cluster's CPU for this worker (None on Kubernetes); applied once TensorFlow's threads exist.
    pinned_cpus = worker_cpus()
    # Thread pools first: TensorFlow reads them once, when its runtime starts.
    tf, tf_threads = configure_tensorflow(config["cpus_per_worker"])

    import data
    from checkpoint_policy import CheckpointController
    from evaluation import evaluate_counts
    from fitting import epoch_recorder, run_fit, standard_callbacks
    from model import build_model

    queue = config["queue"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    attempt_started = time.time()

    # TensorflowTrainer has set TF_CONFIG for this worker; the strategy reads it here.
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=tf.distribute.experimental.
                                                        CommunicationOptions(implementation=config["collective"]))

    ds = data.load_dataset(config["dataset"], config["data_dir"], config["train_samples"], config["test_samples"],
                           config["val_fraction"], config["seed"])
    batch = config["per_worker_batch_size"]
    shard = data.shard_indices(len(ds.y_train), rank, world, batch)
    # Validation: an equal share each, whole images; Keras sums the metrics' totals and counts over workers.
    val_shard = data.even_shard(len(ds.y_val), rank, world)
    test_shard = data.even_shard(len(ds.y_test), rank, world, drop_remainder=False)

    with strategy.scope():
        # One worker has nothing to all-reduce: narrowing its gradients would only lose precision.
        model = build_model(learning_rate=config["learning_rate"], seed=config["seed"],
                            allreduce_dtype=config.get("allreduce_dtype") if world > 1 else None)
        # Optimizer slots must be created inside the scope to be mirrored like the weights.
        restored = checkpoints.restore_latest(ray.train.get_checkpoint(), model)
    start_epoch = restored["epoch"] if restored else 0
    history = list(restored["history"]) if restored else []
    recovery = None
    if restored and restored.get("controller"):
        controller = CheckpointController.from_state(restored["controller"])
        # The restart is what the adaptive policy learns from: the work it lost and the work the checkpoint saved.
        recovery = checkpoints.recovery_account(restored, checkpoints.read_progress(config["storage_dir"]),
                                                config["run_started"], time.time())
        if recovery is not None:
            controller.observe_recovery(recovery["epochs_redone"], seconds_lost=recovery["seconds_lost"])
    else:
        controller = CheckpointController(config["checkpoint_policy"],
                                          checkpoint_seconds=measure_checkpoint_cost(strategy, model, rank),
                                          **config["controller_args"])

    # TensorFlow's op threads exist now that the model is built: the opt-in local pinning can take them.
    pinned_threads = pin_compute_threads(pinned_cpus) if pinned_cpus else 0
    info = _node_info(ctx)
    info.update({
        "shard_size": int(len(shard)),
        "shard_digest": _indices_digest(shard),
        "shard_first": int(shard[0]),
        "val_shard_size": int(len(val_shard)),
        "test_shard_size": int(len(test_shard)),
        "steps_per_epoch": int(len(shard) // batch),
        "batches_skipped": int(start_epoch * (len(shard) // batch)),
        "tf_threads": tf_threads,
        "env_at_start": env_at_start,
        "pinned_cpus": pinned_cpus,
        "pinned_threads": pinned_threads,
        "recovery_observed": recovery,
    })
    if config["record_shards"]:
        info["shard_indices"] = [int(i) for i in shard]

    # Each worker's own shard, batched at the per-worker batch. Through distribute_datasets_from_function,
    # because a plain dataset given to fit() under MultiWorkerMirroredStrategy is taken as GLOBAL batches and
    # rebatched: every worker would keep only its 1/N slice of each of its batches and throw the rest away.
    x_train, y_train = ds.x_train[shard], ds.y_train[shard]
    x_val, y_val = ds.x_val[val_shard], ds.y_val[val_shard]
    # A resumed run continues the data order where the undisturbed run would be, not from epoch 1's order.
    train_ds = strategy.distribute_datasets_from_function(lambda _: data.make_tf_dataset(
        x_train, y_train, batch, shuffle_seed=config["seed"] + rank, drop_remainder=True, repeat=True,
        skip_batches=start_epoch * (len(shard) // batch)))
    val_ds = strategy.distribute_datasets_from_function(
        lambda _: data.make_tf_dataset(x_val, y_val, batch, repeat=True))
    val_steps = -(-len(val_shard) // batch)
    # Recorded so the results prove how many images one step of this worker really takes.
    first_images, _ = next(iter(train_ds))
    info["images_per_step"] = int(strategy.experimental_local_results(first_images)[0].shape[0])
    _send(queue, {"type": "worker", "attempt_started": attempt_started, "resumed_from_epoch": start_epoch,
                  "restored_from": restored["path"] if restored else None,
                  "skipped_checkpoints": restored["skipped"] if restored else [], **info})

    failure_marker = storage.join(config["storage_dir"], "failure_injected")
    inject_epoch = config["inject_failure_epoch"]
    steps = len(shard) // batch

    class EpochEnd(tf.keras.callbacks.Callback):
        """Runs after the recorder: decides on a checkpoint, reports to Ray Train, and (demo) injects a failure."""

        first_step_done = False

        def on_train_batch_end(self, step, logs=None):
            epoch = len(history) + 1
            if not self.first_step_done:
                self.first_step_done = True
                if pinned_cpus:  # running the step may have started more of TensorFlow's threads
                    pin_compute_threads(pinned_cpus)
                if rank == 0:
                    # The first step carries tf.function tracing: its end is when training really runs.
                    _send(queue, {"type": "first_step"})
            if (inject_epoch and epoch == inject_epoch and rank == world - 1 and step + 1 == max(1, steps // 2)
                    and not storage.exists(failure_marker)):
                # Once per run, never again after the restart: the marker lives in storage every node sees.
                storage.write_text(failure_marker, f"rank {rank} pid {os.getpid()} epoch {epoch} step {step + 1}\n")
                _send(queue, {"type": "failure_injected", "rank": rank, "epoch": epoch, "step": step + 1})
                os._exit(INJECTED_EXIT_CODE)

        def on_epoch_end(self, epoch, logs=None):
            record = recorder.history[-1]
            history.append(record)
            checkpoint = None
            # Batch normalization's moving statistics are sync-on-read variables: reading them is an all-reduce
            # that every worker must join, so all ranks read the weights, though only rank 0 may save them.
            weights = self.model.get_weights()
            if rank == 0:
                # Only rank 0 decides and saves: every worker holds the same weights after the all-reduce.
                controller.observe_epoch(record["seconds"])
                save = controller.should_checkpoint(record["epoch"], config["epochs"])
                saved_seconds, local_dir = None, None
                if save:
                    checkpoint, local_dir, saved_seconds = checkpoints.save(self.model, weights, record["epoch"], history,
                                                                            controller)
                    controller.observe_checkpoint(saved_seconds)
                _send(queue, {"type": "epoch", **record, "checkpointed": save, "checkpoint_seconds": saved_seconds,
                              "checkpoint_reason": getattr(controller, "last_reason", None)})
                checkpoints.record_progress(config["storage_dir"], record["epoch"])
            ray.train.report({"epoch": record["epoch"], "loss": record["loss"], "val_loss": record["val_loss"],
                              "val_accuracy": record["val_accuracy"]}, checkpoint=checkpoint,
                             checkpoint_dir_name=checkpoints.dir_name(record["epoch"]) if checkpoint else None)
            if checkpoint is not None:
                checkpoints.discard_local(local_dir)

    recorder = epoch_recorder(config["epochs"], initial_epoch=start_epoch)
    callbacks = standard_callbacks(config["early_stopping_patience"]) + [recorder, EpochEnd()]
    if start_epoch < config["epochs"]:
        fit_started = time.time()
        if rank == 0:
            _send(queue, {"type": "fit_started", "time": fit_started, "initial_epoch": start_epoch})
        run_fit(model, train_ds, val_ds, config["epochs"], callbacks, initial_epoch=start_epoch,
                steps_per_epoch=steps, validation_steps=val_steps)
        fit_seconds = time.time() - fit_started
    else:
        fit_started, fit_seconds = time.time(), 0.0

    # Test set: each worker scores its own share with a plain copy of the trained weights (no collectives),
    # and the driver adds the counts, which equal one process scoring the whole set.
    plain = build_model(learning_rate=config["learning_rate"], seed=config["seed"])
    plain.set_weights(model.get_weights())
    counts = evaluate_counts(plain, ds.x_test[test_shard], ds.y_test[test_shard], data.NUM_CLASSES)
    _send(queue, {"type": "done", "rank": rank, "fit_started": fit_started, "fit_seconds": fit_seconds,
                  "fit_ended": fit_started + fit_seconds, "epochs_run": len(recorder.history),
                  "steps_in_epoch": recorder.steps_in_epoch, "counts": counts,
                  "epoch_cpu": [{k: r.get(k) for k in ("epoch", "seconds", "cpu_seconds", "cpu_wait_seconds")}
                                for r in recorder.history],
                  "history": history if rank == 0 else None, "class_names": list(ds.class_names),
                  "data_source": ds.source, "accuracy_meaningful": ds.accuracy_meaningful,
                  "sizes": ds.sizes(), "num_parameters": int(model.count_params()),
                  "controller": controller.state() if rank == 0 else None})
