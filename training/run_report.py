"""Turns the messages Ray workers sent during a run into the results document: history, test counts, where each
worker ran, fixed costs, checkpoints, and what failures cost.

Pure Python over plain dicts (no Ray), so every number here is testable on made-up message streams.
Message types (see ray_worker.py): worker (each rank, each attempt), fit_started / epoch (rank 0),
failure_injected, done (each rank, last attempt only).
"""

from evaluation import combine_counts, summarize_counts
from fitting import first_epoch_excess
from results import environment_info, make_result


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


def assemble_result(args, run_id, shape, messages, timings, storage_dir):
    attempts = split_attempts(messages)
    done = sorted((m for m in messages if m["type"] == "done"), key=lambda m: m["rank"])
    if not attempts or len(done) != args.num_workers:
        raise RuntimeError(f"expected a final report from {args.num_workers} workers, got {len(done)}")
    rank0 = done[0]
    final = attempts[-1]
    workers = sorted({w["rank"]: w for w in final["workers"]}.values(), key=lambda w: w["rank"])
    first_fit = next((a["fit_started"] for a in attempts if a["fit_started"]), rank0["fit_started"])
    training_time = rank0["fit_ended"] - first_fit
    evaluation = summarize_counts(combine_counts([d["counts"] for d in done]), rank0["class_names"])
    steps = workers[0]["steps_per_epoch"]
    all_epochs = [e for a in attempts for e in a["epochs"]]
    history = rank0["history"]
    checkpointed = [e for e in all_epochs if e.get("checkpointed")]
    sizes = rank0["sizes"]

    first_start = attempts[0]["start"]["attempt_started"]
    first_fit_call = attempts[0]["fit_started"] or first_start
    process_start = timings.get("process_start", timings["script_start"])
    teardown = timings["fit_returned"] - rank0["fit_ended"]
    fixed_costs = {
        "interpreter_start_seconds": timings["script_start"] - process_start,
        "imports_and_data_check_seconds": timings["imports_done"] - timings["script_start"],
        "ray_init_seconds": timings["ray_ready"] - timings["imports_done"],
        # Importing ray.train.tensorflow, which imports TensorFlow in the driver, and making the progress queue.
        "driver_setup_seconds": timings["fit_called"] - timings["ray_ready"],
        "worker_group_start_seconds": first_start - timings["fit_called"],
        "worker_setup_seconds": first_fit_call - first_start,
        "start_to_fit_seconds": first_fit_call - timings["script_start"],
        # From the moment the command's process started to the end of the first training step (its tracing).
        "command_start_to_first_step_seconds": ((attempts[0]["first_step"] - process_start)
                                                if attempts[0]["first_step"] else None),
        "first_step_seconds": (attempts[0]["first_step"] - first_fit_call) if attempts[0]["first_step"] else None,
        "first_epoch_excess_seconds": first_epoch_excess(history),
        "teardown_seconds": teardown,
        # The same three spans the baseline records, so compare.py can put the two sides side by side.
        "command_start_to_fit_seconds": first_fit_call - process_start,
        "after_fit_seconds": teardown,
        # Of the teardown: scoring the test shards, then Ray Train ending the worker group.
        "test_evaluation_seconds": (rank0["time"] - rank0["fit_ended"]) if "time" in rank0 else None,
        "worker_group_shutdown_seconds": (timings["fit_returned"] - max(d["time"] for d in done)
                                          if all("time" in d for d in done) else None),
        "max_epoch_pause_seconds": max(epoch_pauses(attempts), default=0.0),
    }
    config = {
        "epochs": args.epochs,
        "global_batch_size": args.global_batch,
        "per_worker_batch_size": args.per_worker_batch,
        "batch_size_mode": args.batch_size_mode,
        "batch_size_semantics": (f"BATCH_SIZE={args.batch_size} is per worker: each of {args.num_workers} workers "
                                 f"takes {args.per_worker_batch} images per step, {args.global_batch} in all"
                                 if args.batch_size_mode == "per-worker" else
                                 f"BATCH_SIZE={args.batch_size} is global: split into {args.per_worker_batch} "
                                 f"per worker"),
        "learning_rate": args.learning_rate * args.lr_factor,
        "base_learning_rate": args.learning_rate,
        "learning_rate_rule": f"{args.lr_scaling}: LEARNING_RATE x {args.lr_factor:.4g} "
                              f"(global batch {args.global_batch} / BATCH_SIZE {args.batch_size})",
        "seed": args.seed,
        "dataset": args.dataset,
        "data_source": rank0["data_source"],
        "train_samples": sum(w["shard_size"] for w in workers),
        "train_samples_available": sizes["train"],
        "val_samples": sum(w["val_shard_size"] for w in workers),
        "test_samples": evaluation["test_samples"],
        "num_workers": args.num_workers,
        "cpus_per_worker": args.cpus_per_worker,
        "use_gpu": args.use_gpu,
        "tf_threads": workers[0]["tf_threads"],
        "early_stopping_patience": args.early_stopping_patience,
        "steps_per_epoch": steps,
        "images_per_step_per_worker": workers[0].get("images_per_step"),
        "collective": args.collective,
        "allreduce_dtype": args.allreduce_dtype if args.num_workers > 1 else "float32",
        "checkpoint_policy": args.checkpoint_policy,
        "max_failures": args.max_failures,
        "inject_failure_epoch": args.inject_failure_epoch,
        "storage_dir": storage_dir,
        "ray_address": args.ray_address or "(private local Ray)",
    }
    result = make_result(
        "ray_distributed", run_id, config, history, training_time, evaluation, rank0["num_parameters"],
        rank0["accuracy_meaningful"],
        environment_info(cpus_used=args.num_workers * args.cpus_per_worker, ray_cluster=shape,
                         tf_threads=workers[0]["tf_threads"]),
        images_trained=len(all_epochs) * steps * args.global_batch,
        workers=[{**{k: v for k, v in w.items() if k not in ("type", "time")},
                  "epoch_cpu": next((d.get("epoch_cpu") for d in done if d["rank"] == w["rank"]), None)}
                 for w in workers],
        fixed_costs=fixed_costs,
        fault_tolerance=recovery_account(attempts),
        checkpoints={
            "policy": args.checkpoint_policy,
            "saved": len(checkpointed),
            "seconds": sum(e["checkpoint_seconds"] or 0.0 for e in checkpointed),
            "epochs": [e["epoch"] for e in checkpointed],
            "reasons": {str(e["epoch"]): e.get("checkpoint_reason") for e in all_epochs},
            "controller_state": rank0.get("controller"),
        },
    )
    return result
