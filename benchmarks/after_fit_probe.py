"""What a Ray run pays once per run, run after run on one local cluster: the quick recipe's Ray side RUNS times, each
run's fixed costs from its own results file (start-up, and after model.fit the test scoring and Ray Train's end of
the worker group) and its steady epoch.

    .venv/bin/python -m benchmarks.after_fit_probe [--runs 2]                      (about 30 s a run)
    RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=2 .venv/bin/python -m benchmarks.after_fit_probe   (Ray Train's default poll)

Made to choose Ray Train's poll interval (runtime_env.TRAIN_ENV); a Ray Train switch set in the environment wins
on the local cluster (local_node.py), so the same command compares any value against the kit's.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile

from training import launch
from training.core import settings

WORKERS = 2
SHOWN = (("command_start_to_fit_seconds", "start to fit"), ("test_evaluation_seconds", "test scoring"),
         ("worker_group_shutdown_seconds", "group shutdown"), ("after_fit_seconds", "after fit"))


def runs(count, out_dir):
    """One dict per run: the shown fixed costs and the steady epoch, in seconds."""
    rows = []
    with launch.LocalCluster(WORKERS, 1) as cluster:
        for index in range(count):
            output = os.path.join(out_dir, f"ray-{index}.json")
            values = {**settings.QUICK, "NUM_WORKERS": WORKERS, "CPUS_PER_WORKER": 1, "OUTPUT": output,
                      "RAY_ADDRESS": cluster.env["RAY_ADDRESS"], "STORAGE_PATH": os.path.join(out_dir, f"ckpt-{index}")}
            run = launch.start(launch.command("ray", "local", values, environ={}), env=dict(os.environ, **cluster.env),
                               stdout=subprocess.DEVNULL)
            if run.wait() != 0:
                raise SystemExit(f"error: Ray run {index + 1} failed (exit {run.returncode})")
            with open(output) as handle:
                result = json.load(handle)
            row = {label: result["fixed_costs"].get(key) for key, label in SHOWN}
            row["steady epoch"] = result.get("steady_state_epoch_seconds")
            rows.append(row)
            print(f"  run {index + 1}/{count}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if v is not None),
                  flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="Ray runs on the one cluster (default 2)")
    opts = parser.parse_args(argv)
    if opts.runs < 1:
        parser.error("--runs must be at least 1")
    interval = os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "the kit's")
    with tempfile.TemporaryDirectory(prefix="kit-after-fit-") as out_dir:
        rows = runs(opts.runs, out_dir)
    for name in rows[0]:
        values = [row[name] for row in rows if row[name] is not None]
        if values:
            print(f"{name}: median {statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f}, "
                  f"n={len(values)}; poll interval {interval})")


if __name__ == "__main__":
    main()
