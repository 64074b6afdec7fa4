"""scripts/kill-worker-pod.sh against stub kubectl: it deletes a worker pod that runs a Ray Train worker (never the
baseline's while it runs, never the head), at once with --force unless given a grace period.
"""

from tests.helpers.canned_answers import canned_kubectl_exec_exit
from tests.helpers.k8s_worlds import HEAD, WORKERS, ray_cluster_running, reachable
from tests.helpers.stub_tools import assert_one_line_error


def test_kill_worker_deletes_one_worker_at_once(world):
    ray_cluster_running(world)
    result = world.run_script("scripts/kill-worker-pod.sh", WAIT_FOR_REPLACEMENT=0)
    assert result.returncode == 0, result.stderr
    deleted = world.called_with("kubectl", "delete", "pod")
    assert len(deleted) == 1
    assert WORKERS[0] in deleted[0] and "--grace-period=0" in deleted[0]
    assert HEAD not in deleted[0]


def test_kill_worker_rejects_a_pod_that_is_not_a_worker(world):
    ray_cluster_running(world)
    result = world.run_script("scripts/kill-worker-pod.sh", WORKER_POD=HEAD)
    assert_one_line_error(result, 2, "WORKER_POD", "allowed:")
    assert world.called_with("kubectl", "delete") == []


def test_kill_worker_without_workers_is_an_infra_error(world):
    reachable(world)
    assert_one_line_error(world.run_script("scripts/kill-worker-pod.sh"), 4, "no running worker pod")


def test_kill_worker_force_deletes_at_once_and_says_so(world):
    """Defect 5: --grace-period=0 without --force is a 1 s grace period in kubectl."""
    ray_cluster_running(world)
    result = world.run_script("scripts/kill-worker-pod.sh", WAIT_FOR_REPLACEMENT=0)
    assert result.returncode == 0, result.stderr
    deleted = world.called_with("kubectl", "delete", "pod", WORKERS[0])
    assert "--grace-period=0" in deleted[0] and "--force" in deleted[0]
    assert "Force-deleted worker pod" in result.stdout and "no SIGTERM" in result.stdout


def test_kill_worker_with_a_grace_period_does_not_force(world):
    ray_cluster_running(world)
    result = world.run_script("scripts/kill-worker-pod.sh", WAIT_FOR_REPLACEMENT=0, GRACE_PERIOD_S=5)
    assert result.returncode == 0, result.stderr
    deleted = world.called_with("kubectl", "delete", "pod", WORKERS[0])
    assert "--grace-period=5" in deleted[0] and "--force" not in deleted[0]
    assert "SIGKILL after 5s" in result.stdout


def test_kill_worker_waits_for_ray_train_and_spares_the_baselines_pod(world):
    """Issue 20 item 5: started beside run-benchmark.sh, the first worker pod runs the baseline for minutes;
    the pod deleted must run a Ray Train worker (ray::RayTrainWorker)."""
    ray_cluster_running(world)
    world.on("kubectl", f"*exec {WORKERS[0]} *?R?ayTrainWorker*", *canned_kubectl_exec_exit(1))
    result = world.run_script("scripts/kill-worker-pod.sh", WAIT_FOR_REPLACEMENT=0)
    assert result.returncode == 0, result.stderr
    (deleted,) = world.called_with("kubectl", "delete", "pod")
    assert WORKERS[1] in deleted and WORKERS[0] not in deleted
    assert f"Deleting {WORKERS[1]}: it runs a Ray Train worker" in result.stdout
    probe = [c for c in world.called_with("kubectl", "exec") if any("ayTrainWorker" in a for a in c)][0]
    assert "ray::[R]ayTrainWorker" in probe[-1]  # never matches grep's own command line


def test_kill_worker_gives_up_when_ray_train_never_starts(world):
    ray_cluster_running(world)
    world.on("kubectl", "*exec *?R?ayTrainWorker*", *canned_kubectl_exec_exit(1))
    result = world.run_script("scripts/kill-worker-pod.sh", RAY_TRAIN_TIMEOUT_S=1)
    assert_one_line_error(result, 4, "RAY_TRAIN_TIMEOUT_S=1", "WORKER_POD")
    assert world.called_with("kubectl", "delete") == []
