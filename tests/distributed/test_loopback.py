"""Nothing the kit's local Ray cluster starts listens beyond 127.0.0.1, with one exception that these versions
cannot avoid: TensorFlow's collective gRPC server (see test_tensorflow_collective_server_binds_every_interface)."""

import json
import os
import subprocess

import pytest

from tests.helpers.cluster import start_cluster, stop_cluster
from tests.helpers.common import REPO_ROOT
from tests.helpers.listeners import is_loopback

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The listeners seen while a 2-worker Ray Train job ran on a local cluster, and which of them are the
    cluster's: held by a node started by local_cluster.sh, or by the driver, or by a process either started."""
    folder = tmp_path_factory.mktemp("loopback")
    state_dir, out = folder / "ray", folder / "job.json"
    port = 6590
    ray_env = start_cluster(state_dir, workers=2, cpus=1, port=port)
    try:
        roots = {int(pid) for pid in (state_dir / "pids").read_text().split()}
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(ray_env, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        proc = subprocess.run([f"{REPO_ROOT}/.venv/bin/python", "-m", "tests.helpers.loopback_probe", str(out)],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        stop_cluster(state_dir)
    seen = json.loads(out.read_text())
    roots.add(seen["driver_pid"])
    mine = [s for s in seen["listeners"] if roots & {s["pid"], *s["ancestors"]}]
    return {"port": port, "listeners": mine, "tf_ports": set(seen["tf_ports"])}


def test_every_ray_process_of_the_local_cluster_listens_on_loopback_only(job):
    ray_sockets = [s for s in job["listeners"] if s["port"] not in job["tf_ports"]]
    # The probe saw the cluster: the head's GCS on its port, and a core worker in each training worker.
    assert any(s["port"] == job["port"] for s in ray_sockets), ray_sockets
    assert sum(s["name"].startswith("ray::RayTrainWo") for s in ray_sockets) >= 2, ray_sockets
    exposed = [f"{s['name']} (pid {s['pid']}) on {s['ip']}:{s['port']}" for s in ray_sockets
               if not is_loopback(s["ip"])]
    assert not exposed, "listening beyond loopback: " + "; ".join(exposed)


@pytest.mark.xfail(strict=True, reason=(
    "TensorFlow 2.21's collective server (MultiWorkerMirroredStrategy's gRPC worker service) binds 0.0.0.0 with "
    "no setting to change it: tensorflow/core/distributed_runtime/rpc/grpc_server_lib.cc, GrpcServer::Init, "
    "AddListeningPort(\"0.0.0.0:\" + port). It lives only while a run trains; docs/QUICK_REFERENCE.md's "
    "security note says so."))
def test_tensorflow_collective_server_binds_every_interface(job):
    tf_sockets = [s for s in job["listeners"] if s["port"] in job["tf_ports"]]
    assert len(tf_sockets) == len(job["tf_ports"]) == 2, tf_sockets
    assert all(is_loopback(s["ip"]) for s in tf_sockets), tf_sockets
