"""BENCHMARKS.md from the benchmark's JSON: the machine, versions, command, the table and the targets."""

TARGETS = [
    # (name, how it is read, predicate on the summary, the target as stated)
    ("parallel efficiency, 2 workers", lambda s: s["ratios"]["parallel_efficiency"]["median"], lambda v: v >= 0.95,
     ">= 0.95"),
    ("Ray 1 worker vs 1-thread baseline (epoch time ratio)",
     lambda s: s["ratios"]["ray_overhead_equal_resources"]["median"], lambda v: v <= 1.03, "<= 1.03"),
    ("Ray N workers vs all-threads baseline (speedup)",
     lambda s: s["ratios"]["honest_speedup_vs_all_threads"]["median"], lambda v: v >= 1.15, ">= 1.15"),
    ("accuracy delta, digits, same epochs (points)", lambda s: 100 * s["accuracy"]["delta"],
     lambda v: abs(v) <= 2, "within +-2"),
    ("command start to fit (s)", lambda s: s["ray_fixed_costs"]["start_to_fit_seconds"]["median"],
     lambda v: v < 10, "< 10"),
    ("largest pause between epochs (s)", lambda s: s["ray_fixed_costs"]["max_epoch_pause_seconds"]["max"],
     lambda v: v <= 0.5, "<= 0.5"),
    ("fraction of measured FLOP peak, N workers", lambda s: s["flops"]["fraction_of_peak"], lambda v: v >= 0.7,
     ">= 0.70"),
]


def _s(stat, spec=".2f"):
    if not stat:
        return "n/a"
    return f"{stat['median']:{spec}} ({stat['min']:{spec}}-{stat['max']:{spec}}, n={stat['n']})"


def table(doc):
    s = doc["summary"]
    lines = ["| Run | CPUs | Steady epoch s | Steady images/s | Largest epoch pause s | Wall s |",
             "|---|---:|---|---|---|---|"]
    for name, row in s["rows"].items():
        lines.append(f"| {name} | {row['cpus']} | {_s(row['steady_epoch_seconds'])} | "
                     f"{_s(row['steady_images_per_second'], '.1f')} | {_s(row['max_epoch_pause_seconds'])} | "
                     f"{_s(row['wall_seconds'], '.1f')} |")
    lines += ["", "| Ratio (per repeat, then median) | Value |", "|---|---|"]
    for name, stat in s["ratios"].items():
        lines.append(f"| {name} | {_s(stat, '.3f')} |")
    lines += ["", "| Target | Measured | Target | Met |", "|---|---:|---|---|"]
    for name, read, ok, stated in TARGETS:
        try:
            value = read(s)
        except (KeyError, TypeError):
            value = None
        met = "n/a" if value is None else ("yes" if ok(value) else "**no**")
        lines.append(f"| {name} | {'n/a' if value is None else f'{value:.3f}'} | {stated} | {met} |")
    return "\n".join(lines)


def markdown(doc):
    s, p, m, e = doc["summary"], doc["probes"], doc["machine"], doc["environment"]
    fixed = s["ray_fixed_costs"]
    ar = s["allreduce"]
    return f"""# Benchmarks

Written by `{doc['command']}` ({doc['seconds'] / 60:.1f} min); the data is in `benchmarks/results.json`.
Rerun it to replace both. Medians of {doc['settings']['repeats']} repeats, with min-max and n; ratios are taken
within each repeat (both sides ran in the same repeat) and then their median is reported.

- Machine: {m['cpu']}, {m['cpus']} CPUs ({', '.join(m['cpu_flags'])}), {m['platform']}
- Versions: Ray {e['ray_version']}, TensorFlow {e['tensorflow_version']}, tf-keras {e['tf_keras_version']},
  Python {e['python_version']}
- Settings: {doc['settings']}. Throughput runs use synthetic data at a per-worker batch of
  {doc['settings']['batch_size']}; Ray workers have 1 CPU each on a local cluster of a head (0 CPUs) and
  {doc['settings']['workers']} worker nodes; no checkpoints. Steady epoch = median epoch time after the first.

## Results

{table(doc)}

## Fixed costs of a Ray run (N workers)

| Phase | Seconds |
|---|---|
""" + "\n".join(f"| {k} | {_s(v)} |" for k, v in fixed.items()) + f"""

## Where the time goes

- All-reduce: {ar['bytes_per_step'] / 1e6:.1f} MB of float32 gradients per step
  ({s['rows']['ray_1worker']['cpus']} CPU per worker). Step time with N workers {_s(ar['step_seconds_ray_n'], '.3f')} s
  against {_s(ar['step_seconds_ray_1'], '.3f')} s with one: the difference, {ar['sync_cost_seconds_per_step']:.3f} s
  per step, is what synchronizing costs (the all-reduce plus waiting for the slower worker).
- FLOPs: {p['flops_per_training_image'] / 1e9:.3f} GFLOP per training image ({p['flops_counting']}).
  Measured peak: {p['peak_gflops']:.1f} GFLOP/s (float32 2048x2048 matmul in TensorFlow, {p['peak_threads']} threads).
  The N-worker run achieved {_s(s['flops']['achieved_gflops_ray_n'], '.1f')} GFLOP/s.
- Input pipeline alone: {p['input_pipeline_images_per_second']:.0f} images/s, far above any training rate here:
  never the bottleneck.
- Accuracy (digits, {doc['settings']['accuracy_epochs']} epochs, global batch 64 on both sides): baseline
  {s['accuracy']['baseline']:.4f}, Ray {s['accuracy']['ray']:.4f}.

## Targets not met: what the measurements point to

- **Ray at 1 worker against the 1-thread baseline** (`ray_overhead_equal_resources`): most of the gap was the
  allocator (below). What remains is MultiWorkerMirroredStrategy's one-replica step (its collectives and
  per-replica variables) and the Ray node processes that share the same cores; the Ray scheduler itself is idle
  during an epoch (the largest pause between epochs is small). Single runs on this virtual machine vary by
  several percent, so read the min-max before the median.
- **2 workers against 2 threads on the same 2 cores**: the sync cost above (the all-reduce of every gradient
  over gRPC on loopback, and waiting for the slower worker) runs on the same cores that compute, and two
  processes that each stream their own activations through shared caches and memory slow each other down; one
  process with two threads pays neither. The remaining lever is fewer all-reduces per image (a larger
  per-worker batch), which this benchmark holds fixed so that both sides do the same work.
- **Start-up**: `worker_group_start_seconds` dominates (Ray Train's controller, the worker actors, the
  `working_dir` runtime environment and importing TensorFlow in each worker), then `ray_init` and data loading.
- Not yet tried: gradient packing through `CommunicationOptions(bytes_per_pack=...)`, XLA, prestarted workers
  without a `working_dir`. Each should be measured with this benchmark before it is kept.

## What was tried

| Change | Measured effect | Kept |
|---|---|---|
| tf.data without AUTOTUNE (one map thread, prefetch 2, autotune off) | 2-thread baseline on 1,024 digits, 3 epochs: pauses at epoch boundaries 9.9 s -> 0.01 s, fit 53.7 s -> 33.5 s (one run each, a Keras callback timing epoch ends and starts, AMD EPYC AVX2) | yes |
| TensorFlow threads held to each worker's CPU share (intra-op = CPUs, inter-op = 1) | recorded in every result (`tf_threads`); the earlier lead measured 14% slower without it | yes |
| Per-worker datasets through `strategy.distribute_datasets_from_function` (a correctness fix) | a plain per-worker dataset given to `fit()` under MultiWorkerMirroredStrategy is rebatched as if it held global batches: each worker trained 32 of each 64 images and discarded the rest, so Ray looked twice as fast as it was. Same `--quick` settings, one run each: speedup 1.62x before, 1.20x after; every Ray result now records `images_per_step` per worker | yes |
| TensorFlow's BFC allocator and one glibc malloc arena in every Ray worker (`tf_env.ALLOCATOR_ENV`, through the job's runtime_env and the image) | under any tf.distribute strategy the input comes through a multi-device iterator on tf.data's threads, and with glibc's per-thread arenas every step faulted its tensors back in: `benchmarks/allocator_probe.py` (3 fresh processes per case) measured a strategy's step at 1.569 s with 164,472 page faults per step without the settings and 1.132 s with 6,796 with them, against 1.082-1.190 s for the same step without a strategy. `scripts/benchmark.sh --quick`, 2 repeats, run before (commit def465f, `benchmarks/results.json` there) and after: Ray 1 worker steady epoch 20.03 s -> 15.15 s, `ray_overhead_equal_resources` 1.471 -> 1.089, `honest_speedup_vs_all_threads` 0.811 -> 0.993, `scale_out_speedup_vs_1thread` 1.176 -> 1.426; `parallel_efficiency` 0.856 -> 0.776, because the 1-worker run gained more than the 2-worker run | yes |
| Batch normalization momentum 0.9 instead of 0.99 | quick runs (tens of steps) scored near chance at 0.99 (test accuracy 0.075 after 2 epochs of digits) | yes |
"""
