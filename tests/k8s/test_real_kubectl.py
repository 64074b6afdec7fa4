"""The real-kubectl cross-check of the stub harness (tests/helpers/real_kubectl.py): every kubectl command line a
script issues under the stubs is handed to the real kubectl 1.37 too, pointed at an unreachable server, and must
fail only for lack of that server.

Here: the real kubectl is the test virtualenv's (never /usr/bin/kubectl, an unrelated gcloud build); the
classifier tells a missing server from a wrong command line on the real kubectl's own messages; and a StubWorld
run fails, naming the command line and kubectl's message, when a script issues one kubectl rejects.
"""

import json
import subprocess

import pytest

from tests.helpers.real_kubectl import (REAL_KUBECTL, REAL_KUBECTL_MINOR, REPO_ROOT, classify_real_kubectl,
                                        run_real_kubectl)
from tests.helpers.stub_tools import StubWorld

needs_real_kubectl = pytest.mark.skipif(REAL_KUBECTL is None, reason="real kubectl not installed")


def test_the_real_kubectl_of_the_test_requirements_is_installed():
    # Not a skip: without it the cross-check silently disappears from every script test.
    assert REAL_KUBECTL is not None, "no kubectl beside this Python: pip install -r tests/requirements.txt"
    assert str(REAL_KUBECTL) != "/usr/bin/kubectl"
    version = json.loads(subprocess.run([str(REAL_KUBECTL), "version", "--client", "-o", "json"],
                                        capture_output=True, text=True, check=True).stdout)
    assert version["clientVersion"]["gitVersion"].startswith(f"v{REAL_KUBECTL_MINOR}.")


NEEDS_SERVER = [
    ["get", "--raw=/readyz", "--request-timeout=15s"],
    ["-n", "ray", "get", "pods", "-l", "ray.io/node-type=head", "-o", "jsonpath={.items[0].metadata.name}"],
    ["get", "raycluster", "raybench", "-o", "jsonpath={.status.state}"],
    ["get", "crd", "rayclusters.ray.io"],
    ["-n", "ray", "exec", "raybench-head-x", "-c", "ray-head", "--", "python", "-c", "print(1)"],
    ["-n", "ray", "cp", "-c", "ray-head", "raybench-head-x:/tmp/kit/a.json", "/nonexistent/a.json"],
    ["-n", "ray", "port-forward", "--address", "127.0.0.1", "svc/raybench-head-svc", "8265:8265"],
    ["-n", "ray", "wait", "--for=condition=Ready", "pod/x", "--timeout=5s"],
    ["-n", "ray", "logs", "deploy/kuberay-operator", "--tail=20"],
    ["-n", "ray", "rollout", "status", "deployment/checkpoint-store", "--timeout=5s"],
    ["-n", "ray", "delete", "pod", "x", "--grace-period=0", "--force", "--wait=false"],
    ["--context", "another-context", "get", "nodes"],
]
REJECTED = [
    (["get", "pods", "--frobnicate"], "rejected", "unknown flag: --frobnicate"),
    (["delete", "pod", "x", "--grace-period=abc"], "rejected", 'invalid argument "abc" for "--grace-period"'),
    (["frobnicate", "pods"], "rejected", 'unknown command "frobnicate"'),
    (["get", "pods", "-o", "jsonpath={.items[0"], "rejected", "error parsing jsonpath"),
    (["get", "podz"], "unknown-resource", ""),
    (["get", "rayclusterz", "raybench"], "unknown-resource", ""),
    (["--context", "not-in-kubeconfig", "get", "pods"], "rejected", "context was not found"),
]


@needs_real_kubectl
@pytest.mark.parametrize("args", NEEDS_SERVER, ids=lambda a: " ".join(a)[:60])
def test_command_lines_that_only_lack_a_server(args):
    result = run_real_kubectl(args, contexts=("raybench", "another-context"))
    assert classify_real_kubectl(result.returncode, result.stderr) == "needs-server", result.stderr


@needs_real_kubectl
@pytest.mark.parametrize("args,verdict,message", REJECTED, ids=lambda a: " ".join(a)[:60] if isinstance(a, list)
                         else None)
def test_command_lines_kubectl_rejects(args, verdict, message):
    result = run_real_kubectl(args)
    assert classify_real_kubectl(result.returncode, result.stderr) == verdict, result.stderr
    assert message in result.stderr


def test_classifier_rules_on_canned_messages():
    refused = "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n"
    klog = 'E1202 14:39:16.290297    4157 memcache.go:381] "Couldn\'t get current server API group list" err=...\n'
    assert classify_real_kubectl(0, "") == "ok"
    assert classify_real_kubectl(1, refused) == "needs-server"
    assert classify_real_kubectl(1, klog + refused) == "unknown-resource"
    assert classify_real_kubectl(1, "error: unknown flag: --x\nSee 'kubectl get --help' for usage.\n") == "rejected"
    assert classify_real_kubectl(124, refused) == "rejected"  # hung
    assert classify_real_kubectl(1, "") == "rejected"


# --- through the stub harness --------------------------------------------------------------------------------

@pytest.fixture
def world(tmp_path):
    if REAL_KUBECTL is None:
        pytest.skip("real kubectl not installed")
    return StubWorld(tmp_path)


def test_a_script_command_line_kubectl_rejects_fails_the_run(world):
    with pytest.raises(AssertionError) as failure:
        world.run_bash("kubectl --context raybench delete pod x --grace-period=now; "
                       "kubectl --context raybench get podz")
    said = str(failure.value)
    assert "kubectl --context raybench delete pod x --grace-period=now" in said
    assert 'invalid argument "now" for "--grace-period" flag' in said
    assert "kubectl --context raybench get podz" in said and "does not have" in said


def test_command_lines_that_only_lack_a_server_pass_and_the_stub_still_answers(world):
    world.on("kubectl", "*get pods*", 0, "pod-a")
    result = world.run_bash("kubectl --context raybench -n ray get pods -o name")
    assert result.stdout == "pod-a\n"
    (verdict,) = world.real_kubectl_verdicts()
    assert verdict[0] == ["--context", "raybench", "-n", "ray", "get", "pods", "-o", "name"]
    assert verdict[3] == "needs-server"


def test_standard_input_reaches_the_stub_and_the_real_kubectl(world):
    with pytest.raises(AssertionError, match="error parsing|error converting YAML|mapping values"):
        world.run_bash("printf 'kind: [\\n  oops: : x\\n' | kubectl --context raybench apply -f -")
    assert world.stdin_text() == "kind: [\n  oops: : x\n"
    good = StubWorld(world.root.parent / "good")
    manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ray\n"
    good.run_bash('printf "%s" "$1" | kubectl --context raybench apply -f -', manifest)
    assert good.stdin_text() == manifest


def test_a_client_dry_run_is_answered_with_the_real_kubectls_output(world):
    result = world.run_bash("kubectl --context raybench create namespace ray --dry-run=client -o yaml")
    real = run_real_kubectl(["create", "namespace", "ray", "--dry-run=client", "-o", "yaml"])
    assert result.stdout == real.stdout and "kind: Namespace" in result.stdout


def test_the_scripts_see_only_the_stub(world):
    result = world.run_bash('command -v kubectl; printf "%s\\n" "$PATH"')
    stub, path = result.stdout.splitlines()
    assert stub == str(world.bin / "kubectl")
    assert str(REAL_KUBECTL.parent) not in path.split(":") and ".venv" not in path


def test_relative_manifest_paths_resolve_for_the_real_kubectl_as_for_the_script(world):
    world.run_bash("kubectl --context raybench apply -f k8s/ray-cluster.yaml")
    ((argv, _, stderr, verdict),) = world.real_kubectl_verdicts()
    assert verdict == "needs-server" and "k8s/ray-cluster.yaml" in stderr
    assert (REPO_ROOT / "k8s" / "ray-cluster.yaml").is_file()
