"""training/walkthrough/ray_patterns.py end to end: tasks, a trainer actor that dies mid-epoch, and its recovery.

The slow tests start a private Ray (token auth) and train the kit's CNN on a few digits for three epochs.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.common import REPO_ROOT

SCRIPT = ["-m", "training.walkthrough.ray_patterns"]
TINY = ["--dataset", "digits", "--train-samples", "96", "--test-samples", "64", "--batch-size", "32",
        "--epochs", "3", "--inject-failure-epoch", "2", "--checkpoint-policy", "every"]


def run_script(args, timeout=420, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    environ.update(env)
    return subprocess.run([sys.executable, *SCRIPT, *args], cwd=REPO_ROOT, env=environ, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args, env, message", [
    (["--inject-failure-epoch", "5", "--epochs", "3"], {},
     "error: INJECT_FAILURE_EPOCH must be at most EPOCHS (3), got 5"),
    (["--checkpoint-policy", "sometimes"], {}, "error: CHECKPOINT_POLICY must be one of every, never, interval:K"),
    ([], {"FAILURE_MODE": "explode"}, "error: FAILURE_MODE must be one of exit, kill, got 'explode'"),
    ([], {"TRAIN_SAMPLES": "0"}, "error: TRAIN_SAMPLES must be a positive integer, got '0'"),
    (["--batch-size", "64", "--train-samples", "32"], {}, "error: TRAIN_SAMPLES must hold at least one batch"),
])
def test_bad_input_is_refused_in_one_line_before_ray_starts(args, env, message):
    out = run_script(args, timeout=60, **env)
    assert out.returncode == 2
    assert out.stderr.startswith(message)
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["exit", "kill"])
def test_actor_failure_is_recovered_from_the_latest_checkpoint(tmp_path, mode):
    report = tmp_path / "patterns.json"
    out = run_script(TINY + ["--failure-mode", mode, "--output", str(report)])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Timeline (seconds since the driver started" in out.stdout
    assert "1 actor failure(s) recovered" in out.stdout

    doc = json.loads(report.read_text())
    [recovery] = doc["recoveries"]
    assert recovery["planned"] and recovery["failed_epoch"] == 2
    # With a checkpoint after every epoch the recovery resumes after epoch 1 and redoes nothing it had finished.
    assert recovery["restored_epoch"] == 1 and recovery["epochs_redone"] == 0
    assert recovery["restarted_pid"] != recovery["failed_pid"]
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2, 3]
    assert all(e["checkpointed"] for e in doc["epochs"])
    assert doc["controller"]["failures"] == 1 and doc["controller"]["recoveries"] == 1
    assert 0 <= doc["test"]["accuracy"] <= 1

    rows = doc["timeline"]
    what = [r["what"] for r in rows]
    for expected in ("task load_data(digits)", "task build_subset(train)", "task build_subset(test)",
                     "actor __init__", "actor __init__ (restarted)", "actor restore_state(epoch 1)",
                     "actor evaluate(test)"):
        assert expected in what
    assert any(w.startswith("actor train_epoch(2): process died") for w in what)
    for row in rows:
        assert row["node_id"] and row["node_ip"] and row["pid"] > 0 and row["end"] >= row["start"]
    # Work after the restart runs in the new process, and the epoch that failed is trained there again.
    restored = next(r for r in rows if r["what"] == "actor restore_state(epoch 1)")
    assert restored["pid"] == recovery["restarted_pid"]
    assert any(r["what"] == "actor train_epoch(2)" and r["pid"] == recovery["restarted_pid"] for r in rows)
