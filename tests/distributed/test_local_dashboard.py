"""The Ray Dashboard on the local cluster (LOCAL_RAY_DASHBOARD=1): it answers on 127.0.0.1 at DASHBOARD_LOCAL_PORT,
behind the cluster's token, and no process of the dashboard listens beyond loopback. Off by default."""

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.helpers.cluster import LIB, start_cluster, stop_cluster

PORT, DASHBOARD_PORT = 6750, 8375  # clear of the other tests' clusters and of a dashboard of your own
LOOPBACK = ("127.", "[::1]", "::1")


def _group_of(pid):
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[2])


def _cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().replace(b"\0", b" ").decode(errors="replace")


def dashboard_processes(head_pid):
    """The head node's processes (its `ray start --block` leads their process group) that are the dashboard's."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if _group_of(entry) == head_pid and "dashboard" in _cmdline(entry) and "agent" not in _cmdline(entry):
                found.append(int(entry))
        except OSError:  # the process ended meanwhile
            continue
    return found


def listening_addresses(pids):
    """Every TCP address a process of `pids` listens on, as `ss` shows them (address:port)."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    addresses = []
    for line in out.splitlines():
        fields = line.split()
        if any(f"pid={pid}," in line for pid in pids):
            addresses.append(fields[3])
    return addresses


def get(path, token=None):
    request = urllib.request.Request(f"http://127.0.0.1:{DASHBOARD_PORT}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


@pytest.fixture(scope="module")
def dashboard_cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("ray-state")
    said = []
    start_cluster(str(state), workers=1, cpus=1, port=PORT, messages=said, LOCAL_RAY_DASHBOARD="1",
                  DASHBOARD_LOCAL_PORT=str(DASHBOARD_PORT))
    try:
        yield state, said
    finally:
        stop_cluster(str(state))


@pytest.mark.slow
def test_the_dashboard_answers_on_loopback_behind_the_token(dashboard_cluster):
    state, said = dashboard_cluster
    token = (state / "auth_token").read_text().strip()
    assert any(f"Ray Dashboard: http://127.0.0.1:{DASHBOARD_PORT}" in line and "auth_token" in line
               for line in said), said
    assert get("/api/version")[0] == 401, "without the token the dashboard's API refuses"
    status, body = get("/api/version", token)
    assert status == 200 and "ray_version" in json.loads(body)
    addresses = listening_addresses(dashboard_processes(int((state / "pids").read_text().split()[0])))
    assert f"127.0.0.1:{DASHBOARD_PORT}" in addresses and f"0.0.0.0:{DASHBOARD_PORT}" not in addresses


@pytest.mark.slow
def test_no_process_of_the_dashboard_listens_beyond_loopback(dashboard_cluster):
    state, _ = dashboard_cluster
    pids = dashboard_processes(int((state / "pids").read_text().split()[0]))
    assert pids, "the head runs the dashboard"
    assert [a for a in listening_addresses(pids) if not a.startswith(LOOPBACK)] == []


def test_the_dashboard_is_off_unless_asked_for_and_bound_to_loopback_when_it_is():
    def args(**settings):
        env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RAY_DASHBOARD", "DASHBOARD_LOCAL_PORT")}
        return subprocess.run(["bash", "-c", f"{LIB}; local_cluster::_dashboard_args"], capture_output=True,
                              text=True, check=True, env=dict(env, **settings)).stdout.split()

    assert args() == args(LOCAL_RAY_DASHBOARD="0") == ["--include-dashboard=false"]
    assert args(LOCAL_RAY_DASHBOARD="1", DASHBOARD_LOCAL_PORT="9000") == [
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", "--dashboard-port=9000"]
