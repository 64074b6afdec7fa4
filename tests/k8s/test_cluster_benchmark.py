"""The benchmark on the cluster target (scripts/lib/cluster_benchmark.sh, and run-benchmark.sh end to end) against
stub kubectl: the baseline in a worker pod, Ray from the head pod, every setting reaching the pods or refused, the
image checks, interrupts, and `pod-run` as the sweep's launcher uses it.
"""

import json
import signal
import subprocess
import time

import pytest

from tests.helpers.k8s_worlds import HEAD, WORKERS, applied_image, image_ref, pods_run, ray_cluster_running, reachable
from tests.helpers.stub_tools import REPO_ROOT, assert_one_line_error


RUN = 'source scripts/lib/cluster_benchmark.sh && cluster_benchmark::run "$1"'


def benchmark_world(world):
    ray_cluster_running(world)
    world.pod_file("baseline_results.json", '{"training_type": "baseline"}')
    world.pod_file("ray_results_2workers.json", '{"training_type": "ray_distributed"}')
    world.on("kubectl", "*training.ray_training*", 0, "[ray 2w] epoch 1/1 done")
    return world


def test_benchmark_runs_baseline_in_a_worker_and_ray_in_the_head_and_copies_both(world, tmp_path):
    benchmark_world(world)
    run_dir = tmp_path / "run"
    result = world.run_bash(RUN, str(run_dir), EPOCHS=3, DATASET="digits")
    assert result.returncode == 0, result.stderr
    assert "[ray 2w] epoch 1/1 done" in result.stdout  # progress streams through
    execs = [c for c in world.calls("kubectl") if "exec" in c and "python" in c and "timeout" in c]
    baseline, ray_run = execs
    assert baseline[baseline.index("exec") + 1] == WORKERS[0]
    assert baseline[baseline.index("--threads") + 1] == "2"  # one worker pod's CPUs
    assert ray_run[ray_run.index("exec") + 1] == HEAD
    tail = ray_run[ray_run.index("python"):]
    assert tail[:3] == ["python", "-m", "training.ray_training"]
    assert tail[tail.index("--ray-address") + 1] == "auto" and tail[tail.index("--num-workers") + 1] == "2"
    assert tail[tail.index("--cpus-per-worker") + 1] == "2"
    assert tail[tail.index("--epochs") + 1] == "3" and tail[tail.index("--dataset") + 1] == "digits"
    assert sorted(p.name for p in run_dir.iterdir()) == ["baseline_results.json", "ray_results_2workers.json"]
    assert "Skipping the equal-resources baseline" in result.stdout


def test_benchmark_rejects_more_workers_than_the_pods_hold(world, tmp_path):
    benchmark_world(world)
    result = world.run_bash(RUN, str(tmp_path / "run"), NUM_WORKERS=3)
    assert_one_line_error(result, 2, "NUM_WORKERS=3", "allowed: 1..2")
    assert [c for c in world.calls("kubectl") if "exec" in c] == []


def test_benchmark_stops_on_an_image_with_other_versions(world, tmp_path):
    ray_cluster_running(world, versions="2.59.0 2.21.0 2.21.0")
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert_one_line_error(result, 4, "2.59.0", "docker/build-and-push.sh")


def test_benchmark_failed_ray_run_keeps_the_earlier_result(world, tmp_path):
    benchmark_world(world)
    world.rules.insert(0, ("kubectl", "*training.ray_training*", "1", "boom"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    earlier = run_dir / "ray_results_2workers.json"
    earlier.write_text("earlier")
    result = world.run_bash(RUN, str(run_dir))
    assert_one_line_error(result, 4, "failed in pod raybench-head-abcde")
    assert earlier.read_text() == "earlier"
    assert (run_dir / "baseline_results.json").exists()  # copied right after its own run


def test_benchmark_timeout_names_the_setting(world, tmp_path):
    benchmark_world(world)
    world.rules.insert(0, ("kubectl", "*training.baseline_training*", "124", ""))
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert_one_line_error(result, 4, "RUN_TIMEOUT_S")


def test_benchmark_without_head_pod_points_to_install(world, tmp_path):
    reachable(world)
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert_one_line_error(result, 4, "no running head pod", "install-ray.sh")


def test_benchmark_rejects_unknown_submit_mode(world, tmp_path):
    result = world.run_bash(RUN, str(tmp_path / "run"), SUBMIT="ssh")
    assert_one_line_error(result, 2, "SUBMIT", "exec, jobs")


def test_benchmark_refuses_pods_that_run_another_image_than_install_applied(world, tmp_path):
    """Defect 1: pods left running the old code after a re-install must not be benchmarked."""
    benchmark_world(world)
    world.rules = [r for r in world.rules if "imageID" not in r[1]]
    pods_run(world, "raybench-kit:ray2.60.0-tf2.21.0-0ld0ld0ld0")
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert_one_line_error(result, 4, "not every Ray pod runs", "install-ray.sh", HEAD)
    assert [c for c in world.calls("kubectl") if "training.ray_training" in c] == []


def test_benchmark_refuses_pods_whose_image_id_differs(world, tmp_path):
    benchmark_world(world)
    image = image_ref(world)
    world.rules = [r for r in world.rules if "imageID" not in r[1] and "kit/" not in r[1]]
    applied_image(world, image, "sha256:" + "ab" * 32)
    pods_run(world, image, "docker://sha256:" + "cd" * 32)
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert_one_line_error(result, 4, "image ID", "cd" * 32)


def test_benchmark_refuses_a_cluster_without_the_install_record(world, tmp_path):
    benchmark_world(world)
    world.rules = [r for r in world.rules if "kit/image" not in r[1]]
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert_one_line_error(result, 4, "raybench.kit/image", "install-ray.sh")


def test_every_training_setting_reaches_the_pods_or_is_handled():
    """Defect 8: a setting --local honours may not be dropped silently on the cluster path. The pods' argv comes
    from the settings table's builder: every setting a trainer takes from the environment is passed as a flag,
    refused, or given by cluster_benchmark.sh itself (kept on this machine)."""
    from training.core import settings

    for program in settings.TRAINERS:
        for setting in settings.of_program(program):
            assert setting.pod in ("pass", "refuse", "local"), setting.name
            if setting.env and setting.pod == "pass":
                value = {"DATA_DIR": None}.get(setting.name) or _a_valid_value(setting)
                argv = settings.trainer_argv(program, "pod", environ={setting.name: value})
                assert setting.flag(program) in argv, setting.name
    assert {"USE_GPU", "VAL_FRACTION", "EARLY_STOPPING_PATIENCE"} <= {s.name for s in settings.of_program("ray")}


@pytest.mark.parametrize("environ", [{}, {"NUM_WORKERS": "3", "CPUS_PER_WORKER": "1", "RUN_ID": "r7",
                                      "CHECKPOINT_STORAGE_URI": "s3://elsewhere/runs"}, {"CLUSTER_PROFILE": "small"}])
def test_the_head_pods_ray_run_is_the_one_the_rayjob_is_generated_from(world, environ):
    """One owner for the head run's values: the benchmark's command and k8s/ray-job-<profile>.yaml's both come
    from training.cluster.head_run, the profile's workers and worker CPUs under what the environment sets."""
    from training.cluster import head_run

    result = world.run_bash("source scripts/lib/cluster_benchmark.sh && cluster_benchmark::ray_training_argv",
                            **environ)
    assert result.returncode == 0, result.stderr
    command = result.stdout.split("\0")[:-1]
    given = {"RUN_ID": "r7-ray"} if "RUN_ID" in environ else {}
    assert command == head_run.argv(environ.get("CLUSTER_PROFILE", "default"), given, environ)
    want_cpus = {"default": "2", "small": "1"}[environ.get("CLUSTER_PROFILE", "default")]
    assert command[command.index("--cpus-per-worker") + 1] == environ.get("CPUS_PER_WORKER", want_cpus)


def test_the_head_pods_ray_run_refuses_an_unknown_profile_in_one_line(world):
    result = world.run_bash("source scripts/lib/cluster_benchmark.sh && cluster_benchmark::ray_training_argv",
                            CLUSTER_PROFILE="huge")
    assert_one_line_error(result, 2, "CLUSTER_PROFILE 'huge'", "allowed: default, small")


def _a_valid_value(setting):
    from training.core import settings

    if setting.name in settings.CHOICES:
        return settings.CHOICES[setting.name][-1]
    for candidate in ("1", "0.5", "adaptive", "text"):
        try:
            setting.parser()(candidate)
            return candidate
        except settings.SettingsError:
            continue
    raise AssertionError(f"no valid value for {setting.name}")


def test_benchmark_passes_val_fraction_patience_and_run_id_to_both_runs(world, tmp_path):
    benchmark_world(world)
    result = world.run_bash(RUN, str(tmp_path / "run"), VAL_FRACTION="0.2", EARLY_STOPPING_PATIENCE="3",
                            MAX_FAILURES="2", RUN_ID="r1")
    assert result.returncode == 0, result.stderr
    baseline, ray_run = [c for c in world.calls("kubectl") if "exec" in c and "python" in c and "timeout" in c]
    for run in (baseline, ray_run):
        assert run[run.index("--val-fraction") + 1] == "0.2"
        assert run[run.index("--early-stopping-patience") + 1] == "3"
    assert ray_run[ray_run.index("--max-failures") + 1] == "2" and "--max-failures" not in baseline
    assert ray_run[ray_run.index("--run-id") + 1] == "r1-ray"
    assert baseline[baseline.index("--run-id") + 1] == "r1-baseline"


def test_benchmark_refuses_use_gpu_without_gpu_pods(world, tmp_path):
    benchmark_world(world)
    result = world.run_bash(RUN, str(tmp_path / "run"), USE_GPU="1")
    assert_one_line_error(result, 2, "USE_GPU=1", "nvidia.com/gpu", "allowed: 0")
    assert [c for c in world.calls("kubectl") if "timeout" in c] == []


def test_benchmark_passes_use_gpu_to_gpu_pods_and_reads_gpu_tensorflow(world, tmp_path):
    benchmark_world(world)
    world.rules.insert(0, ("kubectl", "*nvidia?.com/gpu*", "0", "1"))
    result = world.run_bash(RUN, str(tmp_path / "run"), USE_GPU="1")
    assert result.returncode == 0, result.stderr
    ray_run = [c for c in world.calls("kubectl") if "training.ray_training" in c][-1]
    assert "--use-gpu" in ray_run
    probe = [c for c in world.calls("kubectl") if any("importlib.metadata" in a for a in c)][0]
    assert '"tensorflow-cpu", "tensorflow"' in probe[-1]


@pytest.mark.parametrize("setting,value", [("USE_GPU", "maybe"), ("DATA_DIR", "/data/cifar")])
def test_benchmark_refuses_settings_the_pods_cannot_take(world, tmp_path, setting, value):
    benchmark_world(world)
    result = world.run_bash(RUN, str(tmp_path / "run"), **{setting: value})
    assert_one_line_error(result, 2, setting, "allowed:")


def _blocking_kubectl(world, marker):
    """Replaces the stub kubectl by one that, for a call with `marker`, records it and then blocks (like a
    training run in a pod); every other call goes to the stub."""
    stub = world.bin / "kubectl"
    stub.unlink()
    stub.write_text("#!/usr/bin/env bash\n"
                    f'if [[ " $* " == *" {marker} "* ]]; then echo started >>"$STUB_LOG.blocked"; sleep 60; exit 0; fi\n'
                    f'exec "{REPO_ROOT}/tests/k8s/stubs/kubectl" "$@"\n')
    stub.chmod(0o755)


def test_benchmark_interrupt_stops_the_run_in_the_pod(world, tmp_path):
    """Defect 7: Ctrl-C must stop the training in the pod, not only the local kubectl."""
    benchmark_world(world)
    _blocking_kubectl(world, "training.baseline_training")
    world.rules_file.write_text("")
    world.run_bash("true")  # writes the rules file
    proc = subprocess.Popen(["bash", "-c", RUN, "bash", str(tmp_path / "run")], cwd=REPO_ROOT, env=world.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    blocked = world.log.parent / "calls.log.blocked"
    deadline = time.monotonic() + 60
    while not blocked.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert blocked.exists(), "the baseline never started"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 20  # not after the 60 s "run"
    assert proc.returncode == 130, err
    assert "Interrupted: stopped baseline" in err and WORKERS[0] in err
    stops = [c for c in world.calls("kubectl") if "exec" in c and any("kill -TERM" in a for a in c)]
    assert stops and stops[-1][stops[-1].index("exec") + 1] == WORKERS[0]
    assert "/tmp/kit/run.pid" in stops[-1]
    assert [c for c in world.calls("kubectl") if "training.ray_training" in c] == []


def test_benchmark_stops_a_stale_run_before_starting(world, tmp_path):
    benchmark_world(world)
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "Stopped a run left in pod" in result.stderr  # the stub's exec answers 0: a run was found
    calls = world.calls("kubectl")
    first_stop = next(i for i, c in enumerate(calls) if any("kill -TERM" in a for a in c))
    first_run = next(i for i, c in enumerate(calls) if "training.baseline_training" in c)
    assert first_stop < first_run
    run = calls[first_run]
    assert run[run.index("sh"):run.index("sh") + 4] == ["sh", "-c", 'echo "$$" >"$0" && exec "$@"', "/tmp/kit/run.pid"]


def test_benchmark_warns_when_every_worker_pod_is_on_one_node(world, tmp_path):
    """Defect 4: say so when the spread could not happen."""
    benchmark_world(world)
    world.rules.insert(0, ("kubectl", "*node-type=worker*spec.nodeName*", "0", "raybench-m02\nraybench-m02"))
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "every worker pod runs on node raybench-m02" in result.stderr


def test_benchmark_reports_the_kubernetes_node_of_each_ray_worker(world, tmp_path):
    benchmark_world(world)
    world.pod_file("ray_results_2workers.json", json.dumps(
        {"workers": [{"rank": 0, "kubernetes_node": "raybench"}, {"rank": 1, "kubernetes_node": "raybench"}]}))
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "Ray workers ran on Kubernetes nodes: raybench raybench" in result.stdout
    assert "all 2 Ray workers ran on one Kubernetes node" in result.stderr


def test_benchmark_refuses_use_gpu_true_in_any_case_without_gpu_pods(world, tmp_path):
    """The settings table reads USE_GPU=True as on; the GPU-pod check must too."""
    benchmark_world(world)
    result = world.run_bash(RUN, str(tmp_path / "run"), USE_GPU="True")
    assert_one_line_error(result, 2, "nvidia.com/gpu")
    assert [c for c in world.calls("kubectl") if "timeout" in c] == []


def test_benchmark_output_has_no_tar_warning_from_kubectl_cp(world, tmp_path):
    """kubectl cp writes the pod's tar warning on its stdout, which the copy discards (a guard: it held before)."""
    benchmark_world(world)
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert world.called_with("kubectl", "cp")
    assert "Removing leading" not in result.stdout + result.stderr


def test_quick_cluster_run_reads_the_pods_cpus_and_carries_the_quick_recipe(world, tmp_path):
    """The README's Kubernetes command with CPUS_PER_WORKER unset (its documented default: a worker pod's CPUs):
    the quick recipe reaches both pod command lines, the pods' results are compared, results/ gets them."""
    from tests.helpers.results_factory import fake_result

    ray_cluster_running(world)
    world.pod_file("baseline_results.json", json.dumps(fake_result(seconds=40.0, cpus=2)))
    world.pod_file("ray_results_2workers.json", json.dumps(
        fake_result("ray_distributed", seconds=30.0, cpus=4, workers=2, per_worker_batch=32)))
    results = tmp_path / "results"
    result = world.run_script("scripts/run-benchmark.sh", "--quick", RESULTS_DIR=str(results))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "CPUS_PER_WORKER=(the CPUs of a worker pod)" in result.stdout
    execs = [c for c in world.calls("kubectl") if "exec" in c and "python" in c and "timeout" in c]
    baseline, ray_run = (c[c.index("python"):] for c in execs)
    for argv in (baseline, ray_run):
        assert argv[argv.index("--learning-rate") + 1] == "0.002" and argv[argv.index("--batch-size") + 1] == "64"
        assert argv[argv.index("--dataset") + 1] == "digits" and argv[argv.index("--epochs") + 1] == "2"
    assert ray_run[ray_run.index("--batch-size-mode") + 1] == "global"
    assert ray_run[ray_run.index("--cpus-per-worker") + 1] == "2", "one worker pod's CPUs, read from the pod"
    assert json.loads((results / "comparison.json").read_text())["comparison"]["num_workers"] == 2


def local_timeouts(world):
    """A `timeout` first on PATH that records each use on this machine (not in a pod) and runs the real one."""
    record = world.root / "timeouts.log"
    wrapper = world.bin / "timeout"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >>"{record}"\nexec /usr/bin/timeout "$@"\n')
    wrapper.chmod(0o755)
    return record


@pytest.mark.parametrize("limit,outer", [(None, None), ("0", None), ("100", "--kill-after=30 160")])
def test_pod_run_bounds_a_run_only_when_run_timeout_s_is_set(world, tmp_path, limit, outer):
    """The sweep's launcher (training/launch.py, k8s target) runs each run through `cluster_benchmark.sh pod-run`.
    RUN_TIMEOUT_S unset or 0 is no limit; an outer `timeout 60` here used to kill every such run after 60 s."""
    ray_cluster_running(world)
    world.pod_file("run-1.json", '{"training_type": "ray_distributed"}')
    record = local_timeouts(world)
    run_dir = tmp_path / "run-1"
    settings = {"RUN_TIMEOUT_S": limit} if limit is not None else {}
    result = world.run(["bash", "scripts/lib/cluster_benchmark.sh", "pod-run", "ray", "2", "run-1.json", str(run_dir),
                        "--", "python", "-m", "training.ray_training", "--epochs", "1"], **settings)
    assert result.returncode == 0, result.stderr
    assert (run_dir / "results.json").read_text() == '{"training_type": "ray_distributed"}'
    uses = record.read_text().splitlines() if record.exists() else []
    outer_uses = [use for use in uses if use.startswith("--kill-after")]
    assert [use[:len(outer)] for use in outer_uses] == ([] if outer is None else [outer])
    in_pod = [c for c in world.calls("kubectl") if "training.ray_training" in c][-1]
    assert in_pod[in_pod.index("timeout") + 1] == (limit or "0") and in_pod[in_pod.index("exec") + 1] == HEAD
