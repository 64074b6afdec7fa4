"""Sizes of the kit's Ray pods, what fits on a Minikube cluster, and why a pod stays Pending.

Standard library only, like training/core/settings.py: the Kubernetes scripts run it with the system python3 before
any virtualenv exists.

    python3 scripts/lib/k8s_plan.py profile small              # the pod sizes of a profile, as key=value lines
    python3 scripts/lib/k8s_plan.py render --profile small --image IMG --cluster-name N k8s/ray-cluster.yaml
    python3 scripts/lib/k8s_plan.py fit --profile default --nodes 2 --node-cpus 4 --node-memory-mib 8192 \
        --host-cpus 8 --host-memory-mib 16000                  # does the RayCluster fit these nodes?
    python3 scripts/lib/k8s_plan.py defaults --profile small --nodes 2 --host-cpus 4 --host-memory-mib 7836
                                                               # MINIKUBE_CPUS / MINIKUBE_MEMORY for these
    python3 scripts/lib/k8s_plan.py table                      # the small-machine table in the docs
    python3 scripts/lib/k8s_plan.py pending NS/POD NODES.json PODS.json   # what a Pending pod is short of

Exit codes: 0 fits (or nothing to report), 1 does not fit, 2 bad input (one line `error: ...`).
"""

import argparse
import json
import math
import re
import sys

# What the kit's pods ask for, per profile. `default` must equal k8s/ray-cluster.yaml as committed (a test
# checks); `small` is for a 4-CPU / 8 GiB Docker. The object store stays below /dev/shm (its sizeLimit), or
# Ray falls back to a slow object store in /tmp.
PROFILES = {
    "default": {"head_cpu": "1", "head_memory": "2Gi", "worker_cpu": "2", "worker_memory": "4Gi",
                "head_object_store": "268435456", "head_shm": "512Mi",
                "worker_object_store": "536870912", "worker_shm": "1Gi"},
    "small": {"head_cpu": "500m", "head_memory": "1536Mi", "worker_cpu": "1", "worker_memory": "2Gi",
              "head_object_store": "134217728", "head_shm": "256Mi",
              "worker_object_store": "268435456", "worker_shm": "512Mi"},
}
WORKERS = 2  # workerGroupSpecs[0].replicas in k8s/ray-cluster.yaml
# k8s/checkpoint-store.yaml's MinIO.
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

MEMORY_UNITS = {"": 1, "m": 10**-3, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
                "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


class PlanError(ValueError):
    pass


def cpu_millis(text):
    """A Kubernetes CPU quantity ("2", "500m", "1.5") in millicores."""
    text = str(text).strip()
    match = re.fullmatch(r"([0-9.]+)(m?)", text)
    if not match:
        raise PlanError(f"not a CPU quantity: '{text}'")
    value = float(match.group(1))
    return int(round(value if match.group(2) else value * 1000))


def memory_mib(text):
    """A Kubernetes memory quantity ("4Gi", "512Mi", "8010000Ki", "2G", bytes) in MiB."""
    text = str(text).strip()
    match = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|Pi|[mkMGTP]?)", text)
    if not match:
        raise PlanError(f"not a memory quantity: '{text}'")
    return float(match.group(1)) * MEMORY_UNITS[match.group(2)] / 2**20


def kit_pods(profile):
    """(name, millicores, MiB) of every pod the kit runs, with the node it is planned on: the head, the store
    and one worker beside the control plane, the other worker alone (the preferred spread of the workers)."""
    p = PROFILES[profile]
    head = ("ray head", cpu_millis(p["head_cpu"]), memory_mib(p["head_memory"]))
    worker = ("ray worker", cpu_millis(p["worker_cpu"]), memory_mib(p["worker_memory"]))
    return head, STORE, worker


def plan_nodes(profile, nodes):
    """Per node, the pods planned there: [(name, millicores, MiB), ...]."""
    head, store, worker = kit_pods(profile)
    planned = [list(EVERY_NODE_PODS) for _ in range(nodes)]
    planned[0] += CONTROL_PLANE_PODS + [head, store]
    for i in range(WORKERS):
        # Spread: the workers go to the nodes other than the control plane's first, then round again.
        target = (1 + i) % nodes if nodes > 1 else 0
        planned[target].append(worker)
    return planned


def totals(pods):
    return sum(p[1] for p in pods), sum(p[2] for p in pods)


def fit(profile, nodes, node_cpus, node_memory_mib, host_cpus, host_memory_mib):
    """Lines that say whether the kit's pods fit; ok is False when the scheduler would leave a pod Pending.

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


def needs(profile, nodes=2):
    """The smallest Docker (CPUs, GiB) and per-node MINIKUBE_CPUS / MINIKUBE_MEMORY that hold a profile."""
    planned = plan_nodes(profile, nodes)
    cpu_node = max(totals(p)[0] for p in planned)
    mem_node = max(totals(p)[1] for p in planned)
    cpu_all = sum(totals(p)[0] for p in planned)
    mem_all = sum(totals(p)[1] for p in planned)
    return {"docker_cpus": math.ceil(cpu_all / 1000), "docker_gib": math.ceil(mem_all / 1024),
            "node_cpus": max(2, math.ceil(cpu_node / 1000)), "node_mib": max(2048, math.ceil(mem_node / 1024) * 1024)}


# minikube's own floors (cmd/minikube/cmd/start_flags.go minimumCPUS 2, minUsableMem 1800 MiB, below which it
# refuses to start) and the kit's (a small-profile worker pod asks 2 GiB).
MIN_NODE_CPUS, MIN_NODE_MIB = 2, 2048


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


def table():
    rows = ["| `CLUSTER_PROFILE` | Worker pods | Head pod | Docker needs at least | "
            "`MINIKUBE_CPUS` / `MINIKUBE_MEMORY` at least |",
            "|---|---|---|---|---|"]
    for name, p in PROFILES.items():
        n = needs(name)
        rows.append(f"| `{name}` | {WORKERS} x ({p['worker_cpu']} CPU, {p['worker_memory']}) | "
                    f"{p['head_cpu']} CPU, {p['head_memory']} | {n['docker_cpus']} CPUs, {n['docker_gib']} GiB | "
                    f"{n['node_cpus']} / {n['node_mib']} |")
    return "\n".join(rows)


def render(manifest_text, profile, image, cluster_name):
    """k8s/ray-cluster.yaml with the profile's sizes on the lines marked `# kit-profile: KEY`, the image and the
    cluster name (also in the workers' spread rule)."""
    values = PROFILES[profile]

    def value_for(key):
        if key in ("head", "worker"):
            return f'{{cpu: "{values[key + "_cpu"]}", memory: {values[key + "_memory"]}}}'
        if key.endswith("_object_store"):
            return f'"{values[key]}"'
        return values[key]

    out = []
    for line in manifest_text.splitlines():
        match = re.fullmatch(r"(\s*[^:#]+: ).*?(\s+# kit-profile: (\w+))", line)
        if match:
            line = f"{match.group(1)}{value_for(match.group(3))}{match.group(2)}"
        line = line.replace("image: raybench-kit:placeholder", f"image: {image}")
        line = re.sub(r"^  name: raybench$", f"  name: {cluster_name}", line)
        line = re.sub(r"(ray\.io/cluster: )raybench$", rf"\g<1>{cluster_name}", line)
        out.append(line)
    return "\n".join(out) + "\n"


def _requests(pod):
    """(millicores, MiB) a pod asks of the scheduler: the sum of its containers, or its largest init
    container if that is more."""
    def of(containers):
        cpu = sum(cpu_millis((c.get("resources", {}).get("requests") or {}).get("cpu", "0")) for c in containers)
        mem = sum(memory_mib((c.get("resources", {}).get("requests") or {}).get("memory", "0")) for c in containers)
        return cpu, mem
    spec = pod.get("spec", {})
    cpu, mem = of(spec.get("containers", []))
    for init in spec.get("initContainers", []):
        icpu, imem = of([init])
        cpu, mem = max(cpu, icpu), max(mem, imem)
    return cpu, mem


def pending(target, nodes_doc, pods_doc):
    """Lines saying which resource a Pending pod is short of, node by node."""
    ns, _, name = target.partition("/")
    pods = pods_doc.get("items", [])
    victim = next((p for p in pods if p["metadata"]["name"] == name and p["metadata"].get("namespace") == ns), None)
    if victim is None:
        return [f"pod {target} is gone"]
    want_cpu, want_mem = _requests(victim)
    lines = [f"{name} asks for {want_cpu / 1000:g} CPUs and {want_mem / 1024:.2f} GiB"]
    short = set()
    for node in nodes_doc.get("items", []):
        node_name = node["metadata"]["name"]
        alloc = node.get("status", {}).get("allocatable", {})
        a_cpu, a_mem = cpu_millis(alloc.get("cpu", "0")), memory_mib(alloc.get("memory", "0"))
        used = [_requests(p) for p in pods if p.get("spec", {}).get("nodeName") == node_name
                and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
        free_cpu = a_cpu - sum(u[0] for u in used)
        free_mem = a_mem - sum(u[1] for u in used)
        missing = []
        if want_cpu > free_cpu:
            missing.append(f"{(want_cpu - free_cpu) / 1000:g} CPUs")
            short.add("cpu")
        if want_mem > free_mem:
            missing.append(f"{(want_mem - free_mem) / 1024:.2f} GiB")
            short.add("memory")
        verdict = f"short of {' and '.join(missing)}" if missing else "has room (requests fit)"
        lines.append(f"  node {node_name}: allocatable {a_cpu / 1000:g} CPUs / {a_mem / 1024:.2f} GiB, "
                     f"free {free_cpu / 1000:g} CPUs / {free_mem / 1024:.2f} GiB: {verdict}")
    if not short:
        lines.append("Requests fit a node: the scheduler refuses it for another reason (taints, affinity, "
                     "volumes); the events above say which.")
    else:
        lines.append(f"What is short: {' and '.join(sorted(short))}. With minikube's docker driver every node "
                     "advertises Docker's CPUs and memory (minikube issue 16635), so MINIKUBE_CPUS / "
                     "MINIKUBE_MEMORY cannot add any: give Docker more (Docker Desktop: Settings > Resources), or "
                     "install the small profile: CLUSTER_PROFILE=small scripts/install-ray.sh")
    return lines


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("profile")
    p.add_argument("name")
    p = sub.add_parser("render")
    p.add_argument("--profile", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--cluster-name", required=True)
    p.add_argument("manifest")
    p = sub.add_parser("fit")
    p.add_argument("--profile", required=True)
    for flag in ("--nodes", "--node-cpus", "--node-memory-mib", "--host-cpus", "--host-memory-mib"):
        p.add_argument(flag, type=int, required=True)
    p = sub.add_parser("defaults")
    p.add_argument("--profile", required=True)
    for flag in ("--nodes", "--host-cpus", "--host-memory-mib"):
        p.add_argument(flag, type=int, required=True)
    sub.add_parser("table")
    p = sub.add_parser("pending")
    p.add_argument("pod", help="NAMESPACE/NAME")
    p.add_argument("nodes_json")
    p.add_argument("pods_json")
    args = parser.parse_args(argv)

    profile = getattr(args, "profile", None) or getattr(args, "name", None)
    if profile is not None and profile not in PROFILES:
        print(f"error: CLUSTER_PROFILE '{profile}' is not a profile (allowed: {', '.join(PROFILES)})",
              file=sys.stderr)
        return 2
    if args.command == "profile":
        values = dict(PROFILES[profile])
        values["workers"] = WORKERS
        values["worker_cpus_total"] = WORKERS * (cpu_millis(values["worker_cpu"]) // 1000)
        print("\n".join(f"{k}={v}" for k, v in values.items()))
    elif args.command == "render":
        with open(args.manifest, encoding="utf-8") as f:
            sys.stdout.write(render(f.read(), profile, args.image, args.cluster_name))
    elif args.command == "fit":
        ok, lines = fit(profile, args.nodes, args.node_cpus, args.node_memory_mib, args.host_cpus,
                        args.host_memory_mib)
        print("\n".join(lines))
        return 0 if ok else 1
    elif args.command == "defaults":
        cpus, mib, lines = node_defaults(profile, args.nodes, args.host_cpus, args.host_memory_mib)
        print(f"{cpus} {mib}")
        print("\n".join(lines))
    elif args.command == "table":
        print(table())
    else:
        try:
            with open(args.nodes_json, encoding="utf-8") as f:
                nodes_doc = json.load(f)
            with open(args.pods_json, encoding="utf-8") as f:
                pods_doc = json.load(f)
            print("\n".join(pending(args.pod, nodes_doc, pods_doc)))
        except (ValueError, KeyError, PlanError) as err:
            print(f"(cannot compute what is short: {err})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
