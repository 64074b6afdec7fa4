"""The console-silence measurement: phases are cut at each trainer's first and `done:` lines, and the longest wait
between two lines inside one is what it reports and judges."""

import json
import sys

from benchmarks import console_gaps


def test_each_trainer_is_a_phase_and_its_longest_silence_is_measured():
    stamped = [(0.0, "[12:00:00] Run ..."), (30.0, "[baseline] synthetic: 4096 train"), (35.0, "[baseline] epoch 1/1  "
               "step 10/64 15%  150 images/s  ~20s left, run ~20s"), (47.0, "[baseline] epoch 1/1  loss 2.3"),
               (48.0, "[baseline] done: 18.0s training"), (70.0, "[12:01:10] Starting a local Ray cluster"),
               (90.0, "[ray 2w] synthetic: 4096 train"), (115.0, "[ray 2w] epoch 1/1  loss 2.3"),
               (116.0, "[ray 2w] done: 20.0s")]
    found = console_gaps.phases(stamped)
    assert [(p["label"], p["seconds"], p["lines"], p["max_gap_seconds"]) for p in found] == [
        ("baseline", 18.0, 4, 12.0), ("ray 2w", 26.0, 3, 25.0)]
    # The 30 s before the baseline's first line and the cluster's start-up are no trainer's phase.
    assert all(p["finished"] for p in found)


def check(max_gap, code):
    """Runs console_gaps on a small Python program; returns (its exit code, its JSON report)."""
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "benchmarks.console_gaps", "--max-gap", str(max_gap), "--",
                           sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return proc.returncode, json.loads(proc.stdout.splitlines()[-1])


SLOW_PHASE = ("import time; print('[baseline] start', flush=True); time.sleep(0.5); "
              "print('[baseline] done: 0.5s', flush=True)")


def test_the_check_passes_a_phase_within_the_limit_and_fails_one_beyond_it():
    code, report = check(30, SLOW_PHASE)
    assert code == 0 and report["ok"] and report["phases"][0]["lines"] == 2
    code, report = check(0.2, SLOW_PHASE)
    assert code == 1 and not report["ok"] and report["worst_gap_seconds"] >= 0.5


def test_a_run_that_ends_inside_a_phase_fails_the_check():
    code, report = check(30, "print('[baseline] start')")
    assert code == 1 and report["phases"][0]["finished"] is False and report["exit_code"] == 0
