"""Where Ray's start-up goes, down to each process: the quick run's Ray side on the kit's local cluster, traced.

    .venv/bin/python -m benchmarks.startup_trace [--repeats 3]     (scripts/benchmark.sh's environment)

Starts the local cluster as `run-benchmark.sh --local` does (training/launch.py, the one launcher), runs the
quick recipe's Ray side (training.ray_training, 2 workers x 1 CPU) REPEATS times under benchmarks.process_trace,
and writes the medians into BENCHMARKS.md's startup-trace block: the kit's phases (from the run's own
results file) and every process the run started (when, relative to the driver's start, and the CPU it used),
the cluster's start apart.
"""

import argparse
import json
import os
import re
import statistics
import tempfile
import time

from benchmarks.process_trace import ProcessTrace
from training.core import atomic_files

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
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
    ("fit_edges.train_end_to_return", "inside model.fit, after Keras' end of training (not start-up)"),
    ("test_evaluation_seconds", "after model.fit: scoring the test set (not start-up)"),
    ("worker_group_shutdown_seconds", "after model.fit: Ray Train ending the worker group (not start-up)"),
)

# Rank 0's steps inside the worker setup (ray_worker.Spans), in the order they run.
SETUP_SPANS = (
    ("tensorflow", "TensorFlow: what is left of its import, thread pools"),
    ("strategy", "MultiWorkerMirroredStrategy"),
    ("data", "this worker's shard"),
    ("model", "the model built under the strategy"),
    ("checkpoint_cost", "one checkpoint written, its cost for the adaptive policy"),
    ("datasets", "tf.data datasets"),
    ("first_batch", "the first batch read"),
)


def one_run(out_dir, index):
    """(phases, processes, cluster_seconds) of one traced Ray run on a fresh local cluster."""
    from training import launch
    from training.core import settings

    started = time.monotonic()
    with launch.LocalCluster(WORKERS, 1) as cluster:
        cluster_seconds = time.monotonic() - started
        output = os.path.join(out_dir, f"ray-{index}.json")
        values = {**settings.QUICK, "NUM_WORKERS": WORKERS, "CPUS_PER_WORKER": 1,
                  "RAY_ADDRESS": cluster.env["RAY_ADDRESS"], "OUTPUT": output,
                  "STORAGE_PATH": os.path.join(out_dir, f"ckpt-{index}")}
        with ProcessTrace() as trace, tempfile.TemporaryFile("w+") as log:
            run = launch.start(launch.command("ray", "local", values, environ={}),
                               env=dict(os.environ, **cluster.env), stdout=log)
            run.wait()
            log.seek(0)
            output_text = log.read()
        with open(os.path.join(cluster.state_dir, "pids")) as handle:
            roots = [run.pid] + [int(pid) for pid in handle.read().split()]
    if run.returncode != 0:
        raise SystemExit(f"error: the traced Ray run failed: {output_text[-2000:]}")
    with open(output) as handle:
        result = json.load(handle)
    processes = trace.processes(roots)
    driver = next(p for p in processes if p["pid"] == run.pid)
    rows = [{"name": "driver (training.ray_training)" if p["pid"] == run.pid else p["name"],
             "start": p["start"] - driver["start"], "cpu": p["cpu_seconds"]} for p in processes]
    return result["fixed_costs"], rows, cluster_seconds


def _cost(costs, key):
    """A run's fixed cost by name; "group.name" for one inside a group (fit_edges)."""
    group, _, name = key.rpartition(".")
    return (costs.get(group) or {}).get(name) if group else costs.get(key)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _spread(values):
    values = [v for v in values if v is not None]
    return f"{min(values):.1f}-{max(values):.1f}" if values else "-"


def summarize(runs):
    """Medians over the runs: each phase, and each process by its name and order of start within its name."""
    phases = [(label, _median([_cost(r[0], key) for r in runs]), _spread([_cost(r[0], key) for r in runs]))
              for key, label in PHASES]
    at = next(i for i, (key, _) in enumerate(PHASES) if key == "worker_setup_seconds") + 1
    spans = [[(r[0].get("worker_setup_spans") or {}).get(key) for r in runs] for key, _ in SETUP_SPANS]
    phases[at:at] = [(f"&nbsp;&nbsp;of which (rank 0): {label}", _median(values), _spread(values))
                     for (_, label), values in zip(SETUP_SPANS, spans)]
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
             f"Made by `{command}` ({len(runs)} run{'s' if len(runs) > 1 else ''}, medians; the range in brackets). "
             f"The Ray side of the quick recipe on the local cluster, {WORKERS} workers x 1 CPU; times from the "
             f"driver process's start.", "",
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
