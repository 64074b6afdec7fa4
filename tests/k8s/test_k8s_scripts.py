"""The Minikube + KubeRay scripts, run against stub kubectl/helm/minikube/docker that record every call.

Each test sets up what the cluster answers (rules), runs one script, and checks the user-visible contract:
exit code, the one `error:` line, and the calls that matter (pinned chart version, namespaces, context).
"""

import json
import shutil
import signal
import subprocess
import time

import pytest

from tests.helpers.k8s import (DOCKER_DESKTOP_16GB, REPO_ROOT, StubWorld, assert_one_line_error,
                                canned_docker_image_id, canned_docker_info, canned_kubectl_exec_exit,
                                canned_minikube_ssh_crictl_image_id, real_tool_visible)

SCRIPTS = ["scripts/setup-minikube.sh", "scripts/install-ray.sh", "scripts/cleanup.sh",
           "scripts/kill-worker-pod.sh", "docker/build-and-push.sh"]
LIBS = ["scripts/lib/k8s.sh", "scripts/lib/cluster_benchmark.sh"]
HEAD = "raybench-head-abcde"
WORKERS = ["raybench-workers-worker-aaaaa", "raybench-workers-worker-bbbbb"]
NODES = "raybench\t192.168.49.2\nraybench-m02\t192.168.49.3"
# The image ID the nodes report for the kit's image (a config digest, as cri-dockerd gives it).
NODE_IMAGE_ID = canned_docker_image_id("overlay2")[1]


@pytest.fixture
def world(tmp_path):
    return StubWorld(tmp_path)


def reachable(world):
    return world.on("kubectl", "*get --raw=/readyz*", 0)


def image_ref(world, **settings):
    """The image reference the scripts compute in this world (the content hash of this checkout)."""
    out = world.run_bash("source scripts/lib/k8s.sh && k8s::image_ref", **settings)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def pods_run(world, image, image_id="", pods=None):
    """The running Ray pods (head and workers) report running `image` (and `image_id`)."""
    rows = [f"{pod}\t{image}\t{image_id}" for pod in (pods or [HEAD, *WORKERS])]
    world.on("kubectl", "*containerStatuses?0?.imageID*", 0, "\n".join(rows))
    return world


def applied_image(world, image, image_id=""):
    """The RayCluster records `image` as the one install-ray.sh applied."""
    world.on("kubectl", "*get raycluster raybench*kit/node-image-id}*", 0, image_id)
    world.on("kubectl", "*get raycluster raybench*kit/image}*", 0, image)
    return world


def ray_cluster_running(world, worker_cpus="2", versions="2.60.0 2.21.0 2.21.0", image=None):
    reachable(world)
    image = image or image_ref(world)
    applied_image(world, image)
    pods_run(world, image)
    world.on("kubectl", "*ray.io/node-type=head*", 0, HEAD)
    world.on("kubectl", "*ray.io/node-type=worker*", 0, "\n".join(WORKERS))
    world.on("kubectl", "*resources.limits.cpu*", 0, worker_cpus)
    world.on("kubectl", "*importlib.metadata*", 0, versions)
    world.on("kubectl", "*exec * import ray*", 0, "nodes=3 worker_nodes=2 worker_cpus=4")
    return world


# --- shared contract: shellcheck, --help -------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("path", SCRIPTS + LIBS + ["tests/k8s/stubs/stub-common.sh", "tests/k8s/stubs/kubectl"])
def test_script_passes_shellcheck(path):
    result = subprocess.run(["shellcheck", "-x", path], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_prints_usage_and_settings_without_touching_anything(world, script):
    result = world.run_script(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "Settings:" in result.stdout
    assert world.calls() == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_unknown_argument_is_bad_input(world, script):
    assert_one_line_error(world.run_script(script, "--frobnicate"), 2, "--frobnicate")


# --- setup-minikube.sh -------------------------------------------------------------------------------------

def docker_host(world, cpus=8, mem_bytes=32 * 1024**3, architecture="x86_64"):
    for field, value in canned_docker_info(cpus, mem_bytes, architecture).items():
        world.on("docker", f"info --format {{{{.{field}}}}}", 0, value)
    return world


def nodes_have_image(world, image_id=NODE_IMAGE_ID):
    """Both nodes of the profile report the kit's image (crictl through minikube ssh) with `image_id`."""
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh*crictl inspecti*", 0, canned_minikube_ssh_crictl_image_id(image_id), raw=True)
    return world


def healthy_nodes(world):
    world.on("kubectl", "*Ready*", 0, "True\nTrue")
    world.on("kubectl", "*items?0?.metadata.name*", 0, "raybench")
    world.on("kubectl", "*items?-1:?.metadata.name*", 0, "raybench-m02")
    world.on("kubectl", "*get pod server -o jsonpath={.status.podIP}", 0, "10.244.0.5")
    world.on("kubectl", "*get pod client -o jsonpath={.status.phase}", 0, "Succeeded")
    return world


def setup_succeeds(world, profile):
    """setup-minikube.sh on a roomy Docker host whose nodes come up healthy, the profile in state `profile`."""
    docker_host(world)
    world.minikube_profile(profile)
    healthy_nodes(world)
    result = world.run_script("scripts/setup-minikube.sh")
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.skipif(real_tool_visible("docker"), reason="a real docker is on the system PATH")
def test_setup_without_docker_says_where_to_get_it(tmp_path):
    world = StubWorld(tmp_path, tools=("minikube", "kubectl"))
    assert_one_line_error(world.run_script("scripts/setup-minikube.sh"), 3, "docker is not installed",
                          "https://docs.docker.com/get-docker/")


def test_setup_with_stopped_docker_daemon_stops_before_minikube(world):
    world.on("docker", "info*", 1)
    assert_one_line_error(world.run_script("scripts/setup-minikube.sh"), 3, "Docker daemon does not answer")
    assert world.calls("minikube") == []


def test_setup_refuses_a_node_larger_than_docker_memory(world):
    docker_host(world, mem_bytes=6 * 1024**3)
    assert_one_line_error(world.run_script("scripts/setup-minikube.sh", MINIKUBE_MEMORY=8192), 3,
                          "MINIKUBE_MEMORY=8192", "6144 MiB")
    assert world.calls("minikube") == []


@pytest.mark.parametrize("setting,value", [("MINIKUBE_NODES", "two"), ("MINIKUBE_NODES", "1"),
                                           ("MINIKUBE_CPUS", "0"), ("MINIKUBE_MEMORY", "1024")])
def test_setup_rejects_bad_settings(world, setting, value):
    assert_one_line_error(world.run_script("scripts/setup-minikube.sh", **{setting: value}), 2, setting)
    assert world.calls() == []


def test_setup_creates_the_profile_and_checks_pods_reach_across_nodes(world):
    result = setup_succeeds(world, "missing")
    assert "Creating Minikube profile raybench" in result.stdout
    assert "not found" not in result.stdout + result.stderr  # minikube's message is never read as a state
    start = world.called_with("minikube", "start")
    assert len(start) == 1
    # An 8-CPU / 32 GiB Docker: the default profile's busiest node needs 5 CPUs and 8 GiB (k8s_plan.needs).
    for words in (["--profile", "raybench"], ["--nodes", "2"], ["--cpus", "5"], ["--memory", "8192"]):
        assert words[1] == start[0][start[0].index(words[0]) + 1]
    assert "--driver=docker" in start[0] and "--container-runtime=docker" in start[0]
    assert world.called_with("minikube", "addons", "enable", "metrics-server")
    manifests = world.stdin_text()
    assert "nodeName: raybench\n" in manifests and "nodeName: raybench-m02\n" in manifests
    assert "http://10.244.0.5:8080/ok" in manifests
    assert all(c[1:3] == ["--context", "raybench"] for c in world.calls("kubectl"))


def test_setup_reuses_a_running_profile(world):
    result = setup_succeeds(world, "running")
    assert "reusing it" in result.stdout
    assert world.called_with("minikube", "start") == []


@pytest.mark.parametrize("state", ["stopped", "apiserver-stopped"])
def test_setup_starts_an_existing_profile_that_is_not_fully_up(world, state):
    result = setup_succeeds(world, state)
    assert "Starting the existing Minikube profile raybench (node hosts: " in result.stdout
    assert "Profile" not in result.stdout.split("Starting the existing")[1].splitlines()[0]
    assert len(world.called_with("minikube", "start")) == 1


def test_setup_state_comes_from_the_exit_code_and_json_not_the_message(world):
    """Defect 2: the first run printed 'Starting the existing (* Profile "raybench" not found ...) profile'."""
    result = setup_succeeds(world, "missing")
    assert "Starting the existing" not in result.stdout
    status = world.called_with("minikube", "status")
    assert status and all("-o" in c and c[c.index("-o") + 1] == "json" for c in status)


def test_setup_fails_clearly_when_pods_cannot_reach_each_other(world):
    docker_host(world)
    world.minikube_profile("running")
    world.on("kubectl", "*get pod client -o jsonpath={.status.phase}", 0, "Failed")
    healthy_nodes(world)
    result = world.run_script("scripts/setup-minikube.sh", NODE_READY_TIMEOUT_S=1)
    assert_one_line_error(result, 4, "cannot reach a pod on raybench")
    assert world.called_with("kubectl", "delete", "namespace", "raybench-netcheck")  # the trap cleaned up


# --- docker/build-and-push.sh ------------------------------------------------------------------------------

def test_build_builds_loads_and_verifies_each_node_when_a_node_lacks_the_image(world):
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh*crictl*", *canned_kubectl_exec_exit(1))  # no node has it, before or after the load
    result = world.run_script("docker/build-and-push.sh")
    assert_one_line_error(result, 4, "still lacks")
    assert "raybench raybench-m02" in result.stderr  # which nodes
    build = world.called_with("docker", "build")
    assert len(build) == 1
    assert "BASE_IMAGE=rayproject/ray:2.60.0-py311-cpu" in build[0]
    tag = build[0][build[0].index("--tag") + 1]
    assert tag.startswith("raybench-kit:ray2.60.0-tf2.21.0-") and not tag.endswith(":latest")


def test_build_loads_the_image_from_a_saved_file_not_through_minikubes_memory(world):
    """Issue 20 item 4: `minikube image load IMAGE` buffers the whole image (minikube#17785); a file streams."""
    nodes_have_image(world)
    result = world.run_script("docker/build-and-push.sh", FORCE_BUILD=1)
    assert result.returncode == 0, result.stderr
    tag = world.called_with("docker", "build")[0][world.called_with("docker", "build")[0].index("--tag") + 1]
    (save,) = world.called_with("docker", "save")
    tarball = save[save.index("-o") + 1]
    assert save[-1] == tag and tarball.endswith(tag.replace(":", "_") + ".tar")
    (load,) = world.called_with("minikube", "image", "load")
    assert load[-1] == tarball and tag not in load
    calls = world.calls()
    assert calls.index(save) < calls.index(load)
    # The copy minikube leaves in each node's /var/lib/minikube/images/ goes right after the load.
    removals = [c for c in world.called_with("minikube", "ssh") if any("/var/lib/minikube/images" in a for a in c)]
    assert {c[c.index("-n") + 1] for c in removals} == {"raybench", "raybench-m02"}
    assert all("-name 'raybench-kit_*' -delete" in c[-1] for c in removals)


def test_build_refuses_nodes_that_hold_different_images_under_the_tag(world):
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh -n raybench-m02*crictl inspecti*", 0,
             canned_minikube_ssh_crictl_image_id("sha256:" + "ee" * 32), raw=True)
    nodes_have_image(world)
    result = world.run_script("docker/build-and-push.sh", FORCE_BUILD=1)
    assert_one_line_error(result, 4, "different images")
    assert "ee" * 32 in result.stderr and NODE_IMAGE_ID in result.stderr


def test_build_is_skipped_when_every_node_has_the_image(world):
    nodes_have_image(world)
    result = world.run_script("docker/build-and-push.sh")
    assert result.returncode == 0, result.stderr
    assert world.called_with("docker", "build") == []
    nodes_checked = {c[c.index("-n") + 1] for c in world.called_with("minikube", "ssh")}
    assert nodes_checked == {"raybench", "raybench-m02"}
    assert result.stdout.strip().splitlines()[-1].startswith("raybench-kit:ray2.60.0-")


def test_build_refuses_latest(world):
    assert_one_line_error(world.run_script("docker/build-and-push.sh", IMAGE_TAG="latest"), 2, "IMAGE_TAG")


# --- install-ray.sh ----------------------------------------------------------------------------------------

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


def test_install_rejects_an_unknown_profile(world):
    result = world.run_script("scripts/install-ray.sh", CLUSTER_PROFILE="huge")
    assert_one_line_error(result, 2, "CLUSTER_PROFILE", "allowed: default, small")
    assert world.calls("helm") == []


# --- cleanup.sh --------------------------------------------------------------------------------------------

def test_cleanup_removes_cluster_operator_and_namespaces(world):
    reachable(world)
    world.on("helm", "*status kuberay-operator", 0)
    result = world.run_script("scripts/cleanup.sh")
    assert result.returncode == 0, result.stderr
    assert world.called_with("kubectl", "delete", "raycluster", "raybench", "--ignore-not-found")
    assert world.called_with("helm", "uninstall", "kuberay-operator")
    for ns in ("ray", "ray-system"):
        assert world.called_with("kubectl", "delete", "namespace", ns, "--ignore-not-found")
    assert world.called_with("minikube", "delete") == []


def test_cleanup_when_everything_is_already_gone_succeeds(world):
    reachable(world)
    world.on("helm", "*status kuberay-operator", 1)
    world.on("kubectl", "*get crd rayclusters.ray.io", 1)
    for _ in range(2):
        result = world.run_script("scripts/cleanup.sh")
        assert result.returncode == 0, result.stderr
    assert world.called_with("helm", "uninstall") == []


def test_cleanup_of_an_unreachable_cluster_only_warns(world):
    world.on("kubectl", "*get --raw=/readyz*", 1)
    result = world.run_script("scripts/cleanup.sh")
    assert result.returncode == 0
    assert "not reachable" in result.stderr
    assert [c for c in world.calls("kubectl") if "delete" in c] == []


def test_cleanup_all_deletes_the_profile_and_leaves_results(world):
    world.on("kubectl", "*get --raw=/readyz*", 1)
    results = REPO_ROOT / "results"
    before = sorted(p.name for p in results.iterdir()) if results.exists() else None
    result = world.run_script("scripts/cleanup.sh", "--all")
    assert result.returncode == 0, result.stderr
    assert world.called_with("minikube", "delete", "-p", "raybench")
    assert (sorted(p.name for p in results.iterdir()) if results.exists() else None) == before


# --- kill-worker-pod.sh ------------------------------------------------------------------------------------

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


# --- cluster_benchmark::run --------------------------------------------------------------------------------

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


# --- issue 12: the defects a real cluster would hit --------------------------------------------------------

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
                                      "CHECKPOINT_STORAGE_URI": "s3://elsewhere/runs"}])
def test_the_head_pods_ray_run_is_the_one_the_rayjob_is_generated_from(world, environ):
    """One owner for the head run's values: the benchmark's command and k8s/ray-job.yaml's both come from
    settings.pod_ray_values, with what the environment sets."""
    from training.core import settings

    result = world.run_bash("source scripts/lib/cluster_benchmark.sh && cluster_benchmark::ray_training_argv",
                            **environ)
    assert result.returncode == 0, result.stderr
    values = dict(settings.pod_ray_values(environ), **({"RUN_ID": "r7-ray"} if "RUN_ID" in environ else {}))
    assert result.stdout.split("\0")[:-1] == ["python"] + settings.trainer_argv("ray", "pod", values, environ=environ)


def _a_valid_value(setting):
    from training.core import settings

    if setting.name in settings.CHOICES:
        return settings.CHOICES[setting.name][-1]
    for candidate in ("1", "0.5", "adaptive", "text"):
        try:
            settings.parser_of(setting)(candidate)
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


@pytest.mark.parametrize("setting,value", [("BASE_IMAGE", "rayproject/ray:2.60.0-py311-cpu-aarch64"),
                                           ("PREFETCH_CIFAR10", "0")])
def test_image_tag_changes_with_base_image_and_prefetch(world, setting, value):
    """Defect 9: either setting changes the image, so it must change the tag."""
    assert image_ref(world) != image_ref(world, **{setting: value})


def test_build_picks_the_aarch64_base_on_an_arm64_docker(world):
    """Defect 10: untagged-architecture rayproject/ray images are amd64."""
    world.on("docker", "info --format {{.Architecture}}", 0, "aarch64")
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh*crictl*", 1)
    world.run_script("docker/build-and-push.sh")
    build = world.called_with("docker", "build")
    assert "BASE_IMAGE=rayproject/ray:2.60.0-py311-cpu-aarch64" in build[0]


def test_build_context_holds_only_what_the_image_needs(world):
    """Defect 10: without BuildKit Dockerfile.dockerignore is ignored; the context must be small anyway."""
    stub = world.bin / "docker"
    stub.unlink()
    listing = world.root / "context.txt"
    stub.write_text("#!/usr/bin/env bash\n"
                    f'if [[ "$1" == build ]]; then (cd "${{@: -1}}" && find . -type f | sort) >"{listing}"; fi\n'
                    f'exec "{REPO_ROOT}/tests/k8s/stubs/docker" "$@"\n')
    stub.chmod(0o755)
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh*crictl*", 1)
    world.run_script("docker/build-and-push.sh")
    files = listing.read_text().split()
    assert "./docker/Dockerfile" in files and "./docker/requirements.txt" in files and "./.dockerignore" in files
    assert "./docker/requirements-laptop.txt" in files  # requirements.txt includes it
    assert all(f.startswith(("./training/", "./docker/", "./.dockerignore")) for f in files), files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc") or ".venv" in f]
    build = world.called_with("docker", "build")[0]
    assert build[-1] != str(REPO_ROOT)


def test_cleanup_images_removes_kit_images_from_nodes_and_cache(world):
    """Defect 10: `minikube image load` leaves a multi-GB tarball per tag in Minikube's cache."""
    reachable(world)
    world.helm_release_missing()
    world.on("minikube", "*image ls --format short", 0,
             "registry.k8s.io/pause:3.10\ndocker.io/library/raybench-kit:ray2.60.0-tf2.21.0-0ld0ld0ld0")
    result = world.run_script("scripts/cleanup.sh", "--images")
    assert result.returncode == 0, result.stderr
    removed = [c[-1] for c in world.called_with("minikube", "image", "rm")]
    assert "raybench-kit:ray2.60.0-tf2.21.0-0ld0ld0ld0" in removed and image_ref(world) in removed
    assert not [r for r in removed if "pause" in r]
    assert {c[-1] for c in world.called_with("minikube", "cache", "delete")} == set(removed)


def test_cleanup_without_images_says_how_to_remove_them(world):
    reachable(world)
    world.helm_release_missing()
    result = world.run_script("scripts/cleanup.sh")
    assert result.returncode == 0, result.stderr
    assert "scripts/cleanup.sh --images" in result.stdout
    assert world.called_with("minikube", "image") == []


# --- scripts/run-benchmark.sh on the cluster target, end to end against the stubs ----------------------------

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


# --- issue 20: the laptops users have (Apple Silicon, a fresh Docker, 16 GB) ----------------------------------

def test_small_profile_on_a_16gb_macs_docker_reaches_minikube_start_with_sizes_docker_has(world):
    """Done when: Docker Desktop's default on a 16 GB Mac (4 CPUs, 7,836 MiB) used to stop setup at once with
    'MINIKUBE_MEMORY=8192 MiB but Docker has only 7836 MiB', also with the small profile the docs advise."""
    desktop = DOCKER_DESKTOP_16GB
    docker_host(world, desktop["NCPU"], desktop["MemTotal"], desktop["Architecture"])
    world.minikube_profile("missing")
    healthy_nodes(world)
    result = world.run_script("scripts/setup-minikube.sh", CLUSTER_PROFILE="small")
    assert result.returncode == 0, result.stderr
    (start,) = world.called_with("minikube", "start")
    cpus, memory = int(start[start.index("--cpus") + 1]), int(start[start.index("--memory") + 1])
    assert 2 <= cpus <= 4 and 2048 <= memory <= 7836, (cpus, memory)
    assert (cpus, memory) == (3, 5120)  # the small profile's busiest node: head, store, a worker, control plane
    assert "--container-runtime=docker" in start
    assert "MINIKUBE_CPUS=3 and MINIKUBE_MEMORY=5120 chosen" in result.stdout and "7836 MiB" in result.stdout


def test_default_profile_on_an_8_core_32gb_docker_gets_at_least_its_fit_minimum(world):
    from scripts.lib import k8s_plan

    setup_succeeds(world, "missing")
    (start,) = world.called_with("minikube", "start")
    need = k8s_plan.needs("default")
    assert int(start[start.index("--cpus") + 1]) >= need["node_cpus"] > 4  # 4 was the old default
    assert int(start[start.index("--memory") + 1]) >= need["node_mib"]


def test_set_sizes_are_kept_and_not_replaced_by_the_chosen_ones(world):
    docker_host(world)
    world.minikube_profile("missing")
    healthy_nodes(world)
    result = world.run_script("scripts/setup-minikube.sh", MINIKUBE_CPUS=2, MINIKUBE_MEMORY=4096)
    assert result.returncode == 0, result.stderr
    (start,) = world.called_with("minikube", "start")
    assert start[start.index("--cpus") + 1] == "2" and start[start.index("--memory") + 1] == "4096"
    assert "chosen" not in result.stdout


def test_network_check_also_goes_through_a_services_dns_name(world):
    """Ray's workers reach the head through its Service's DNS name: CoreDNS and kube-proxy must work too."""
    setup_succeeds(world, "running")
    manifests = world.stdin_text()
    assert "kind: Service" in manifests and "app.kubernetes.io/name: netcheck-server" in manifests
    assert "http://server.raybench-netcheck.svc.cluster.local:8080/ok" in manifests
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    import yaml

    docs = [d for d in yaml.safe_load_all(manifests.replace("\napiVersion:", "\n---\napiVersion:")) if d]
    service = [d for d in docs if d["kind"] == "Service"]
    server = [d for d in docs if d["kind"] == "Pod" and d["metadata"]["name"] == "server"]
    assert len(service) == 1 and len(server) == 1
    assert service[0]["spec"]["selector"].items() <= server[0]["metadata"]["labels"].items()
    for doc in docs:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)


def test_network_check_names_the_service_dns_when_only_that_fails(world):
    docker_host(world)
    world.minikube_profile("running")
    world.on("kubectl", "*get pod client -o jsonpath={.status.phase}", 0, "Failed")
    world.on("kubectl", "*get pod client*terminated.exitCode*", 0, "3")
    healthy_nodes(world)
    result = world.run_script("scripts/setup-minikube.sh", NODE_READY_TIMEOUT_S=1)
    assert_one_line_error(result, 4, "by its IP but not through the Service name",
                          "server.raybench-netcheck.svc.cluster.local")


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


def test_cleanup_images_removes_the_node_side_tarballs(world):
    """`minikube image load` leaves a tarball per tag in each node's /var/lib/minikube/images/
    (pkg/minikube/machine/cache_images.go loadRoot) and never removes it."""
    reachable(world)
    world.helm_release_missing()
    world.on("minikube", "*node list", 0, NODES)
    result = world.run_script("scripts/cleanup.sh", "--images")
    assert result.returncode == 0, result.stderr
    removals = [c for c in world.called_with("minikube", "ssh") if any("/var/lib/minikube/images" in a for a in c)]
    assert {c[c.index("-n") + 1] for c in removals} == {"raybench", "raybench-m02"}
    assert all("-name 'raybench-kit_*' -delete" in c[-1] for c in removals)


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
