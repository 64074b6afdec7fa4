"""Where Ray's start-up goes, down to each process: the quick run's Ray side on the kit's local cluster, traced.

    .venv/bin/python -m benchmarks.startup_trace [--repeats 3]     (scripts/benchmark.sh's environment)

Starts the local cluster as `run-benchmark.sh --local` does (scripts/lib/local_cluster.sh), runs the quick recipe's
Ray side (training.ray_training, 2 workers x 1 CPU) REPEATS times under benchmarks.process_trace, and writes the
medians into BENCHMARKS.md's startup-trace block: the kit's phases (from the run's own results file) and every
process the run started (when, relative to the driver's start, and the CPU it used), the cluster's start apart.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.process_trace import ProcessTrace
from training.core import atomic_files

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LIB = f"source {REPO}/scripts/lib/common.sh; source {REPO}/scripts/lib/local_cluster.sh"
BLOCK = re.compile(r"<!-- startup-trace:begin -->.*?<!-- startup-trace:end -->", re.S)
WORKERS = 2
# The kit's phases, as the run's results file names them (training/distributed/run_report.py).
PHASES = (
    ("interpreter_start_seconds", "interpreter start"),
    ("imports_and_data_check_seconds", "imports and data check (driver)"),
    ("ray_init_seconds", "ray.init (driver joins the cluster)"),
    ("driver_setup_seconds", "trainer and progress channel (driver)"),
    ("worker_group_start_seconds", "worker group start: controller, placement, worker processes, backend"),
    ("worker_setup_seconds", "worker setup: TensorFlow, strategy, data, model, up to model.fit"),
    ("first_step_seconds", "first training step (tracing)"),
)


def _bash(script, timeout):
    return subprocess.run(["bash", "-c", f"{LIB}; {script}"], capture_output=True, text=True, timeout=timeout)


def one_run(out_dir, index):
    """(phases, processes, cluster_seconds) of one traced Ray run on a fresh local cluster."""
    from training.core import settings

    state = os.path.join(out_dir, f"ray-{index}")
    started = time.monotonic()
    proc = _bash(f"local_cluster::start {WORKERS} 1 {state} >&2; env | grep -E '^(RAY_|KIT_RAY_)'", 240)
    if proc.returncode != 0:
        raise SystemExit(f"error: the local Ray cluster did not start: {proc.stderr[-1500:]}")
    cluster_seconds = time.monotonic() - started
    cluster_env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    output = os.path.join(out_dir, f"ray-{index}.json")
    values = {**settings.QUICK, "NUM_WORKERS": WORKERS, "CPUS_PER_WORKER": 1, "RAY_ADDRESS": cluster_env["RAY_ADDRESS"],
              "OUTPUT": output, "STORAGE_PATH": os.path.join(out_dir, f"ckpt-{index}")}
    argv = settings.trainer_argv("ray", "local", values, environ={})
    try:
        with ProcessTrace() as trace:
            run = subprocess.Popen([sys.executable, *argv], env=dict(os.environ, **cluster_env), cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            stdout, stderr = run.communicate()
        roots = [run.pid] + [int(p) for p in open(os.path.join(state, "pids")).read().split()]
    finally:
        _bash(f"local_cluster::stop {state}", 120)
    if run.returncode != 0:
        raise SystemExit(f"error: the traced Ray run failed: {(stdout + stderr)[-2000:]}")
    with open(output) as handle:
        result = json.load(handle)
    processes = trace.processes(roots)
    driver = next(p for p in processes if p["pid"] == run.pid)
    rows = [{"name": p["name"], "start": p["start"] - driver["start"], "cpu": p["cpu_seconds"]} for p in processes]
    return result["fixed_costs"], rows, cluster_seconds


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _spread(values):
    values = [v for v in values if v is not None]
    return f"{min(values):.1f}-{max(values):.1f}" if values else "-"


def summarize(runs):
    """Medians over the runs: each phase, and each process by its name and order of start within its name."""
    phases = [(label, _median([r[0].get(key) for r in runs]), _spread([r[0].get(key) for r in runs]))
              for key, label in PHASES]
    keyed = []
    for _, rows, _ in runs:
        counts = {}
        for row in rows:
            counts[row["name"]] = counts.get(row["name"], 0) + 1
            keyed.append(((row["name"], counts[row["name"]]), row))
    names = sorted({k for k, _ in keyed}, key=lambda k: _median([r["start"] for kk, r in keyed if kk == k]))
    processes = [(name if n == 1 else f"{name} #{n}", _median([r["start"] for kk, r in keyed if kk == (name, n)]),
                  _median([r["cpu"] for kk, r in keyed if kk == (name, n)]),
                  sum(1 for kk, _ in keyed if kk == (name, n))) for name, n in names]
    totals = {"command_start_to_fit": [r[0]["command_start_to_fit_seconds"] for r in runs],
              "command_start_to_first_step": [r[0]["command_start_to_first_step_seconds"] for r in runs],
              "cluster_start": [r[2] for r in runs]}
    return phases, processes, totals


def markdown(runs, command):
    phases, processes, totals = summarize(runs)
    lines = ["<!-- startup-trace:begin -->",
             f"Made by `{command}` ({len(runs)} runs, medians; the range in brackets). The Ray side of the quick "
             f"recipe on the local cluster, {WORKERS} workers x 1 CPU; times from the driver process's start.", "",
             "| phase (the run's `fixed_costs`) | seconds | range |", "|---|---:|---:|"]
    lines += [f"| {label} | {value:.2f} | {spread} |" for label, value, spread in phases if value is not None]
    for key, label in (("command_start_to_fit", "command start to model.fit"),
                       ("command_start_to_first_step", "command start to the end of the first step"),
                       ("cluster_start", "before that, not in the command: the local cluster's start")):
        lines.append(f"| **{label}** | **{_median(totals[key]):.2f}** | {_spread(totals[key])} |")
    lines += ["", "| process the run started | starts at (s) | CPU used (s) | seen in runs |", "|---|---:|---:|---:|"]
    lines += [f"| `{name}` | {start:.2f} | {cpu:.2f} | {seen} |" for name, start, cpu, seen in processes]
    lines.append("<!-- startup-trace:end -->")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs to take the medians of (default 3)")
    parser.add_argument("--output-md", default=os.path.join(REPO, "BENCHMARKS.md"))
    opts = parser.parse_args(argv)
    if opts.repeats < 1:
        parser.error("--repeats must be at least 1")
    with tempfile.TemporaryDirectory(prefix="kit-startup-") as out_dir:
        runs = []
        for index in range(opts.repeats):
            runs.append(one_run(out_dir, index))
            print(f"  run {index + 1}/{opts.repeats}: command start to model.fit "
                  f"{runs[-1][0]['command_start_to_fit_seconds']:.1f}s", flush=True)
    command = "python -m benchmarks.startup_trace" + (f" --repeats {opts.repeats}" if opts.repeats != 3 else "")
    block = markdown(runs, command)
    with open(opts.output_md) as handle:
        text = handle.read()
    if not BLOCK.search(text):
        raise SystemExit(f"error: {opts.output_md} has no startup-trace block to rewrite")
    atomic_files.write_text(opts.output_md, BLOCK.sub(lambda _: block, text, count=1))
    print(block)


if __name__ == "__main__":
    main()
