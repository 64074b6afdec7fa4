"""A stand-in trainer and a sweep that uses it, so sweep tests run in seconds without TensorFlow or Ray.

    python -m tests.helpers.sweep trainer --run-id ID --output PATH --workers N --cpus C --epochs E
    python -m tests.helpers.sweep sweep [python -m training.sweep flags]
    python -m tests.helpers.sweep record FOLDER   (re)records tests/sweep/fixtures/sweep_history.json

The trainer starts a `sleep` child in its process group and appends "start ID <pid> <child pid>" to FAKE_LOG,
prints one progress line per epoch and sleeps FAKE_SLEEP seconds in each, then appends "done ID" (so a test can
count how often each run really trained, and find the processes a cancellation must kill). It exits
FAKE_FAIL_CODE (default 1) when a comma-separated part of FAKE_FAIL is in its run id (such as -01-), and otherwise writes a results file through
training/core/results.py whose training time is 100 / workers seconds (baseline: 100 / 1), as known numbers for
the report arithmetic.
"""

import os
import sys
import time



def fake_command(request, run_dir, attempt, ray_env, execution):
    """The builder the tests inject: the same folder layout as the real one, this module as the trainer (the
    activity starts it from the repository root, as it does the real trainers)."""
    run = request.run
    command = [sys.executable, "-m", "tests.helpers.sweep", "trainer", "--run-id", run.run_id,
               "--output", os.path.join(run_dir, "results.json"), "--workers", str(run.workers),
               "--cpus", str(run.cpus), "--epochs", str(run.epochs), "--batch", str(run.batch_size)]
    return command, dict(os.environ), False


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
    import subprocess

    child = subprocess.Popen(["sleep", "600"])  # in the trainer's process group, as Ray's driver helpers are
    _log(f"start {args.run_id} {os.getpid()} {child.pid}")
    for epoch in range(1, args.epochs + 1):
        time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
        print(f"[fake {args.run_id}] epoch {epoch}/{args.epochs}", flush=True)
    child.kill()
    if any(part and part in args.run_id for part in os.environ.get("FAKE_FAIL", "").split(",")):
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


def trainer_log(path):
    """FAKE_LOG's lines, split into words."""
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [line.split() for line in handle if line.endswith("\n")]


def wait_for_log(path, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for words in trainer_log(path):
            if predicate(words):
                return words
        time.sleep(0.05)
    raise AssertionError(f"no matching line in {path} within {timeout}s: {trainer_log(path)}")


def sweep(argv):
    from training.sweep.__main__ import exit_now, main

    exit_now(main(argv, build_command=fake_command))


HISTORY_FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "sweep", "fixtures", "sweep_history.json")


def record(argv):
    """The replay test's fixture: a 1-worker sweep of the stand-in trainer whose Ray run fails (one attempt), so
    the history holds a completed and a failed activity; then its history, exported from the server."""
    import asyncio
    import json
    import subprocess

    from training.sweep import server

    folder = argv[0]
    env = dict(os.environ, RESULTS_DIR=os.path.join(folder, "results"), FAKE_LOG=os.path.join(folder, "log"),
               FAKE_SLEEP="0", EPOCHS="2", BATCH_SIZE="64", CLUSTER_CPUS="4", FAKE_FAIL="-01-")
    subprocess.run([sys.executable, "-m", "tests.helpers.sweep", "sweep", "run", "--sweep", "1", "--experiment",
                    "replay", "--max-attempts", "1"], env=env, check=False)

    async def fetch(address):
        from temporalio.client import Client

        client = await Client.connect(address)
        return (await client.get_workflow_handle("sweep-replay").fetch_history()).to_json()

    embedded = server.EmbeddedServer(env["RESULTS_DIR"]).open()
    try:
        text = asyncio.run(fetch(embedded.address))
    finally:
        embedded.close()
    with open(HISTORY_FIXTURE, "w") as handle:
        handle.write(json.dumps(json.loads(text), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    sys.exit({"trainer": trainer, "sweep": sweep, "record": record}[mode](rest))
