"""What Temporal costs a sweep: the same quick sweep (baseline, Ray 1 and 2 workers: the quick recipe, strong
scaling) run as the kit runs it, `python -m training.sweep run` (embedded server, workflow, worker,
activities), and run without Temporal: the same runs, with the same command lines from the same builder and one
local Ray cluster started for the first Ray run, launched one after another through training/launch.py.
Alternated, so that drift of the machine hits both alike; prints each wall time and the medians.

    python -m benchmarks.sweep_overhead [--repeats 3] [--folder DIR] [--no-docs]   (starts Ray: run it alone)

Writes its figures into BENCHMARKS.md's sweep-overhead block (--no-docs: only prints them).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from training import launch
from training.core import settings
from training.core.scaling_metrics import spread

QUICK = dict(settings.QUICK, SCALING="strong")
SWEEP = ["--sweep", "1,2", "--scaling", "strong"]


def with_temporal(folder, name, env):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "training.sweep", "run", *SWEEP, "--experiment", name],
                          env=dict(env, RESULTS_DIR=folder), cwd=launch.REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: the sweep failed (exit {done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.monotonic() - started


def without_temporal(folder, name, env):
    """The sweep's runs through the launcher alone, as its activity would start them."""
    from training.sweep import activities, workflow
    from training.sweep.__main__ import make_plan, parse_args

    os.environ.update(env)
    plan = make_plan(parse_args(["run", *SWEEP, "--experiment", name, "--results-dir", folder]))
    started = time.monotonic()
    ray_runs = [run for run in plan.runs if run.kind == "ray"]
    cluster = launch.LocalCluster(max(run.workers for run in ray_runs), max(run.cpus_per_worker for run in ray_runs))
    try:
        for run in plan.runs:
            run_dir = os.path.join(plan.experiment_dir, "runs", run.run_id)
            os.makedirs(run_dir, exist_ok=True)
            request = workflow.RunRequest(experiment_dir=plan.experiment_dir, scaling=plan.scaling, target="local",
                                          run=run, run_timeout_s=0)
            ray_env = cluster.ensure() if run.kind == "ray" else {}
            argv, run_env, _ = activities.run_command(request, run_dir, 1, ray_env)
            with open(os.path.join(run_dir, "attempt-1.log"), "wb") as log:
                code = launch.start(argv, run_env, stdout=log).wait()
            if code != 0:
                raise SystemExit(f"error: run {run.run_id} failed (exit {code}); its log is in {run_dir}")
    finally:
        cluster.stop()
    return time.monotonic() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", default=None)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    folder = args.folder or tempfile.mkdtemp(prefix="kit-sweep-overhead-")
    env = {k: v for k, v in os.environ.items() if k not in settings.BY_NAME}
    env.update(QUICK, PYTHONPATH=launch.REPO_ROOT)
    seconds = {"with_temporal": [], "without_temporal": []}
    for repeat in range(1, args.repeats + 1):
        for kind, measure in (("with_temporal", with_temporal), ("without_temporal", without_temporal)):
            value = measure(os.path.join(folder, kind), f"overhead-{repeat}", env)
            seconds[kind].append(round(value, 1))
            print(f"repeat {repeat}: {kind} {value:.1f}s", flush=True)
    summary = {kind: spread(values) for kind, values in seconds.items()}
    summary["overhead_seconds_median"] = summary["with_temporal"]["median"] - summary["without_temporal"]["median"]
    print(json.dumps({"seconds": seconds, "summary": summary}, indent=1))
    if not args.no_docs:
        write_block(seconds, summary)


def write_block(seconds, summary):
    from benchmarks.quick_start_docs import machine, replace_block

    def cell(kind):
        s = summary[kind]
        return f"{s['median']:.1f} s ({s['min']:.1f}-{s['max']:.1f}, n={s['n']})"

    widest = max(summary[kind]["max"] - summary[kind]["min"] for kind in ("with_temporal", "without_temporal"))
    body = "\n".join([
        f"Measured on {machine()}, {time.strftime('%Y-%m-%d')}, alternating the two ways.", "",
        "| Way | Wall time per sweep: median (min-max) | Each repeat (s) |", "|---|---|---|",
        f"| with Temporal (`python -m training.sweep run --sweep 1,2 --scaling strong`) | {cell('with_temporal')} | "
        f"{', '.join(map(str, seconds['with_temporal']))} |",
        f"| the same runs through `training/launch.py` alone | {cell('without_temporal')} | "
        f"{', '.join(map(str, seconds['without_temporal']))} |", "",
        f"Difference of the medians: {summary['overhead_seconds_median']:+.1f} s per sweep; the repeats of one way "
        f"alone spread over up to {widest:.1f} s."])
    path = os.path.join(launch.REPO_ROOT, "BENCHMARKS.md")
    with open(path) as handle:
        text = replace_block(handle.read(), "sweep-overhead", body)
    from training.core import atomic_files

    atomic_files.write_text(path, text)
    print(f"Wrote the sweep-overhead block of {path}")


if __name__ == "__main__":
    main()
