"""Why a pod stays Pending: what it asks for against what each node has left, from `kubectl get -o json` of the
nodes and of every pod (k8s::diagnose prints it after a wait times out)."""

from training.cluster.quantities import cpu_millis, memory_mib


def requests(pod):
    """(millicores, MiB) a pod asks of the scheduler: the sum of its containers, or its largest init container
    if that is more (init containers run one at a time, before the others)."""
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
    """Lines saying which resource the Pending pod `target` (NAMESPACE/NAME) is short of, node by node."""
    ns, _, name = target.partition("/")
    pods = pods_doc.get("items", [])
    victim = next((p for p in pods if p["metadata"]["name"] == name and p["metadata"].get("namespace") == ns), None)
    if victim is None:
        return [f"pod {target} is gone"]
    want_cpu, want_mem = requests(victim)
    lines = [f"{name} asks for {want_cpu / 1000:g} CPUs and {want_mem / 1024:.2f} GiB"]
    short = set()
    for node in nodes_doc.get("items", []):
        node_name = node["metadata"]["name"]
        alloc = node.get("status", {}).get("allocatable", {})
        a_cpu, a_mem = cpu_millis(alloc.get("cpu", "0")), memory_mib(alloc.get("memory", "0"))
        # Finished pods keep their node but no longer hold its resources.
        used = [requests(p) for p in pods if p.get("spec", {}).get("nodeName") == node_name
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
