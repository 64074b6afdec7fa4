"""The kit's own benchmark: baseline and Ray Train side by side in one run, repeated, with the ratios the kit's
claims rest on. Writes BENCHMARKS.md (machine, versions, command, table) and benchmarks/results.json.

    scripts/benchmark.sh [--quick]        (REPEATS, BENCH_EPOCHS, BENCH_TRAIN_SAMPLES, NUM_WORKERS override)

Every figure comes from the kit's own results files (training/core/results.py) of runs made here, except the peak
FLOP rate and the input pipeline rate, which are measured by the small probes in probes.py.
"""

import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

from benchmarks import cpu_sampler
from training import launch
from training.core import atomic_files
from training.core.scaling_metrics import efficiency, overhead, speedup, spread, steady_images_per_second


def stats(values):
    """The spread of the measured values, or None when none was (the report prints n/a)."""
    summary = spread(values)
    return summary if summary["n"] else None


def run_training(program, values, env, label, sample_workers=0):
    """Runs one trainer through the kit's launcher with the settings `values` (NAME -> value); with
    sample_workers, also who used the CPUs while that many trained. The benchmark sets every setting it
    depends on, so `env` carries none of the user's training settings."""
    argv = launch.command(program, "local", values, environ={})
    started = time.time()
    with cpu_sampler.Sampler(sample_workers) if sample_workers else contextlib.nullcontext() as sampler, \
            tempfile.TemporaryFile() as output:
        process = launch.start(argv, env, stdout=output)
        code = process.wait()
        output.seek(0)
        text = output.read().decode(errors="replace")
    if code != 0:
        sys.stderr.write(text[-5000:])
        raise SystemExit(f"error: benchmark run '{label}' failed (exit {code})")
    print(f"  {label}: {time.time() - started:.0f}s", flush=True)
    return sampler.shares() if sampler else None


def allreduce_probe(workers, dtype):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.allreduce_probe", "--workers", str(workers),
                           "--dtype", dtype], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: the all-reduce probe failed: {proc.stderr[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_throughput(opts, env, cluster_env, out_dir):
    """One repeat of the four configurations at the same per-worker batch, on synthetic data."""
    common = {"DATASET": "synthetic", "EPOCHS": opts.epochs, "TRAIN_SAMPLES": opts.train_samples,
              "TEST_SAMPLES": 200, "BATCH_SIZE": opts.batch_size, "SEED": 1}
    runs = {}
    for threads in sorted({1, opts.workers}):
        name = f"baseline_{threads}thread"
        path = os.path.join(out_dir, f"{name}.json")
        run_training("baseline", {**common, "THREADS": threads, "OUTPUT": path}, env, name)
        runs[name] = path
    ray_env = dict(env, **cluster_env)
    shares = None
    for workers in sorted({1, opts.workers}):
        name = f"ray_{workers}worker"
        path = os.path.join(out_dir, f"{name}.json")
        sampled = run_training("ray", {
            **common, "RAY_ADDRESS": cluster_env["RAY_ADDRESS"], "NUM_WORKERS": workers, "CPUS_PER_WORKER": 1,
            "CHECKPOINT_POLICY": "never", "STORAGE_PATH": os.path.join(out_dir, "ckpt"),
            "ALLREDUCE_DTYPE": opts.allreduce_dtype, "OUTPUT": path}, ray_env, name,
            sample_workers=workers if workers == opts.workers else 0)
        shares = sampled if workers == opts.workers else shares
        runs[name] = path
    from training.core.results import load_results

    loaded = {name: load_results(path) for name, path in runs.items()}
    loaded["_cpu_shares"] = shares
    return loaded


def measure_accuracy(opts, env, cluster_env, out_dir):
    """Equal accuracy after the same epochs: digits, same global batch and steps on both sides."""
    common = {"DATASET": "digits", "EPOCHS": opts.accuracy_epochs, "SEED": 3, "BATCH_SIZE": 64}
    base = os.path.join(out_dir, "acc_baseline.json")
    ray = os.path.join(out_dir, "acc_ray.json")
    run_training("baseline", {**common, "THREADS": opts.workers, "OUTPUT": base}, env, "accuracy: baseline")
    run_training("ray", {**common, "RAY_ADDRESS": cluster_env["RAY_ADDRESS"], "NUM_WORKERS": opts.workers,
                         "BATCH_SIZE_MODE": "global", "ALLREDUCE_DTYPE": opts.allreduce_dtype,
                         "CHECKPOINT_POLICY": "never", "STORAGE_PATH": os.path.join(out_dir, "ckpt"),
                         "OUTPUT": ray}, dict(env, **cluster_env), "accuracy: ray")
    from training.core.results import load_results

    return load_results(base)["test_accuracy"], load_results(ray)["test_accuracy"]


def worker_cpu(results):
    """Per run: each worker's (or the baseline process's) steady epochs, after the first, as CPU seconds used and
    seconds its busiest thread waited for a CPU, both per second of wall time; medians over workers, epochs and
    repeats."""
    used, waited = [], []
    for result in results:
        # A baseline's own history carries the same fields for its one process.
        for worker in result.get("workers") or [{"epoch_cpu": result["history"]}]:
            for epoch in (worker.get("epoch_cpu") or [])[1:]:
                if epoch.get("cpu_seconds") is not None and epoch["seconds"]:
                    used.append(epoch["cpu_seconds"] / epoch["seconds"])
                if epoch.get("cpu_wait_seconds") is not None and epoch["seconds"]:
                    waited.append(epoch["cpu_wait_seconds"] / epoch["seconds"])
    return {"worker_cpu_busy_fraction": stats(used), "worker_compute_wait_fraction": stats(waited)}


def summarize(repeats, opts, probes, accuracy):
    n = opts.workers
    keys = {"b1": "baseline_1thread", "bn": f"baseline_{n}thread", "r1": "ray_1worker", "rn": f"ray_{n}worker"}
    per = {k: [rep[name] for rep in repeats] for k, name in keys.items()}

    def epoch(k):
        return [r["steady_state_epoch_seconds"] for r in per[k]]

    ratios = {
        # Ratios within one repeat, then the median over repeats: each ratio's two sides ran minutes apart.
        "ray_overhead_equal_resources": [overhead(r1, b1) for r1, b1 in zip(epoch("r1"), epoch("b1"))],
        "parallel_efficiency": [efficiency(speedup(r1, rn), n) for r1, rn in zip(epoch("r1"), epoch("rn"))],
        "honest_speedup_vs_all_threads": [speedup(bn, rn) for bn, rn in zip(epoch("bn"), epoch("rn"))],
        "scale_out_speedup_vs_1thread": [speedup(b1, rn) for b1, rn in zip(epoch("b1"), epoch("rn"))],
    }
    rows = {}
    for k, name in keys.items():
        rows[name] = {
            "cpus": per[k][0]["environment"]["cpus_used"],
            "steady_epoch_seconds": stats(epoch(k)),
            "steady_images_per_second": stats([steady_images_per_second(r) for r in per[k]]),
            "max_epoch_pause_seconds": stats([r.get("fixed_costs", {}).get("max_epoch_pause_seconds")
                                              for r in per[k]]),
            "wall_seconds": stats([r.get("wall_time_seconds") for r in per[k]]),
        }
    fixed = {}
    for field in ("interpreter_start_seconds", "imports_and_data_check_seconds", "ray_init_seconds",
                  "driver_setup_seconds", "worker_group_start_seconds", "worker_setup_seconds",
                  "start_to_fit_seconds", "first_step_seconds", "command_start_to_first_step_seconds",
                  "first_epoch_excess_seconds", "teardown_seconds", "max_epoch_pause_seconds"):
        fixed[field] = stats([r["fixed_costs"].get(field) for r in per["rn"]])
    for k in keys:
        rows[keys[k]].update(worker_cpu(per[k]))
    windows = [rep["_cpu_shares"] for rep in repeats if rep.get("_cpu_shares")]
    cpu_shares = None
    if windows:
        groups = sorted({g for w in windows for g in w["cpus"]})
        cpu_shares = {"repeats": len(windows), "windows": sum(w["windows"] for w in windows),
                      "cpus": {g: stats([w["cpus"].get(g, 0.0) for w in windows]) for g in groups}}
    rn_step = stats([s / r["config"]["steps_per_epoch"] for s, r in zip(epoch("rn"), per["rn"])])
    r1_step = stats([s / r["config"]["steps_per_epoch"] for s, r in zip(epoch("r1"), per["r1"])])
    params = per["rn"][0]["num_parameters"]
    flops_image = probes["flops_per_training_image"]
    achieved = stats([steady_images_per_second(r) * flops_image / 1e9 for r in per["rn"]])
    return {
        "rows": rows,
        "ratios": {k: stats(v) for k, v in ratios.items()},
        "ray_fixed_costs": fixed,
        "allreduce": {
            "bytes_per_step": params * 4,
            "dtype": opts.allreduce_dtype,
            "step_seconds_ray_n": rn_step,
            "step_seconds_ray_1": r1_step,
            "sync_cost_seconds_per_step": (rn_step["median"] - r1_step["median"]) if rn_step and r1_step else None,
            "probe": probes.get("allreduce"),
        },
        "cpu_shares_ray_n": cpu_shares,
        "flops": {"per_training_image": flops_image, "achieved_gflops_ray_n": achieved,
                  "peak_gflops": probes["peak_gflops"],
                  "fraction_of_peak": achieved["median"] / probes["peak_gflops"] if achieved else None},
        "input_pipeline_images_per_second": probes["input_pipeline_images_per_second"],
        "accuracy": {"baseline": accuracy[0], "ray": accuracy[1], "delta": accuracy[1] - accuracy[0]},
    }


# Blocks other programs measure and write (scripts/measure-quick-start.sh, benchmarks/sweep_overhead.py,
# benchmarks/startup_trace.py): a rerun of this benchmark keeps them as they are.
KEPT_BLOCKS = ("quick-start-table", "sweep-overhead", "startup-trace")


def write_markdown(path, text):
    """Writes BENCHMARKS.md, keeping the blocks other programs measured there."""
    try:
        with open(path) as handle:
            old = handle.read()
    except OSError:
        old = ""
    for name in KEPT_BLOCKS:
        kept = re.search(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->", old, re.S)
        if kept:
            text = re.sub(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->", lambda _: kept.group(0), text, count=1,
                          flags=re.S)
    atomic_files.write_text(path, text)


def main(argv=None):
    from training.core import settings

    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    parser = settings.parser_for("benchmark", __doc__.splitlines()[0],
                                 overlay=settings.PROGRAM_DEFAULTS["benchmark --quick"] if quick else None)
    parser.add_argument("--quick", action="store_true", help="2 repeats of smaller runs, under 10 minutes on 2 cores")
    parser.add_argument("--output-md", default=os.path.join(REPO, "BENCHMARKS.md"))
    parser.add_argument("--output-json", default=os.path.join(HERE, "results.json"))
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the Markdown from the JSON of an earlier run (after a report change)")
    opts = parser.parse_args(argv)
    if opts.render:
        from benchmarks import report

        with open(opts.output_json) as handle:
            doc = json.load(handle)
        write_markdown(opts.output_md, report.markdown(doc))
        print(f"Wrote {opts.output_md} from {opts.output_json}")
        return
    # The names the measurement and its report use.
    opts.workers, opts.repeats, opts.epochs = opts.num_workers, opts.repeats, opts.bench_epochs
    opts.train_samples, opts.accuracy_epochs = opts.bench_train_samples, opts.bench_accuracy_epochs
    opts.allreduce_dtype, opts.pin_cpus = opts.bench_allreduce_dtype, opts.local_ray_pin_cpus
    command = "scripts/benchmark.sh" + (" --quick" if opts.quick else "")
    started = time.time()

    from benchmarks import probes

    # The runs get every setting they depend on as a flag; none of the user's may change them unseen.
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS" and k not in settings.BY_NAME}
    env["PYTHONPATH"] = REPO
    print("Probes: FLOP peak, FLOPs per image, input pipeline", flush=True)
    probe = probes.run_all(opts.workers)
    print("Probe: the gradient all-reduce on its own", flush=True)
    probe["allreduce"] = {dtype: allreduce_probe(opts.workers, dtype)
                          for dtype in dict.fromkeys(("float32", opts.allreduce_dtype))} if opts.workers > 1 else None
    out_dir = tempfile.mkdtemp(prefix="kit-bench-")
    try:
        cluster = launch.LocalCluster(opts.workers, 1, port=6590).start()
    except launch.LaunchError as err:
        raise SystemExit(f"error: {err}") from None
    try:
        cluster_env = cluster.env
        repeats = []
        for i in range(opts.repeats):
            print(f"Repeat {i + 1}/{opts.repeats}", flush=True)
            repeats.append(measure_throughput(opts, env, cluster_env, out_dir))
        print("Accuracy check (digits)", flush=True)
        accuracy = measure_accuracy(opts, env, cluster_env, out_dir)
    finally:
        cluster.stop()
    summary = summarize(repeats, opts, probe, accuracy)
    from training.core.results import environment_info

    doc = {
        "command": command,
        "settings": {k: getattr(opts, k) for k in ("workers", "repeats", "epochs", "train_samples", "batch_size",
                                                   "accuracy_epochs", "allreduce_dtype", "pin_cpus")},
        "machine": {"cpu": probes.cpu_model(), "cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "cpu_flags": probes.vector_flags()},
        "environment": environment_info(cpus_used=len(os.sched_getaffinity(0))),
        "seconds": time.time() - started,
        "summary": summary,
        "probes": probe,
    }
    atomic_files.write_json(opts.output_json, doc)
    from benchmarks import report

    write_markdown(opts.output_md, report.markdown(doc))
    print(report.table(doc))
    print(f"Wrote {opts.output_md} and {opts.output_json} in {doc['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
