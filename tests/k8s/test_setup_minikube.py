"""scripts/setup-minikube.sh against stub minikube, docker and kubectl: prerequisites, the node sizes it chooses
from the pod profile and Docker, the profile's state from minikube's exit code and JSON, and the pod network check.
"""

import pytest

from tests.helpers.canned_answers import DOCKER_DESKTOP_16GB, canned_docker_info
from tests.helpers.stub_tools import StubWorld, assert_one_line_error, real_tool_visible


def docker_host(world, cpus=8, mem_bytes=32 * 1024**3, architecture="x86_64"):
    for field, value in canned_docker_info(cpus, mem_bytes, architecture).items():
        world.on("docker", f"info --format {{{{.{field}}}}}", 0, value)
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
    # An 8-CPU / 32 GiB Docker: the default profile's busiest node needs 5 CPUs and 8 GiB (training.cluster.sizing.needs).
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
    from training.cluster import sizing

    setup_succeeds(world, "missing")
    (start,) = world.called_with("minikube", "start")
    need = sizing.needs("default")
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
