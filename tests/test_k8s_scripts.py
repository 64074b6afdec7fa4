"""The Minikube + KubeRay scripts, run against stub kubectl/helm/minikube/docker that record every call.

Each test sets up what the cluster answers (rules), runs one script, and checks the user-visible contract:
exit code, the one `error:` line, and the calls that matter (pinned chart version, namespaces, context).
"""

import shutil
import subprocess

import pytest

from k8s_helpers import REPO_ROOT, StubWorld, assert_one_line_error, real_tool_visible

SCRIPTS = ["scripts/setup-minikube.sh", "scripts/install-ray.sh", "scripts/cleanup.sh",
           "scripts/kill-worker-pod.sh", "docker/build-and-push.sh"]
LIBS = ["scripts/lib/k8s.sh", "scripts/lib/cluster_benchmark.sh"]
HEAD = "raybench-head-abcde"
WORKERS = ["raybench-workers-worker-aaaaa", "raybench-workers-worker-bbbbb"]
NODES = "raybench\t192.168.49.2\nraybench-m02\t192.168.49.3"


@pytest.fixture
def world(tmp_path):
    return StubWorld(tmp_path)


def reachable(world):
    return world.on("kubectl", "*get --raw=/readyz*", 0)


def ray_cluster_running(world, worker_cpus="2", versions="2.60.0 2.21.0 2.21.0"):
    reachable(world)
    world.on("kubectl", "*ray.io/node-type=head*", 0, HEAD)
    world.on("kubectl", "*ray.io/node-type=worker*", 0, "\n".join(WORKERS))
    world.on("kubectl", "*resources.limits.cpu*", 0, worker_cpus)
    world.on("kubectl", "*importlib.metadata*", 0, versions)
    world.on("kubectl", "*exec * import ray*", 0, "nodes=3 worker_nodes=2 worker_cpus=4")
    return world


# --- shared contract: shellcheck, --help -------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("path", SCRIPTS + LIBS + ["tests/k8s_stubs/stub-common.sh", "tests/k8s_stubs/kubectl"])
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

def docker_host(world, cpus=8, mem_bytes=32 * 1024**3):
    world.on("docker", "info --format {{.NCPU}}", 0, str(cpus))
    world.on("docker", "info --format {{.MemTotal}}", 0, str(mem_bytes))
    return world


def healthy_nodes(world):
    world.on("kubectl", "*Ready*", 0, "True\nTrue")
    world.on("kubectl", "*items?0?.metadata.name*", 0, "raybench")
    world.on("kubectl", "*items?-1:?.metadata.name*", 0, "raybench-m02")
    world.on("kubectl", "*get pod server -o jsonpath={.status.podIP}", 0, "10.244.0.5")
    world.on("kubectl", "*get pod client -o jsonpath={.status.phase}", 0, "Succeeded")
    return world


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
    assert_one_line_error(world.run_script("scripts/setup-minikube.sh"), 3, "MINIKUBE_MEMORY=8192", "6144 MiB")
    assert world.calls("minikube") == []


@pytest.mark.parametrize("setting,value", [("MINIKUBE_NODES", "two"), ("MINIKUBE_NODES", "1"),
                                           ("MINIKUBE_CPUS", "0"), ("MINIKUBE_MEMORY", "1024")])
def test_setup_rejects_bad_settings(world, setting, value):
    assert_one_line_error(world.run_script("scripts/setup-minikube.sh", **{setting: value}), 2, setting)
    assert world.calls() == []


def test_setup_creates_the_profile_and_checks_pods_reach_across_nodes(world):
    docker_host(world)
    world.on("minikube", "*status --format {{.Host}}", 85, "")  # no such profile yet
    healthy_nodes(world)
    result = world.run_script("scripts/setup-minikube.sh")
    assert result.returncode == 0, result.stderr
    start = world.called_with("minikube", "start")
    assert len(start) == 1
    for words in (["--profile", "raybench"], ["--nodes", "2"], ["--cpus", "4"], ["--memory", "8192"]):
        assert words[1] == start[0][start[0].index(words[0]) + 1]
    assert "--driver=docker" in start[0]
    assert world.called_with("minikube", "addons", "enable", "metrics-server")
    manifests = world.stdin_text()
    assert "nodeName: raybench\n" in manifests and "nodeName: raybench-m02\n" in manifests
    assert "http://10.244.0.5:8080/ok" in manifests
    assert all(c[1:3] == ["--context", "raybench"] for c in world.calls("kubectl"))


def test_setup_reuses_a_running_profile(world):
    docker_host(world)
    world.on("minikube", "*status --format {{.Host}}", 0, "Running")
    healthy_nodes(world)
    result = world.run_script("scripts/setup-minikube.sh")
    assert result.returncode == 0, result.stderr
    assert "reusing it" in result.stdout
    assert world.called_with("minikube", "start") == []


def test_setup_fails_clearly_when_pods_cannot_reach_each_other(world):
    docker_host(world)
    world.on("minikube", "*status --format {{.Host}}", 0, "Running")
    world.on("kubectl", "*get pod client -o jsonpath={.status.phase}", 0, "Failed")
    healthy_nodes(world)
    result = world.run_script("scripts/setup-minikube.sh", NODE_READY_TIMEOUT_S=1)
    assert_one_line_error(result, 4, "cannot reach a pod on raybench")
    assert world.called_with("kubectl", "delete", "namespace", "raybench-netcheck")  # the trap cleaned up


# --- docker/build-and-push.sh ------------------------------------------------------------------------------

def test_build_builds_loads_and_verifies_each_node_when_a_node_lacks_the_image(world):
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh*crictl*", 1)  # no node has it, before or after the load
    result = world.run_script("docker/build-and-push.sh")
    assert_one_line_error(result, 4, "still lacks")
    build = world.called_with("docker", "build")
    assert len(build) == 1
    assert "BASE_IMAGE=rayproject/ray:2.60.0-py311-cpu" in build[0]
    tag = build[0][build[0].index("--tag") + 1]
    assert tag.startswith("raybench-kit:ray2.60.0-tf2.21.0-") and not tag.endswith(":latest")
    assert world.called_with("minikube", "image", "load", tag)


def test_build_is_skipped_when_every_node_has_the_image(world):
    world.on("minikube", "*node list", 0, NODES)
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
    world.on("minikube", "*node list", 0, NODES)
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


def test_install_explains_pods_pending_for_cpu_until_timeout(world):
    install_world(world, provisioned="False")
    world.on("kubectl", "*get pods -l ray.io/cluster=raybench -o jsonpath=*", 0, WORKERS[0])
    world.on("kubectl", "*jsonpath={.status.phase}", 0, "Pending")
    world.on("kubectl", "*get events*", 0, "FailedScheduling: 0/2 nodes are available: 2 Insufficient cpu.")
    world.on("kubectl", "*resources.requests.cpu*", 0, "ray-worker cpu=2 memory=4Gi; ")
    world.on("kubectl", "*describe nodes", 0,
             "Name: raybench-m02\nAllocatable:\n  cpu: 4\n  memory: 8010000Ki\nSystem Info:\n"
             "Allocated resources:\n  Resource Requests Limits\n  cpu 3 (75%) 3 (75%)\n  memory 6Gi (78%) 6Gi\nEvents:")
    result = world.run_script("scripts/install-ray.sh", CLUSTER_TIMEOUT_S=1)
    assert_one_line_error(result, 4, "timed out", "RayCluster raybench to be provisioned")
    for shown in ("Insufficient cpu", "cpu=2 memory=4Gi", "allocatable   cpu: 4", "requested     cpu 3 (75%)",
                  "MINIKUBE_CPUS"):
        assert shown in result.stderr, shown


def test_install_names_an_image_pull_error(world):
    install_world(world, provisioned="False")
    world.on("kubectl", "*get pods -l ray.io/cluster=raybench -o jsonpath=*", 0, WORKERS[0])
    world.on("kubectl", "*jsonpath={.status.phase}", 0, "Pending")
    world.on("kubectl", "*state.waiting.reason*", 0, "ErrImageNeverPull ")
    result = world.run_script("scripts/install-ray.sh", CLUSTER_TIMEOUT_S=1)
    assert result.returncode == 4
    assert "docker/build-and-push.sh" in result.stderr


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
    world.on("kubectl", "*training/ray_training.py*", 0, "[ray 2w] epoch 1/1 done")
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
    assert tail[:5] == ["python", "training/ray_training.py", "--ray-address", "auto", "--num-workers"]
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
    world.rules.insert(0, ("kubectl", "*training/ray_training.py*", "1", "boom"))
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
    world.rules.insert(0, ("kubectl", "*baseline_training.py*", "124", ""))
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert_one_line_error(result, 4, "RUN_TIMEOUT_S")


def test_benchmark_without_head_pod_points_to_install(world, tmp_path):
    reachable(world)
    result = world.run_bash(RUN, str(tmp_path / "run"))
    assert_one_line_error(result, 4, "no running head pod", "install-ray.sh")


def test_benchmark_rejects_unknown_submit_mode(world, tmp_path):
    result = world.run_bash(RUN, str(tmp_path / "run"), SUBMIT="ssh")
    assert_one_line_error(result, 2, "SUBMIT", "exec, jobs")
