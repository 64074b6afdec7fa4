"""What a profile's pods need of Minikube's nodes and of Docker, placed as the scheduler would place them: the
fit check and the node sizes setup-minikube.sh chooses, and the docs' fit table."""

import math

from training.cluster.profiles import NODES, PROFILES
from training.cluster.quantities import cpu_millis, memory_mib

# k8s/checkpoint-store.yaml's MinIO (name, millicores, MiB).
STORE = ("checkpoint-store", 250, 512)

# Requests of the pods Minikube itself runs (millicores, MiB), read from the sources that create them:
# kubeadm's static pods (cmd/kubeadm/app/phases/controlplane/manifests.go, etcd/local.go: apiserver 250m,
# controller-manager 200m, scheduler 100m, etcd 100m + 100Mi), CoreDNS (kubeadm's addon: 100m + 70Mi; minikube
# runs one replica), metrics-server (minikube deploy/addons/metrics-server/metrics-server-deployment.yaml.tmpl:
# 100m + 200Mi, which setup-minikube.sh enables) and kindnet, the CNI of a multi-node profile, on every node
# (minikube pkg/minikube/cni/kindnet.go: 100m + 50Mi). Beside them the KubeRay operator that install-ray.sh
# installs: its chart (kuberay-operator 1.7.0 values.yaml, ../shared/reference/kuberay/) sets limits of 100m and
# 512Mi and no requests, so Kubernetes makes the requests equal to the limits.
CONTROL_PLANE_PODS = [("kube-apiserver", 250, 0), ("kube-controller-manager", 200, 0), ("kube-scheduler", 100, 0),
                      ("etcd", 100, 100), ("coredns", 100, 70), ("metrics-server", 100, 200),
                      ("kuberay-operator", 100, 512)]
EVERY_NODE_PODS = [("kindnet", 100, 50)]

# minikube's own floors (cmd/minikube/cmd/start_flags.go minimumCPUS 2, minUsableMem 1800 MiB, below which it
# refuses to start) and the kit's (a small-profile worker pod asks 2 GiB).
MIN_NODE_CPUS, MIN_NODE_MIB = 2, 2048


def kit_pods(profile):
    """(name, millicores, MiB) of the head, the checkpoint store and one worker pod of a profile."""
    p = PROFILES[profile]
    head = ("ray head", cpu_millis(p["head_cpu"]), memory_mib(p["head_memory"]))
    worker = ("ray worker", cpu_millis(p["worker_cpu"]), memory_mib(p["worker_memory"]))
    return head, STORE, worker


def plan_nodes(profile, nodes):
    """Per node, the pods planned there: [(name, millicores, MiB), ...]. The head and the store go beside the
    control plane; the workers spread over the other nodes first (the RayCluster's preferred anti-affinity)."""
    head, store, worker = kit_pods(profile)
    planned = [list(EVERY_NODE_PODS) for _ in range(nodes)]
    planned[0] += CONTROL_PLANE_PODS + [head, store]
    for i in range(PROFILES[profile]["workers"]):
        target = (1 + i) % nodes if nodes > 1 else 0
        planned[target].append(worker)
    return planned


def totals(pods):
    return sum(p[1] for p in pods), sum(p[2] for p in pods)


def fit(profile, nodes, node_cpus, node_memory_mib, host_cpus, host_memory_mib):
    """(ok, lines): whether the kit's pods fit; ok is False when the scheduler would leave a pod Pending.

    With minikube's docker driver every node advertises the host's (Docker's) CPUs and memory as allocatable,
    whatever --cpus/--memory say (minikube issue 16635): the scheduler compares requests with the host, while
    --cpus/--memory only cap what the node's container may use."""
    lines, ok = [], True
    planned = plan_nodes(profile, nodes)
    for i, pods in enumerate(planned):
        cpu, mem = totals(pods)
        name = "raybench" if i == 0 else f"raybench-m{i + 1:02d}"
        kit = [p[0] for p in pods if p[0].startswith("ray ") or p[0] == STORE[0]]
        what = ", ".join((["control plane"] if i == 0 else []) + kit + ["kindnet"])
        lines.append(f"node {i + 1} ({what}): requests {cpu / 1000:g} CPUs, {mem / 1024:.1f} GiB")
        if cpu > host_cpus * 1000 or mem > host_memory_mib:
            ok = False
            lines.append(f"  does not fit: each node advertises Docker's {host_cpus} CPUs / "
                         f"{host_memory_mib / 1024:.1f} GiB, so a pod stays Pending")
        elif cpu > node_cpus * 1000 or mem > node_memory_mib:
            lines.append(f"  scheduled, but the node's container is capped at {node_cpus} CPUs / "
                         f"{node_memory_mib / 1024:.1f} GiB: its pods get less than they request ({name})")
    cpu_all = sum(totals(p)[0] for p in planned)
    mem_all = sum(totals(p)[1] for p in planned)
    lines.append(f"all nodes: {cpu_all / 1000:g} CPUs and {mem_all / 1024:.1f} GiB requested; Docker has "
                 f"{host_cpus} CPUs and {host_memory_mib / 1024:.1f} GiB")
    if cpu_all > host_cpus * 1000 or mem_all > host_memory_mib:
        lines.append("  more than Docker has: the pods share the host's CPUs, and the speedup would lie")
    return ok, lines


def needs(profile, nodes=NODES):
    """The smallest Docker (CPUs, GiB) and per-node MINIKUBE_CPUS / MINIKUBE_MEMORY that hold a profile."""
    planned = plan_nodes(profile, nodes)
    cpu_node = max(totals(p)[0] for p in planned)
    mem_node = max(totals(p)[1] for p in planned)
    cpu_all = sum(totals(p)[0] for p in planned)
    mem_all = sum(totals(p)[1] for p in planned)
    return {"docker_cpus": math.ceil(cpu_all / 1000), "docker_gib": math.ceil(mem_all / 1024),
            "node_cpus": max(MIN_NODE_CPUS, math.ceil(cpu_node / 1000)),
            "node_mib": max(MIN_NODE_MIB, math.ceil(mem_node / 1024) * 1024)}


def node_defaults(profile, nodes, host_cpus, host_memory_mib):
    """(MINIKUBE_CPUS, MINIKUBE_MEMORY, lines saying why) for a new profile: what the busiest node's pods request
    (needs()), capped by what Docker has. minikube refuses --cpus above Docker's NCPU (start.go validateCPUCount)
    and the kit refuses a node above Docker's MemTotal; the caps of all nodes together may add up to more, since
    each only limits one node's container and the scheduler places the pods by their requests (fit())."""
    want = needs(profile, nodes)
    cpus = max(MIN_NODE_CPUS, min(want["node_cpus"], host_cpus))
    mib = max(MIN_NODE_MIB, min(want["node_mib"], host_memory_mib))
    lines = [f"MINIKUBE_CPUS={cpus} and MINIKUBE_MEMORY={mib} chosen: CLUSTER_PROFILE={profile}'s busiest node "
             f"requests {want['node_cpus']} CPUs / {want['node_mib']} MiB, Docker has {host_cpus} CPUs / "
             f"{host_memory_mib} MiB"]
    if cpus < want["node_cpus"] or mib < want["node_mib"]:
        lines.append("  capped at what Docker has: the pods of the busiest node get less than they request")
    return cpus, mib, lines


def fit_table():
    """The Markdown table of every profile and what it needs (GETTING_STARTED.md and docs/EXERCISE.md quote it)."""
    rows = ["| `CLUSTER_PROFILE` | Worker pods | Head pod | Docker needs at least | "
            "`MINIKUBE_CPUS` / `MINIKUBE_MEMORY` at least |",
            "|---|---|---|---|---|"]
    for name, p in PROFILES.items():
        n = needs(name)
        rows.append(f"| `{name}` | {p['workers']} x ({p['worker_cpu']} CPU, {p['worker_memory']}) | "
                    f"{p['head_cpu']} CPU, {p['head_memory']} | {n['docker_cpus']} CPUs, {n['docker_gib']} GiB | "
                    f"{n['node_cpus']} / {n['node_mib']} |")
    return "\n".join(rows)
