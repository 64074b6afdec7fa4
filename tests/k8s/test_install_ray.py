"""scripts/install-ray.sh against stub helm, kubectl, minikube and docker: the pinned operator chart, the RayCluster of
the pod profile with the built image, the wait for every pod to run it, and what it says when pods stay Pending.
"""

import json

import pytest

from tests.helpers.canned_answers import canned_docker_image_id, canned_minikube_ssh_crictl_image_id
from tests.helpers.k8s_worlds import (WORKERS, image_ref, nodes_have_image, pods_run, ray_cluster_running,
                                      reachable)
from tests.helpers.stub_tools import StubWorld, assert_one_line_error, real_tool_visible


def install_world(world, provisioned="True"):
    ray_cluster_running(world)
    nodes_have_image(world)
    world.on("kubectl", "*get raycluster raybench*", 0, provisioned)
    return world


def test_install_pins_the_operator_chart_and_applies_the_built_image(world):
    install_world(world)
    world.on("kubectl", "*get secret checkpoint-store", 1)
    result = world.run_script("scripts/install-ray.sh")
    assert result.returncode == 0, result.stderr
    upgrade = world.called_with("helm", "upgrade", "--install", "kuberay-operator", "kuberay/kuberay-operator")
    assert len(upgrade) == 1
    call = upgrade[0]
    assert call[call.index("--version") + 1] == "1.7.0"
    assert call[call.index("--namespace") + 1] == "ray-system" and "--create-namespace" in call
    assert call[1:3] == ["--kube-context", "raybench"]
    assert world.called_with("helm", "repo", "add", "kuberay", "https://ray-project.github.io/kuberay-helm/")
    applied = world.stdin_text()
    assert "image: raybench-kit:ray2.60.0-tf2.21.0-" in applied and "raybench-kit:placeholder" not in applied
    assert len(world.called_with("kubectl", "create", "secret", "generic", "checkpoint-store")) == 1
    assert "port-forward --address 127.0.0.1" in result.stdout
    assert "apply -f k8s/ray-job-default.yaml" in result.stdout  # the RayJob of the profile installed


def test_install_twice_keeps_the_store_credentials(world):
    install_world(world)  # the Secret exists: `kubectl get secret` answers 0
    result = world.run_script("scripts/install-ray.sh")
    assert result.returncode == 0, result.stderr
    assert world.called_with("kubectl", "create", "secret") == []
    assert world.called_with("helm", "upgrade", "--install")


@pytest.mark.skipif(real_tool_visible("helm"), reason="a real helm is on the system PATH")
def test_install_without_helm_says_where_to_get_it(tmp_path):
    world = StubWorld(tmp_path, tools=("kubectl", "minikube", "docker"))
    assert_one_line_error(world.run_script("scripts/install-ray.sh"), 3, "helm is not installed", "helm.sh")


def test_install_against_an_unreachable_cluster_stops_before_helm(world):
    world.on("kubectl", "*get --raw=/readyz*", 1)
    assert_one_line_error(world.run_script("scripts/install-ray.sh"), 4, "cannot reach the Kubernetes cluster",
                          "setup-minikube.sh")
    assert world.calls("helm") == []


def test_install_reports_a_helm_failure(world):
    reachable(world)
    world.on("helm", "*upgrade --install*", 1)
    assert_one_line_error(world.run_script("scripts/install-ray.sh"), 4, "helm could not install")


def node_json(name, cpu="4", memory="8010000Ki"):
    return {"metadata": {"name": name}, "status": {"allocatable": {"cpu": cpu, "memory": memory}}}


def pod_json(ns, name, node, cpu, memory, phase="Running"):
    return {"metadata": {"namespace": ns, "name": name}, "status": {"phase": phase},
            "spec": {"nodeName": node, "containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}


def pending_world(world):
    install_world(world, provisioned="False")
    world.on("kubectl", "*get pods -l ray.io/cluster=raybench -o jsonpath=*", 0, WORKERS[0])
    world.on("kubectl", "*jsonpath={.status.phase}", 0, "Pending")
    return world


def test_install_explains_pods_pending_for_cpu_until_timeout(world):
    """Defect 3: the diagnosis says what is short on each node, and that MINIKUBE_CPUS cannot add any."""
    pending_world(world)
    world.on("kubectl", "*PodScheduled*", 0, "False")
    world.on("kubectl", "*get events*", 0, "FailedScheduling: 0/2 nodes are available: 2 Insufficient cpu.")
    nodes = {"items": [node_json("raybench"), node_json("raybench-m02")]}
    pods = {"items": [pod_json("kube-system", "etcd", "raybench", "3", "1Gi"),
                      pod_json("ray", "raybench-head-abcde", "raybench-m02", "1", "2Gi"),
                      pod_json("ray", "raybench-workers-worker-bbbbb", "raybench-m02", "2", "4Gi"),
                      pod_json("ray", WORKERS[0], "", "2", "4Gi", phase="Pending")]}
    world.on("kubectl", "*get nodes -o json", 0, json.dumps(nodes))
    world.on("kubectl", "*get pods --all-namespaces -o json", 0, json.dumps(pods))
    result = world.run_script("scripts/install-ray.sh", CLUSTER_TIMEOUT_S=1)
    assert_one_line_error(result, 4, "timed out", "RayCluster raybench to be provisioned")
    for shown in ("Insufficient cpu", f"{WORKERS[0]} asks for 2 CPUs and 4.00 GiB",
                  "node raybench: allocatable 4 CPUs / 7.64 GiB, free 1 CPUs / 6.64 GiB: short of 1 CPUs",
                  "node raybench-m02: allocatable 4 CPUs / 7.64 GiB, free 1 CPUs / 1.64 GiB: short of 1 CPUs and "
                  "2.36 GiB", "What is short: cpu and memory", "issue 16635", "CLUSTER_PROFILE=small"):
        assert shown in result.stderr, shown
    assert "give Minikube more" not in result.stderr


def test_install_names_an_image_pull_error(world):
    pending_world(world)
    world.on("kubectl", "*state.waiting.reason*", 0,
             "ray-worker\tcontainer\tErrImageNeverPull\tContainer image is not present with pull policy of Never")
    result = world.run_script("scripts/install-ray.sh", CLUSTER_TIMEOUT_S=1)
    assert result.returncode == 4
    assert "docker/build-and-push.sh" in result.stderr


def test_install_reads_init_container_image_pull_errors(world):
    """Defect 6: KubeRay's wait-gcs-ready init container fails the pull first; that is not a CPU shortage."""
    pending_world(world)
    world.on("kubectl", "*PodScheduled*", 0, "True")
    world.on("kubectl", "*state.waiting.reason*", 0,
             "wait-gcs-ready\tinit container\tImagePullBackOff\tBack-off pulling image \"raybench-kit:x\"\n"
             "ray-worker\tcontainer\tPodInitializing\t")
    result = world.run_script("scripts/install-ray.sh", CLUSTER_TIMEOUT_S=1)
    assert result.returncode == 4
    assert "init container wait-gcs-ready is waiting: ImagePullBackOff" in result.stderr
    assert "cannot get the image" in result.stderr and "docker/build-and-push.sh" in result.stderr
    assert "Not scheduled" not in result.stderr and "CLUSTER_PROFILE=small" not in result.stderr
    jsonpaths = [c for c in world.calls("kubectl") if any("initContainerStatuses" in a for a in c)]
    assert jsonpaths


def test_install_shows_the_log_of_a_crashing_init_container(world):
    pending_world(world)
    world.on("kubectl", "*state.waiting.reason*", 0, "wait-gcs-ready\tinit container\tCrashLoopBackOff\tback-off")
    result = world.run_script("scripts/install-ray.sh", CLUSTER_TIMEOUT_S=1)
    assert result.returncode == 4
    assert world.called_with("kubectl", "logs", WORKERS[0], "-c", "wait-gcs-ready", "--previous")


def test_install_applies_recreate_and_waits_until_every_pod_runs_the_new_image(world):
    """Defect 1: a re-install after a change must replace the pods; old pods keep the install waiting."""
    install_world(world)
    new = image_ref(world)
    world.rules = [r for r in world.rules if "imageID" not in r[1]]
    pods_run(world, "raybench-kit:ray2.60.0-tf2.21.0-0ld0ld0ld0")
    result = world.run_script("scripts/install-ray.sh", CLUSTER_TIMEOUT_S=1)
    assert_one_line_error(result, 4, f"every Ray pod to run {new}")
    applied = world.stdin_text()
    assert "upgradeStrategy:\n    type: Recreate\n" in applied
    annotate = world.called_with("kubectl", "annotate", "raycluster", "raybench", "--overwrite")
    assert annotate and f"raybench.kit/image={new}" in annotate[0]


@pytest.mark.parametrize("store", ["overlay2", "containerd"])
def test_install_records_the_nodes_image_id_and_finishes_once_the_pods_run_it(world, store):
    """Issue 20 item 2: with the containerd image store Docker's .Id is the index digest, which no node reports;
    the install waited its full timeout with every pod Running. The ID recorded is the nodes' own."""
    docker_id, node_id = canned_docker_image_id(store)
    install_world(world)
    world.on("docker", "image inspect*", 0, docker_id)
    world.rules = [r for r in world.rules if "imageID" not in r[1] and "crictl" not in r[1]]
    nodes_have_image(world, node_id)
    pods_run(world, image_ref(world), "docker://" + node_id)
    result = world.run_script("scripts/install-ray.sh", CLUSTER_TIMEOUT_S=5)
    assert result.returncode == 0, result.stderr
    annotate = world.called_with("kubectl", "annotate", "raycluster", "raybench")
    assert "raybench.kit/node-image-id=" + node_id in annotate[0]
    assert world.called_with("docker", "image", "inspect") == []


def test_install_stops_when_the_nodes_disagree_on_the_image(world):
    install_world(world)
    world.rules.insert(0, ("minikube", "*ssh -n raybench-m02*crictl inspecti*", "0",
                           canned_minikube_ssh_crictl_image_id("sha256:" + "ee" * 32), "", True))
    result = world.run_script("scripts/install-ray.sh", CLUSTER_TIMEOUT_S=1)
    assert_one_line_error(result, 4, "do not all hold one image", "FORCE_BUILD=1")


def test_install_small_profile_applies_smaller_pods_and_expects_their_cpus(world):
    install_world(world)
    world.rules = [r for r in world.rules if "import ray" not in r[1]]
    world.on("kubectl", "*exec * import ray*", 0, "nodes=3 worker_nodes=2 worker_cpus=2")
    result = world.run_script("scripts/install-ray.sh", CLUSTER_PROFILE="small")
    assert result.returncode == 0, result.stderr
    applied = world.stdin_text()
    assert applied.count('{cpu: "1", memory: 2Gi}') == 2 and '{cpu: "2", memory: 4Gi}' not in applied
    assert "apply -f k8s/ray-job-small.yaml" in result.stdout


def test_install_rejects_an_unknown_profile(world):
    result = world.run_script("scripts/install-ray.sh", CLUSTER_PROFILE="huge")
    assert_one_line_error(result, 2, "CLUSTER_PROFILE", "allowed: default, small")
    assert world.calls("helm") == []
