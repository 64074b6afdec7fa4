"""A sweep as users run it, with the stand-in trainer of tests/helpers/sweep.py: killed and resumed, refused
while another runs, given bad input, retrying failures. Each proves its point from the ledger and the results."""

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.sweep import ledger_events, wait_for_event



SETTINGS = ("EPOCHS", "BATCH_SIZE", "NUM_WORKERS", "CPUS_PER_WORKER", "DATASET", "DATA_DIR", "TRAIN_SAMPLES",
            "TEST_SAMPLES", "RESULTS_DIR", "RAY_ADDRESS", "LEARNING_RATE", "SEED", "EXPERIMENT", "SWEEP",
            "SCALES_FILE", "REPEAT", "SCALING", "TARGET_ACCURACY", "MAX_ATTEMPTS")


def make_env(folder):
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(RESULTS_DIR=str(folder / "results"), FAKE_LOG=str(folder / "trainer.log"), FAKE_SLEEP="0",
               EPOCHS="2", BATCH_SIZE="64", CLUSTER_CPUS="4")
    return env


@pytest.fixture
def sweep_env(tmp_path):
    return make_env(tmp_path)


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """One finished experiment 'same' that the bad-input cases must leave untouched."""
    folder = tmp_path_factory.mktemp("finished")
    env = make_env(folder)
    done = run_sweep(env, "run", "--sweep", "1", "--experiment", "same")
    assert done.returncode == 0, done.stderr
    return env, folder


def sweep_cmd(*args):
    return [sys.executable, "-m", "tests.helpers.sweep", "sweep", *args]


def run_sweep(env, *args, **overrides):
    return subprocess.run(sweep_cmd(*args), env={**env, **overrides}, capture_output=True, text=True,
                          timeout=120)


def folder_of(env, name):
    return os.path.join(env["RESULTS_DIR"], "experiments", name)


def trainer_log(env):
    with open(env["FAKE_LOG"]) as handle:
        return collections.Counter(line.strip() for line in handle)


def by_run(events, kind):
    return collections.Counter(e["run_id"] for e in events if e["event"] == kind)


def test_sigkill_mid_run_then_resume_finishes_every_run_once(sweep_env):
    folder = folder_of(sweep_env, "kill")
    first = subprocess.Popen(sweep_cmd("run", "--sweep", "1,2", "--experiment", "kill"),
                             env={**sweep_env, "FAKE_SLEEP": "3"}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        planned = [wait_for_event(folder, lambda e, i=i: e["event"] == "planned" and e["index"] == i)["run_id"]
                   for i in range(3)]
        # The second run (Ray, 1 worker) is in the middle of training when the sweep dies.
        wait_for_event(folder, lambda e: e["event"] == "started" and e["run_id"] == planned[1], timeout=60)
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    before = ledger_events(folder)
    assert by_run(before, "succeeded") == {planned[0]: 1}
    assert before[-1]["event"] == "started" and before[-1]["run_id"] == planned[1]
    killed_trainer = before[-1]["pid"]
    time.sleep(0.3)
    # The trainer dies with the sweep (parent-death signal): no orphan trains on into the next attempt.
    assert not os.path.exists(f"/proc/{killed_trainer}") or b"zombie" in open(f"/proc/{killed_trainer}/status",
                                                                               "rb").read()

    again = run_sweep(sweep_env, "run", "--sweep", "1,2", "--experiment", "kill", FAKE_SLEEP="0.2")
    assert again.returncode == 0, again.stderr
    events = ledger_events(folder)
    assert by_run(events, "succeeded") == {run_id: 1 for run_id in planned}
    assert by_run(events, "started") == {planned[0]: 1, planned[1]: 2, planned[2]: 1}
    assert by_run(events, "interrupted") == {planned[1]: 1}
    assert "done before" in again.stdout
    # The trainer's own record: the finished run never trained again, the interrupted one finished once.
    log = trainer_log(sweep_env)
    assert log[f"start {planned[0]}"] == 1 and log[f"done {planned[0]}"] == 1
    assert log[f"start {planned[1]}"] == 2 and log[f"done {planned[1]}"] == 1
    assert log[f"done {planned[2]}"] == 1
    for run_id in planned:
        with open(os.path.join(folder, "runs", run_id, "results.json")) as handle:
            assert json.load(handle)["run_id"] == run_id
    report = json.load(open(os.path.join(folder, "report.json")))
    assert report["runs_succeeded"] == 3 and report["scales"][2]["total_speedup"] == pytest.approx(2.0)


def test_second_sweep_on_same_experiment_is_refused_and_first_stops_cleanly_on_sigterm(sweep_env):
    folder = folder_of(sweep_env, "busy")
    first = subprocess.Popen(sweep_cmd("run", "--sweep", "1", "--experiment", "busy"),
                             env={**sweep_env, "FAKE_SLEEP": "30"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        wait_for_event(folder, lambda e: e["event"] == "started")
        second = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "busy")
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "already being run by another sweep" in lines[0], second.stderr
        assert [e["event"] for e in ledger_events(folder)].count("sweep_started") == 1
        status = run_sweep(sweep_env, "status", "--experiment", "busy")
        assert "a sweep is running" in status.stdout and "running" in status.stdout
        first.send_signal(signal.SIGTERM)  # what Ctrl-C and a stop request look like to the sweep
        out, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130
    events = ledger_events(folder)
    assert events[-2]["event"] == "interrupted" and "SIGTERM" in events[-2]["error"]
    assert events[-1] == {**events[-1], "event": "sweep_finished", "exit_code": 130}


BAD_INPUTS = [
    (["--sweep", ","], "--sweep must list worker counts"),
    (["--sweep", "1,,2"], "--sweep must list worker counts"),
    (["--sweep", "0"], "must be a positive integer"),
    (["--sweep", "-2"], "must be a positive integer"),
    (["--sweep", "two"], "must be a positive integer"),
    (["--sweep", "1,1"], "twice"),
    (["--sweep", "3", "--cluster-cpus", "2"], "more than the cluster has"),
    (["--scales", "{empty}"], "lists no scales"),
    (["--scales", "{malformed}"], "does not parse"),
    (["--scales", "{negative}"], "workers must be a positive integer"),
    (["--scales", "{badjson}"], "does not parse"),
    (["--scales", "{missing}"], "cannot be read"),
    (["--sweep", "2", "--scaling", "strong", "--cluster-cpus", "8"], None),  # 64 splits over 2: fine
    (["--sweep", "3", "--scaling", "strong", "--cluster-cpus", "8"], "needs a multiple of 3"),
    (["--repeat", "0", "--sweep", "1"], "REPEAT must be a positive integer"),
    (["--scaling", "diagonal", "--sweep", "1"], "SCALING must be one of strong, weak"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS)
def test_bad_input_gives_one_line_exit_2_and_leaves_the_ledger_alone(finished_sweep, args, message):
    sweep_env, tmp_path = finished_sweep
    files = {"empty": ("empty.yaml", "scales: []\n"), "malformed": ("bad.yaml", "scales: [workers: 2\n"),
             "negative": ("neg.yaml", "- {workers: -1}\n"), "badjson": ("bad.json", '[{"workers": 2,}]'),
             "missing": ("absent.yaml", None)}
    for key, (name, text) in files.items():
        if text is not None:
            (tmp_path / name).write_text(text)
    args = [arg.format(**{k: str(tmp_path / v[0]) for k, v in files.items()}) for arg in args]
    ledger = os.path.join(folder_of(sweep_env, "same"), "ledger.jsonl")
    before = open(ledger, "rb").read()
    cmd = ["plan"] if message is None else ["run"]
    result = run_sweep(sweep_env, *cmd, *args, "--experiment", "same")
    assert open(ledger, "rb").read() == before
    if message is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_middle_line_is_a_clear_error_and_a_cut_last_line_is_recovered(sweep_env):
    folder = folder_of(sweep_env, "torn")
    assert run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "torn").returncode == 0
    ledger = os.path.join(folder, "ledger.jsonl")
    good = open(ledger, "rb").read()
    lines = good.split(b"\n")
    middle = b"\n".join(lines[:2] + [b'{"v": 1, "event": "star'] + lines[2:])
    open(ledger, "wb").write(middle)
    result = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "torn")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "line 3 is corrupt" in result.stderr and "--fresh" in result.stderr
    assert open(ledger, "rb").read() == middle
    status = run_sweep(sweep_env, "status", "--experiment", "torn")
    assert status.returncode == 1 and "line 3 is corrupt" in status.stderr

    # A kill while the last line was being written: dropped with a warning, never silently.
    open(ledger, "wb").write(good + b'{"v": 1, "ts": "2025-01-01T00:00:00Z", "event": "sta')
    result = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "torn")
    assert result.returncode == 0, result.stderr
    assert "was cut short" in result.stderr
    repaired = open(ledger, "rb").read()
    assert repaired.startswith(good) and b'"event": "sta\n' not in repaired
    assert all(json.loads(line) for line in repaired.splitlines())
    assert trainer_log(sweep_env)["start " + lines_run_id(good)] == 1


def lines_run_id(data):
    return next(json.loads(line)["run_id"] for line in data.splitlines() if b'"planned"' in line)


def test_results_written_just_before_a_kill_are_kept_not_trained_again(sweep_env):
    folder = folder_of(sweep_env, "late")
    assert run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "late").returncode == 0
    ledger = os.path.join(folder, "ledger.jsonl")
    events = ledger_events(folder)
    last_success = max(i for i, e in enumerate(events) if e["event"] == "succeeded")
    # As if the sweep died after the trainer wrote results.json, before the ledger said so.
    with open(ledger, "w") as handle:
        handle.writelines(json.dumps(e) + "\n" for e in events[:last_success])
    result = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "late")
    assert result.returncode == 0, result.stderr
    recovered = [e for e in ledger_events(folder) if e["event"] == "succeeded" and e.get("recovered")]
    assert len(recovered) == 1 and recovered[0]["run_id"] == events[last_success]["run_id"]
    assert trainer_log(sweep_env)[f"start {recovered[0]['run_id']}"] == 1


def test_failed_run_is_retried_up_to_max_attempts_keeping_each_error(sweep_env):
    folder = folder_of(sweep_env, "flaky")
    plan = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "flaky", "--max-attempts", "2",
                     FAKE_FAIL="nothing")
    ray_run = [e["run_id"] for e in ledger_events(folder) if e["event"] == "planned" and e["kind"] == "ray"][0]
    assert plan.returncode == 0
    result = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "flaky", "--max-attempts", "2",
                       "--fresh", FAKE_FAIL=ray_run)
    assert result.returncode == 1
    assert "earlier experiment is kept as" in result.stdout
    failed = [e for e in ledger_events(folder) if e["event"] == "failed"]
    assert [e["attempt"] for e in failed] == [1, 2]
    assert all("fake trainer failed on purpose" in e["error"] for e in failed)
    assert not os.path.exists(os.path.join(folder, "runs", ray_run, "results.json"))
    # Same limit: not tried again. A higher limit, once the cause is fixed: a third attempt that succeeds.
    again = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "flaky", "--max-attempts", "2")
    assert again.returncode == 1 and "--max-attempts limit" in again.stdout
    fixed = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "flaky", "--max-attempts", "3")
    assert fixed.returncode == 0, fixed.stdout
    assert [e["attempt"] for e in ledger_events(folder) if e["event"] == "succeeded" and e["run_id"] == ray_run] == [3]


def test_bad_input_inside_a_run_is_not_retried(sweep_env):
    folder = folder_of(sweep_env, "nofix")
    assert run_sweep(sweep_env, "plan", "--sweep", "1", "--experiment", "nofix").returncode == 0
    first = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "nofix", FAKE_FAIL="none")
    baseline_run = [e["run_id"] for e in ledger_events(folder) if e["event"] == "planned"][0]
    assert first.returncode == 0
    result = run_sweep(sweep_env, "run", "--sweep", "1", "--experiment", "nofix", "--fresh",
                       FAKE_FAIL=baseline_run, FAKE_FAIL_CODE="2")
    assert result.returncode == 1
    failed = [e for e in ledger_events(folder) if e["event"] == "failed"]
    assert len(failed) == 1 and failed[0]["retryable"] is False and failed[0]["exit_code"] == 2


def test_stop_rule_ends_the_sweep_once_the_target_accuracy_is_reached(sweep_env):
    folder = folder_of(sweep_env, "enough")
    # The stand-in reaches val_accuracy 0.55 in epoch 2 of every run.
    result = run_sweep(sweep_env, "run", "--sweep", "1,2", "--experiment", "enough", "--target-accuracy", "0.5",
                       "--stop-at-target")
    assert result.returncode == 0, result.stderr
    events = ledger_events(folder)
    assert [e["event"] for e in events].count("started") == 1
    assert events[-2]["event"] == "stopped"
    report = json.load(open(os.path.join(folder, "report.json")))
    assert report["scales"][0]["time_to_target_seconds"]["median"] == pytest.approx(100.0)
