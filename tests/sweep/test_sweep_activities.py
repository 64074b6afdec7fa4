"""The activity's command for each target comes from the one launcher: a run's scale decides the trainer's
settings, a retried Ray run resumes, and on the cluster target the run goes through pod-run into the pods."""

import os

import pytest

pytest.importorskip("temporalio", reason="the temporalio wheel is not installed (docker/requirements.txt)")

from training import launch  # noqa: E402
from training.sweep import activities, scales, workflow  # noqa: E402


def request(target, workers):
    listed = scales.with_baseline([scales.Scale(workers=workers, epochs=2, batch_size=64, cpus_per_worker=1)])
    run = scales.build_plan(listed, "strong", {}, "exp", 1)[-1]
    return workflow.RunRequest(experiment_dir="/r/exp", scaling="strong", target=target, run=run, run_timeout_s=0)


def test_a_retried_ray_run_on_the_cluster_goes_to_the_pods_and_resumes(monkeypatch):
    for name in launch.settings.BY_NAME:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHECKPOINT_STORAGE_URI", "s3://bucket/runs")
    req = request("k8s", 2)
    argv, _, resumes = activities.run_command(req, "/r/exp/runs/x", attempt=2, ray_env={})
    assert resumes
    values = {"EPOCHS": 2, "BATCH_SIZE": 64, "RUN_ID": req.run.run_id, "OUTPUT": f"/tmp/kit/{req.run.run_id}.json",
              "NUM_WORKERS": 2, "CPUS_PER_WORKER": 1, "BATCH_SIZE_MODE": "global", "STORAGE_PATH": "s3://bucket/runs",
              "RAY_ADDRESS": "auto", "RESUME": 1}
    assert argv == launch.command("ray", "k8s", values, run_dir="/r/exp/runs/x", cpus=2)


def test_a_local_ray_run_resumes_whenever_its_folder_has_a_checkpoint(monkeypatch, tmp_path):
    for name in launch.settings.BY_NAME:
        monkeypatch.delenv(name, raising=False)
    req = request("local", 1)
    argv, env, resumes = activities.run_command(req, str(tmp_path), 2, {"RAY_ADDRESS": "127.0.0.1:7000"})
    assert not resumes and "--resume" not in argv
    assert env["RAY_ADDRESS"] == "127.0.0.1:7000" and argv[argv.index("--ray-address") + 1] == "127.0.0.1:7000"
    os.makedirs(tmp_path / "checkpoints" / "epoch-1")
    # Attempt 1 too: a new execution of a cancelled workflow finds them, and the trainer refuses them unasked.
    argv, _, resumes = activities.run_command(req, str(tmp_path), 1, {"RAY_ADDRESS": "127.0.0.1:7000"})
    assert resumes and "--resume" in argv and argv[argv.index("--output") + 1] == str(tmp_path / "results.json")


def test_a_killed_sweep_left_as_a_zombie_or_a_reused_pid_does_not_count_as_running():
    import subprocess
    import sys
    import time

    from training.sweep import driver

    def started(argv):
        process = subprocess.Popen(argv)
        while argv[-1].encode() not in open(f"/proc/{process.pid}/cmdline", "rb").read():  # until it ran exec
            time.sleep(0.01)
        return process

    other = started(["sleep", "30"])  # alive, but not a sweep: a pid reused by another program
    try:
        assert not driver.sweep_alive(other.pid)
    finally:
        other.kill()
    sweep = started([sys.executable, "-c", "import time; time.sleep(30)", "training.sweep"])
    assert driver.sweep_alive(sweep.pid)
    sweep.kill()
    time.sleep(0.5)  # not reaped: a zombie, as a SIGKILLed sweep whose parent died too is
    assert not driver.sweep_alive(sweep.pid)
    sweep.wait()
