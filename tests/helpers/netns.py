"""A real multi-node Ray cluster on one machine: each node in its own network namespace with its own IP.

Stands in for the RayCluster of the Kubernetes path (which needs Docker and Minikube we do not have in CI): a
head with no CPUs and worker nodes on a bridge, like the head pod and worker pods on the pod network.

What each node keeps to itself, as a pod would, without hiding anything of the machine: Ray's temp folder
(RAY_TMPDIR, and TMPDIR for everything else that asks `tempfile`) is the node's own folder, so its session and
the `ray_current_cluster` file that `--ray-address auto` reads (ray/_common/utils.py get_ray_address_file:
RAY_TMPDIR/ray/ray_current_cluster) are the node's; and /tmp/kit, where the head pod's command writes its results
(scripts/lib/cluster_benchmark.sh CLUSTER_KIT_DIR), is the node's folder bind-mounted in a mount namespace of its
own. /tmp itself stays visible, so a checkout (and its .venv) under /tmp works: hiding all of /tmp made `ray
start` exit 127 there.

Needs root and `ip netns`; `NetnsCluster.unavailable_reason()` says why not, for pytest.skip.
Teardown kills only the processes inside our namespaces (`ip netns pids`), never `ray stop`, which would stop
every Ray process on the machine.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.helpers import common

REPO_ROOT = Path(common.REPO_ROOT)
# The kit's virtualenv; KIT_VENV_BIN points elsewhere (a clone tested with another checkout's venv).
VENV_BIN = Path(os.environ.get("KIT_VENV_BIN") or REPO_ROOT / ".venv" / "bin")
POD_KIT_DIR = Path("/tmp/kit")  # the head pod's results folder, private to each node
SUBNET_PREFIX = "10.213.0."  # only ever routed inside our namespaces, so it cannot clash with the host
HEAD_PORT = 6379
TOKEN_NAME = "ray-auth-token"


def _run(argv, check=True, **kwargs):
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kwargs)


class NetnsCluster:
    """One bridge, one namespace per node; `start_ray()` makes them a Ray cluster with token auth."""

    def __init__(self, num_workers=2, cpus_per_worker=1):
        tag = uuid.uuid4().hex[:6]
        self.bridge = f"kb{tag}"  # interface names are limited to 15 characters
        self.nodes = [("head", f"kit{tag}-head", f"{SUBNET_PREFIX}10")]
        self.nodes += [(f"worker{i}", f"kit{tag}-w{i}", f"{SUBNET_PREFIX}{10 + i}") for i in range(1, num_workers + 1)]
        self.cpus_per_worker = cpus_per_worker
        self.base_dir = None
        self.created_namespaces = []
        self.created_links = []
        self.bridge_created = False
        self.teardown_problems = []
        self.made_pod_kit_dir = False

    @staticmethod
    def unavailable_reason():
        if os.geteuid() != 0:
            return "needs root for ip netns"
        for tool in ("ip", "unshare", "mount"):
            if shutil.which(tool) is None:
                return f"{tool} not found"
        if not (VENV_BIN / "ray").exists():
            return f"no Ray in {VENV_BIN}"
        for needed in (REPO_ROOT, VENV_BIN):
            if POD_KIT_DIR in Path(needed).resolve().parents or Path(needed).resolve() == POD_KIT_DIR:
                return f"{needed} is under {POD_KIT_DIR}, which each node's private {POD_KIT_DIR} would hide"
        probe = f"kitprobe{os.getpid()}"
        if _run(["ip", "netns", "add", probe], check=False).returncode != 0:
            return "ip netns add failed (no CAP_SYS_ADMIN?)"
        _run(["ip", "netns", "del", probe], check=False)
        return None

    @property
    def head_ip(self):
        return self.nodes[0][2]

    @property
    def worker_ips(self):
        return [ip for _, _, ip in self.nodes[1:]]

    def node_dir(self, role):
        return Path(self.base_dir) / role

    def setup_network(self):
        # Short (Ray's Unix socket paths under RAY_TMPDIR are limited to 107 bytes), outside /tmp/kit; the shared
        # checkpoint folder lives here too.
        self.base_dir = tempfile.mkdtemp(prefix="kitns-", dir="/var/tmp")
        if not POD_KIT_DIR.exists():  # the mount point of each node's private /tmp/kit
            POD_KIT_DIR.mkdir(parents=True)
            self.made_pod_kit_dir = True
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self.bridge_created = True
        _run(["ip", "link", "set", self.bridge, "up"])
        for index, (role, ns, ip) in enumerate(self.nodes):
            _run(["ip", "netns", "add", ns])
            self.created_namespaces.append(ns)
            host_end, ns_end = f"kv{self.bridge[2:]}{index}", f"kp{self.bridge[2:]}{index}"
            _run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end])
            self.created_links.append(host_end)
            _run(["ip", "link", "set", host_end, "master", self.bridge, "up"])
            _run(["ip", "link", "set", ns_end, "netns", ns])
            for argv in (["ip", "link", "set", ns_end, "name", "eth0"],
                         ["ip", "addr", "add", f"{ip}/24", "dev", "eth0"],
                         ["ip", "link", "set", "eth0", "up"],
                         ["ip", "link", "set", "lo", "up"]):
                _run(["ip", "netns", "exec", ns, *argv])
            (self.node_dir(role) / "kit").mkdir(parents=True)

    def command(self, role, argv):
        """argv run inside the node's network namespace, with the node's own folder bind-mounted on /tmp/kit in
        a mount namespace of its own (nothing else of the file system is hidden)."""
        ns = dict((r, n) for r, n, _ in self.nodes)[role]
        private_kit = f'mount --bind "$0" {POD_KIT_DIR} && exec "$@"'
        return ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
                "sh", "-c", private_kit, str(self.node_dir(role) / "kit"), *argv]

    def env(self, role, extra=None):
        """The environment of a process on node `role`: its own Ray temp folder and token file."""
        env = dict(os.environ)
        node_dir = str(self.node_dir(role))
        env.update({
            "PATH": f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
            "RAY_TMPDIR": node_dir,
            "TMPDIR": node_dir,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.node_dir(role) / TOKEN_NAME),  # each node its own copy, as a pod
            "RAY_USAGE_STATS_ENABLED": "0",
            "KIT_NODE_NAME": role,  # what k8s/ray-cluster.yaml gives each pod from the downward API (spec.nodeName)
        })
        env.pop("RAY_ADDRESS", None)  # a caller's cluster must never leak in
        env.update(extra or {})
        return env

    def start_ray(self):
        token = uuid.uuid4().hex + uuid.uuid4().hex
        for role, _, _ in self.nodes:
            token_file = self.node_dir(role) / TOKEN_NAME
            token_file.write_text(token)
            token_file.chmod(0o600)
        # A small object store per node: three raylets share this machine's memory.
        common = ["--object-store-memory", str(150 * 1024 * 1024), "--disable-usage-stats"]
        _run(self.command("head", ["ray", "start", "--head", "--node-ip-address", self.head_ip,
                                   "--port", str(HEAD_PORT), "--num-cpus", "0", *common]),
             env=self.env("head"), timeout=180)
        for (role, _, ip) in self.nodes[1:]:
            _run(self.command(role, ["ray", "start", "--address", f"{self.head_ip}:{HEAD_PORT}",
                                     "--node-ip-address", ip, "--num-cpus", str(self.cpus_per_worker), *common]),
                 env=self.env(role), timeout=180)

    def run_in_head(self, argv, timeout, extra_env=None):
        return subprocess.run(self.command("head", argv), env=self.env("head", extra_env), cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def _kill_namespace_processes(self, ns):
        deadline = time.monotonic() + 15
        sig = signal.SIGTERM
        while True:
            listed = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
            pids = [int(p) for p in listed if p.isdigit()]
            if not pids:
                return
            if time.monotonic() > deadline:
                if sig == signal.SIGKILL:
                    self.teardown_problems.append(f"{ns}: pids {pids} survived SIGKILL")
                    return
                sig, deadline = signal.SIGKILL, time.monotonic() + 5
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)

    def teardown(self):
        """Removes exactly what setup made, whatever state it got to; safe to call twice."""
        for ns in self.created_namespaces:
            self._kill_namespace_processes(ns)
        # Deleting one end of a veth removes both; done here because the kernel removes them lazily after
        # `ip netns del`, which would leave them visible for a moment.
        for link in self.created_links:
            _run(["ip", "link", "del", link], check=False)
        self.created_links = []
        for ns in reversed(self.created_namespaces):
            result = _run(["ip", "netns", "del", ns], check=False)
            if result.returncode != 0:
                self.teardown_problems.append(f"ip netns del {ns}: {result.stderr.strip()}")
        self.created_namespaces = []
        if self.bridge_created:
            result = _run(["ip", "link", "del", self.bridge], check=False)
            if result.returncode != 0:
                self.teardown_problems.append(f"ip link del {self.bridge}: {result.stderr.strip()}")
            self.bridge_created = False
        if self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
        if self.made_pod_kit_dir:
            try:
                POD_KIT_DIR.rmdir()  # only ever the empty mount point this cluster made
            except OSError as error:
                self.teardown_problems.append(f"rmdir {POD_KIT_DIR}: {error}")
            self.made_pod_kit_dir = False

    def leftovers(self):
        """Namespaces or links of this cluster that still exist (none after teardown)."""
        names = _run(["ip", "netns", "list"], check=False).stdout + _run(["ip", "-o", "link"], check=False).stdout
        tag = self.bridge[2:]
        return [line for line in names.splitlines() if tag in line]

    def addresses(self, role):
        """IPv4 addresses the node sees on its own interfaces."""
        out = subprocess.run(self.command(role, ["ip", "-o", "-4", "addr", "show"]), capture_output=True,
                             text=True, check=True).stdout
        return sorted(line.split()[3].split("/")[0] for line in out.splitlines())
