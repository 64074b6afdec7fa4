"""The in-pod command on a real multi-node Ray cluster: a head and two worker nodes in network namespaces.

The Kubernetes path cannot run here (no Docker, no Minikube), so this is the closest honest check of it: the
head has num-cpus 0 like the head pod, each worker node has its own IP like a worker pod, token auth is on, and
the head runs exactly the command scripts/lib/cluster_benchmark.sh runs in the head pod (taken from that file,
not retyped). The results JSON must show the two Ray Train ranks on the two worker nodes.

Needs root and `ip netns`; skipped otherwise. Whatever happens, the namespaces and bridge are removed.
"""

import json
import subprocess

import pytest

from tests.helpers.netns import REPO_ROOT, NetnsCluster

UNAVAILABLE = NetnsCluster.unavailable_reason()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"network-namespace cluster: {UNAVAILABLE}")


def in_pod_ray_command(shared_storage, **settings):
    """The head pod's command, as cluster_benchmark.sh builds it, with a storage path every namespace shares."""
    env = {"PATH": "/usr/bin:/bin", "CHECKPOINT_STORAGE_URI": str(shared_storage), **settings}
    code = "source scripts/lib/cluster_benchmark.sh && cluster_benchmark::ray_training_argv"
    out = subprocess.run(["bash", "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, check=True)
    return [word.decode() for word in out.stdout.split(b"\0") if word]


@pytest.fixture
def netns_cluster():
    cluster = NetnsCluster(num_workers=2, cpus_per_worker=1)
    try:
        cluster.setup_network()
        yield cluster
    finally:
        cluster.teardown()
        assert cluster.teardown_problems == []
        assert cluster.leftovers() == []


def test_each_node_has_its_own_address(netns_cluster):
    for role, _, ip in netns_cluster.nodes:
        assert netns_cluster.addresses(role) == sorted(["127.0.0.1", ip])


def test_nodes_see_the_checkout_and_keep_their_temp_folders_apart(netns_cluster):
    # /tmp is not hidden (a clone under /tmp and its .venv stay reachable); /tmp/kit and the temp folder are per node.
    probe = ('import os, sys, tempfile; print(os.path.isfile(sys.argv[1]), tempfile.gettempdir(), '
             'os.environ["RAY_TMPDIR"], os.path.realpath("/tmp/kit") == "/tmp/kit")')
    for role in ("head", "worker1"):
        out = subprocess.run(netns_cluster.command(role, ["python", "-c", probe, str(REPO_ROOT / "training" /
                                                                                   "ray_training.py")]),
                             env=netns_cluster.env(role), capture_output=True, text=True, check=True).stdout.split()
        assert out == ["True", str(netns_cluster.node_dir(role)), str(netns_cluster.node_dir(role)), "True"]
    (netns_cluster.node_dir("head") / "kit" / "marker").write_text("head")
    seen = subprocess.run(netns_cluster.command("worker1", ["ls", "/tmp/kit"]), env=netns_cluster.env("worker1"),
                          capture_output=True, text=True, check=True).stdout.split()
    assert "marker" not in seen


def test_teardown_removes_namespaces_and_bridge_even_after_partial_setup():
    cluster = NetnsCluster()
    cluster.setup_network()
    cluster.teardown()
    cluster.teardown()  # a second call finds nothing to do
    assert cluster.leftovers() == []
    assert cluster.teardown_problems == []


@pytest.mark.slow
def test_head_pod_command_trains_on_both_worker_nodes(netns_cluster):
    netns_cluster.start_ray()
    shared = netns_cluster.node_dir("shared-storage")
    shared.mkdir()
    argv = in_pod_ray_command(shared, NUM_WORKERS="2", CPUS_PER_WORKER="1", EPOCHS="2", DATASET="digits",
                              TRAIN_SAMPLES="256", TEST_SAMPLES="128", BATCH_SIZE="32", PROGRESS_INTERVAL="1")
    assert argv[:3] == ["python", "-m", "training.ray_training"]
    assert argv[argv.index("--ray-address") + 1] == "auto" and argv[argv.index("--num-workers") + 1] == "2"
    # The environment's training settings reach the pod as flags (it sees no environment of this machine).
    assert argv[argv.index("--dataset") + 1] == "digits" and argv[argv.index("--train-samples") + 1] == "256"
    assert argv[argv.index("--progress-interval") + 1] == "1"
    # `python` of the kit's virtualenv, which the namespace PATH puts first, stands in for the image's.
    proc = netns_cluster.run_in_head(["sh", "-c", 'mkdir -p /tmp/kit && exec "$@"', "sh", *argv], timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Rank 0's in-epoch progress reaches the head's stdout, which `kubectl exec` streams to the laptop.
    assert "[ray 2w] epoch 1/2  step " in proc.stdout

    results_file = netns_cluster.node_dir("head") / "kit" / "ray_results_2workers.json"
    results = json.loads(results_file.read_text())
    assert results["training_type"] == "ray_distributed"
    assert results["epochs_completed"] == 2
    node_ip_by_rank = {w["rank"]: w["node_ip"] for w in results["workers"]}
    assert sorted(node_ip_by_rank) == [0, 1]
    # The two Ray Train workers ran on the two worker nodes: two distinct IPs, both worker nodes', neither the
    # head's (it has num-cpus 0, like the head pod), and each knew its node as a pod knows its Kubernetes node.
    ips = list(node_ip_by_rank.values())
    assert len(set(ips)) == 2, results["workers"]
    assert netns_cluster.head_ip not in ips
    assert sorted(ips) == sorted(netns_cluster.worker_ips)
    assert sorted(w["kubernetes_node"] for w in results["workers"]) == ["worker1", "worker2"]
    # With a shipped runtime_env (py_modules and env_vars, as in a pod) the trainer's worker_runtime_env still
    # reaches each worker: its TensorFlow import began as its process started.
    assert [w["tf_import_started_by"] for w in results["workers"]] == ["process start", "process start"]
