"""The results document of a Ray run, from Ray Train's own Result and the workers' progress messages.

From the Result (trainer.fit()'s return): the history, the checkpoint controller's final state and the data's facts
(rank 0's return value, Result.return_value), and the latest checkpoint (Result.checkpoint and the metrics reported
with it). Result.metrics_dataframe is not used: in Ray Train 2.60 it has a row per checkpoint still kept
(CheckpointConfig num_to_keep), not per epoch, and none at all under CHECKPOINT_POLICY=never.
From the progress queue, what no Result can carry: the live per-epoch lines and checkpoint writes of every attempt
(a failed attempt leaves no Result), where each worker ran, each worker's test counts and times, and the restarts.

Pure Python over plain values (no Ray), so every number here is testable on made-up message streams.
Message types (see ray_worker.py): worker (each rank, each attempt), fit_started / first_step / epoch (rank 0),
failure_injected, done (each rank, last attempt only).
"""

from training.core.evaluation import combine_counts, summarize_counts
from training.core.fitting import first_epoch_excess
from training.core.results import environment_info, make_result


def split_attempts(messages):
    """One entry per start of the worker group. The k-th `worker` message of a rank belongs to the k-th attempt
    (ranks start in any order); rank 0's epoch and fit messages belong to its latest attempt."""
    attempts, seen = [], {}

    def attempt(index):
        while len(attempts) <= index:
            attempts.append({"start": None, "workers": [], "epochs": [], "fit_started": None, "first_step": None,
                             "failures": []})
        return attempts[index]

    for message in messages:
        kind = message["type"]
        if kind == "worker":
            index = seen.get(message["rank"], -1) + 1
            seen[message["rank"]] = index
            current = attempt(index)
            current["workers"].append(message)
            if message["rank"] == 0:
                current["start"] = message
        elif kind in ("epoch", "fit_started", "first_step"):
            current = attempt(max(0, seen.get(0, 0)))
            if kind == "epoch":
                current["epochs"].append(message)
            else:
                current[kind] = message["time"]
        elif kind == "failure_injected":
            attempt(max(0, seen.get(message["rank"], 0)))["failures"].append(message)
    return [a for a in attempts if a["start"] is not None]


def recovery_account(attempts):
    """For each restart: the epoch it resumed after, the completed epochs it had to redo, and the seconds the
    failure cost, i.e. how much later than an undisturbed run the restarted group finished the first epoch the
    failed group never finished."""
    restarts = []
    for before, after in zip(attempts, attempts[1:]):
        resumed = after["start"]["resumed_from_epoch"]
        if before["epochs"]:
            last_epoch, last_time = before["epochs"][-1]["epoch"], before["epochs"][-1]["time"]
        else:
            last_epoch = before["start"]["resumed_from_epoch"]
            last_time = before["fit_started"] or before["start"]["attempt_started"]
        caught_up = next((e for e in after["epochs"] if e["epoch"] == last_epoch + 1), None)
        restarts.append({
            "resumed_after_epoch": resumed,
            "restored_from": after["start"].get("restored_from"),
            "last_epoch_before_failure": last_epoch,
            "epochs_redone": max(0, last_epoch - resumed),
            "seconds_lost": (caught_up["time"] - last_time - caught_up["seconds"]) if caught_up else None,
            "injected": bool(before["failures"]),
        })
    known = [r["seconds_lost"] for r in restarts if r["seconds_lost"] is not None]
    return {
        "failures": len(restarts),
        "restarts": len(restarts),
        "epochs_redone": sum(r["epochs_redone"] for r in restarts),
        "seconds_lost": sum(known) if restarts else 0.0,
        "events": restarts,
        # A run continued with --resume starts from an earlier process's checkpoint.
        "resumed_at_start_after_epoch": attempts[0]["start"]["resumed_from_epoch"] if attempts else 0,
    }


def epoch_pauses(attempts):
    """Seconds between one epoch's end and the next one's start, within an attempt: reporting to Ray Train,
    checkpoints and anything else that stops the workers between epochs."""
    pauses = []
    for attempt in attempts:
        for prev, cur in zip(attempt["epochs"], attempt["epochs"][1:]):
            pauses.append(max(0.0, cur["time"] - cur["seconds"] - prev["time"]))
    return pauses


def fixed_costs(attempts, done, history, timings):
    """Where the time outside the epochs went, from the command's start to fit() returning."""
    rank0 = done[0]
    first_start = attempts[0]["start"]["attempt_started"]
    first_fit_call = attempts[0]["fit_started"] or first_start
    first_step = attempts[0]["first_step"]
    process_start = timings.get("process_start", timings["script_start"])
    teardown = timings["fit_returned"] - rank0["fit_ended"]
    return {
        "interpreter_start_seconds": timings["script_start"] - process_start,
        "imports_and_data_check_seconds": timings["imports_done"] - timings["script_start"],
        "ray_init_seconds": timings["ray_ready"] - timings["imports_done"],
        # Building the trainer (no TensorFlow in the driver: tf_backend.py) and making the progress queue.
        "driver_setup_seconds": timings["fit_called"] - timings["ray_ready"],
        "worker_group_start_seconds": first_start - timings["fit_called"],
        "worker_setup_seconds": first_fit_call - first_start,
        # Of the worker setup, rank 0's steps (ray_worker.Spans): TensorFlow, strategy, data, model, ...
        "worker_setup_spans": attempts[0]["start"].get("setup_spans"),
        "start_to_fit_seconds": first_fit_call - timings["script_start"],
        # From the moment the command's process started to the end of the first training step (its tracing).
        "command_start_to_first_step_seconds": (first_step - process_start) if first_step else None,
        "first_step_seconds": (first_step - first_fit_call) if first_step else None,
        "first_epoch_excess_seconds": first_epoch_excess(history),
        "teardown_seconds": teardown,
        # The same three spans the baseline records, so compare.py can put the two sides side by side.
        "command_start_to_fit_seconds": first_fit_call - process_start,
        "after_fit_seconds": teardown,
        # Of the teardown: scoring the test shards, then Ray Train ending the worker group.
        "test_evaluation_seconds": (rank0["time"] - rank0["fit_ended"]) if "time" in rank0 else None,
        # Of the scoring, rank 0's: a plain model built, the trained weights copied into it, its share scored.
        "test_evaluation_spans": rank0["counts"].get("spans"),
        "worker_group_shutdown_seconds": (timings["fit_returned"] - max(d["time"] for d in done)
                                          if all("time" in d for d in done) else None),
        "max_epoch_pause_seconds": max(epoch_pauses(attempts), default=0.0),
        "fit_edges": fit_edges(rank0),
    }


def fit_edges(rank0):
    """Of rank 0's model.fit, the seconds outside its epochs: before the first epoch began, from the last epoch's
    callbacks' end (its report and checkpoint included) to Keras' end of training, and from there to fit
    returning (ray_worker.keep_iterators says what stalled there)."""
    marks, spans = rank0.get("fit_marks") or {}, {}
    if "first_epoch_begin" in marks:
        spans["before_first_epoch"] = marks["first_epoch_begin"] - rank0["fit_started"]
    if "train_end" in marks:
        if "last_epoch_done" in marks:
            spans["after_last_epoch"] = marks["train_end"] - marks["last_epoch_done"]
        spans["train_end_to_return"] = rank0["fit_ended"] - marks["train_end"]
    return spans


def run_config(config, workers, evaluation, summary):
    """The results' `config`: the run's settings (every recorded row, by the resolved run), and what the
    workers made of them."""
    if config.batch_size_mode == "per-worker":
        semantics = (f"BATCH_SIZE={config.batch_size} is per worker: each of {config.num_workers} workers takes "
                     f"{config.per_worker_batch} images per step, {config.global_batch} in all")
    else:
        semantics = f"BATCH_SIZE={config.batch_size} is global: split into {config.per_worker_batch} per worker"
    # Every recorded setting comes from the resolved run; what follows is what the workers made of them.
    return {
        **config.record(),
        "batch_size_semantics": semantics,
        "learning_rate_rule": f"{config.lr_scaling}: LEARNING_RATE x {config.lr_factor:.4g} "
                              f"(global batch {config.global_batch} / BATCH_SIZE {config.batch_size})",
        "data_source": summary["data_source"],
        "train_samples": sum(w["shard_size"] for w in workers),
        "train_samples_available": summary["sizes"]["train"],
        "val_samples": sum(w["val_shard_size"] for w in workers),
        "test_samples": evaluation["test_samples"],
        "tf_threads": workers[0]["tf_threads"],
        "steps_per_epoch": workers[0]["steps_per_epoch"],
        "images_per_step_per_worker": workers[0].get("images_per_step"),
        "allreduce_dtype": config.allreduce_dtype_used,
        "storage_dir": config.storage_dir,
        "ray_address": config.ray_address or "(private local Ray)",
    }


def checkpoint_account(config, all_epochs, summary, ray_result):
    """Every checkpoint written, in every attempt (from the epoch messages: a failed attempt's writes are in no
    Result), the latest one as Ray Train committed it, and the controller's final state."""
    checkpointed = [e for e in all_epochs if e.get("checkpointed")]
    latest = ray_result.checkpoint
    return {
        "policy": config.checkpoint_policy,
        "saved": len(checkpointed),
        "seconds": sum(e["checkpoint_seconds"] or 0.0 for e in checkpointed),
        "epochs": [e["epoch"] for e in checkpointed],
        "reasons": {str(e["epoch"]): e.get("checkpoint_reason") for e in all_epochs},
        # Keyed like reasons, so a redone epoch's entry is the attempt that went on from it.
        "seconds_by_epoch": {str(e["epoch"]): e["checkpoint_seconds"] for e in checkpointed},
        "latest": {"epoch": (ray_result.metrics or {}).get("epoch"), "path": latest.path} if latest else None,
        "controller_state": summary["controller"],
    }


def assemble_result(config, ray_result, messages, shape, timings):
    """The results document of a Ray run. `config`: its RayRunConfig; `ray_result`: what trainer.fit() returned
    (a ray.train.Result, or anything with its return_value, metrics and checkpoint); `messages`: the queue's."""
    summary = ray_result.return_value
    attempts = split_attempts(messages)
    done = sorted((m for m in messages if m["type"] == "done"), key=lambda m: m["rank"])
    if not isinstance(summary, dict) or not attempts or len(done) != config.num_workers:
        raise RuntimeError(f"expected a final report from {config.num_workers} workers and rank 0's summary, got "
                           f"{len(done)} report(s) and {'a' if isinstance(summary, dict) else 'no'} summary")
    workers = sorted({w["rank"]: w for w in attempts[-1]["workers"]}.values(), key=lambda w: w["rank"])
    first_fit = next((a["fit_started"] for a in attempts if a["fit_started"]), done[0]["fit_started"])
    evaluation = summarize_counts(combine_counts([d["counts"] for d in done]), summary["class_names"])
    all_epochs = [e for a in attempts for e in a["epochs"]]
    history = summary["history"]
    return make_result(
        "ray_distributed", config.run_id, run_config(config, workers, evaluation, summary), history,
        done[0]["fit_ended"] - first_fit, evaluation, summary["num_parameters"], summary["accuracy_meaningful"],
        environment_info(cpus_used=config.num_workers * config.cpus_per_worker, ray_cluster=shape,
                         tf_threads=workers[0]["tf_threads"]),
        images_trained=len(all_epochs) * workers[0]["steps_per_epoch"] * config.global_batch,
        workers=[{**{k: v for k, v in w.items() if k not in ("type", "time")},
                  "epoch_cpu": next((d.get("epoch_cpu") for d in done if d["rank"] == w["rank"]), None)}
                 for w in workers],
        fixed_costs=fixed_costs(attempts, done, history, timings),
        fault_tolerance=recovery_account(attempts),
        checkpoints=checkpoint_account(config, all_epochs, summary, ray_result),
    )
