"""The default run commands are the kit's real trainers, and the trainers' own parsers accept them."""

import os
import sys

import pytest

from training.sweep import commands, scales
from training.sweep.scales import Scale


def plan_of(*listed, scaling="weak"):
    return scales.build_plan(list(listed), scaling, {}, "cmd", repeat=1)


def test_baseline_runs_baseline_training_with_one_workers_threads(tmp_path, monkeypatch):
    from training import baseline_training

    run = plan_of(Scale(workers=0, epochs=3, batch_size=32, cpus_per_worker=2)).runs[0]
    argv, resumes = commands.local_command(run, str(tmp_path), "weak", attempt=1)
    assert argv[0] == sys.executable and argv[1:3] == ["-m", "training.baseline_training"] and not resumes
    args = baseline_training.parse_args(argv[3:])
    assert (args.threads, args.epochs, args.batch_size, args.run_id) == (2, 3, 32, run.run_id)
    assert args.output == os.path.join(str(tmp_path), "results.json")


@pytest.mark.parametrize("scaling,mode,per_worker", [("weak", "per-worker", 64), ("strong", "global", 32)])
def test_ray_runs_ray_training_against_the_sweeps_cluster(tmp_path, monkeypatch, scaling, mode, per_worker):
    from training import ray_training

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6390")
    run = plan_of(Scale(workers=2, epochs=2, batch_size=64, cpus_per_worker=1), scaling=scaling).runs[0]
    argv, resumes = commands.local_command(run, str(tmp_path), scaling, attempt=1)
    assert argv[1:3] == ["-m", "training.ray_training"] and "--resume" not in argv and not resumes
    args = ray_training.parse_args(argv[3:])
    assert (args.num_workers, args.cpus_per_worker, args.ray_address) == (2, 1, "127.0.0.1:6390")
    assert (args.batch_size_mode, args.per_worker_batch) == (mode, per_worker)
    assert args.storage_path == os.path.join(str(tmp_path), "checkpoints")


def test_a_retry_resumes_only_from_a_checkpoint(tmp_path):
    run = plan_of(Scale(workers=1, epochs=2, batch_size=64, cpus_per_worker=1)).runs[0]
    assert commands.local_command(run, str(tmp_path), "weak", attempt=2)[1] is False  # no checkpoint yet
    (tmp_path / "checkpoints" / run.run_id).mkdir(parents=True)
    argv, resumes = commands.local_command(run, str(tmp_path), "weak", attempt=2)
    assert resumes and "--resume" in argv
    assert "--resume" not in commands.local_command(run, str(tmp_path), "weak", attempt=1)[0]


def test_the_environments_training_settings_reach_every_run_as_flags(tmp_path, monkeypatch):
    """The pods see no environment of this machine: a setting must be on the command line, as --local's is."""
    monkeypatch.setenv("DATASET", "digits")
    monkeypatch.setenv("LR_SCALING", "linear")
    base, ray = plan_of(Scale(workers=0, epochs=2, batch_size=64, cpus_per_worker=1),
                        Scale(workers=2, epochs=2, batch_size=64, cpus_per_worker=1)).runs
    for build in (commands.local_command, commands.k8s_command):
        base_argv, ray_argv = (build(run, str(tmp_path), "weak", attempt=1)[0] for run in (base, ray))
        assert base_argv[base_argv.index("--dataset") + 1] == "digits" == ray_argv[ray_argv.index("--dataset") + 1]
        assert ray_argv[ray_argv.index("--lr-scaling") + 1] == "linear" and "--lr-scaling" not in base_argv


def test_cluster_runs_go_through_pod_run_with_the_pod_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("CHECKPOINT_STORAGE_URI", "s3://bucket/runs")
    base, ray = plan_of(Scale(workers=0, epochs=2, batch_size=64, cpus_per_worker=1),
                        Scale(workers=2, epochs=2, batch_size=64, cpus_per_worker=1)).runs
    argv, _ = commands.k8s_command(ray, str(tmp_path), "weak", attempt=1)
    assert argv[:8] == ["bash", str(commands.REPO_ROOT / "scripts/lib/sweep.sh"), "pod-run", "ray", "2",
                        f"{ray.run_id}.json", str(tmp_path), "--"]
    assert argv[8:11] == ["python", "-m", "training.ray_training"]
    assert argv[argv.index("--ray-address") + 1] == "auto"
    assert argv[argv.index("--storage-path") + 1] == "s3://bucket/runs"
    assert argv[argv.index("--output") + 1] == f"/tmp/kit/{ray.run_id}.json"
    argv, _ = commands.k8s_command(base, str(tmp_path), "weak", attempt=1)
    assert argv[3:5] == ["baseline", "1"] and argv[9:11] == ["-m", "training.baseline_training"]
