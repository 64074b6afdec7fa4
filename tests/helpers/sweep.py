"""A stand-in trainer and a sweep driver that uses it, so sweep tests run in seconds without TensorFlow.

    python -m tests.helpers.sweep trainer --run-id ID --output PATH --workers N --cpus C --epochs E
    python -m tests.helpers.sweep sweep [python -m training.sweep flags]

The trainer sleeps FAKE_SLEEP seconds, appends "start ID" and "done ID" to FAKE_LOG (so a test can count how
often each run really trained), exits FAKE_FAIL_CODE (default 1) when FAKE_FAIL lists its run id, and otherwise
writes a results file through training/core/results.py whose training time is 100 / workers seconds (baseline:
100 / 1), as known numbers for the report arithmetic.
"""

import os
import sys
import time



def fake_command(run, run_dir, scaling, attempt):
    """The builder the tests inject: the same folder layout and flags as the real one, this module as trainer
    (the runner starts it from the repository root, as it does the real trainers)."""
    scale = run.scale
    command = [sys.executable, "-m", "tests.helpers.sweep", "trainer", "--run-id", run.run_id,
               "--output", os.path.join(run_dir, "results.json"), "--workers", str(scale.workers),
               "--cpus", str(scale.cpus), "--epochs", str(scale.epochs), "--batch", str(scale.batch_size)]
    return command, False


def _log(line):
    path = os.environ.get("FAKE_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(line + "\n")


def trainer(argv):
    import argparse

    from training.core.results import write_results
    from tests.helpers.results_factory import fake_result

    parser = argparse.ArgumentParser()
    for flag in ("--run-id", "--output"):
        parser.add_argument(flag, required=True)
    for flag in ("--workers", "--cpus", "--epochs", "--batch"):
        parser.add_argument(flag, type=int, required=True)
    args = parser.parse_args(argv)
    _log(f"start {args.run_id}")
    print(f"[fake {args.run_id}] epoch 1/{args.epochs}", flush=True)
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    if args.run_id in os.environ.get("FAKE_FAIL", "").split(","):
        print("error: fake trainer failed on purpose", file=sys.stderr)
        return int(os.environ.get("FAKE_FAIL_CODE", "1"))
    workers = max(args.workers, 1)
    kind = "baseline" if args.workers == 0 else "ray_distributed"
    result = fake_result(kind, seconds=100.0 / workers, cpus=args.cpus, workers=workers, epochs=args.epochs,
                         per_worker_batch=args.batch)
    result["run_id"] = args.run_id
    write_results(args.output, result)
    _log(f"done {args.run_id}")
    return 0


def ledger_events(folder):
    """The ledger's events as dicts, read the plain way (the tests check the file, not the sweep's reader)."""
    import json

    path = os.path.join(folder, "ledger.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.endswith("\n")]


def wait_for_event(folder, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in ledger_events(folder):
            if predicate(event):
                return event
        time.sleep(0.05)
    raise AssertionError(f"no matching ledger event in {folder} within {timeout}s: {ledger_events(folder)}")


def sweep(argv):
    from training.sweep.__main__ import main

    return main(argv, builders={"local": fake_command, "k8s": fake_command})


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    sys.exit({"trainer": trainer, "sweep": sweep}[mode](rest))
