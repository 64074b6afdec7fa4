"""The kit's pod profiles: what the RayCluster's pods ask for, how many worker pods there are, and on how many
Minikube nodes. Every other statement of the cluster's shape is made from these (k8s/ray-cluster.yaml's marked
lines, the RayJob manifests, the docs' fit table, install-ray.sh's expectations, setup-minikube.sh's node count).
"""

import os

from training.cluster.quantities import PlanError, cpu_millis

# `default` is what k8s/ray-cluster.yaml holds as committed; `small` is for Docker Desktop's default on a 16 GB
# Mac (4 CPUs, 7.8 GiB). The object store stays below /dev/shm (its sizeLimit), or Ray falls back to a slow
# object store in /tmp.
PROFILES = {
    "default": {"workers": 2, "head_cpu": "1", "head_memory": "2Gi", "worker_cpu": "2", "worker_memory": "4Gi",
                "head_object_store": "268435456", "head_shm": "512Mi",
                "worker_object_store": "536870912", "worker_shm": "1Gi"},
    "small": {"workers": 2, "head_cpu": "500m", "head_memory": "1536Mi", "worker_cpu": "1", "worker_memory": "2Gi",
              "head_object_store": "134217728", "head_shm": "256Mi",
              "worker_object_store": "268435456", "worker_shm": "512Mi"},
}
# The profile of a user who names none; k8s/ray-cluster.yaml as committed is this one.
DEFAULT_PROFILE = "default"
# Minikube nodes the profiles are planned for: one beside the control plane's, so that the workers' all-reduce
# crosses the pod network as it would between machines.
NODES = 2


def chosen(environ=None):
    """The profile CLUSTER_PROFILE names (unset or empty: DEFAULT_PROFILE); an unknown one is a PlanError."""
    environ = os.environ if environ is None else environ
    return check(environ.get("CLUSTER_PROFILE") or DEFAULT_PROFILE)


def check(name):
    if name not in PROFILES:
        raise PlanError(f"CLUSTER_PROFILE '{name}' is not a profile (allowed: {', '.join(PROFILES)})")
    return name


def worker_cpus(name):
    """Whole CPUs of one worker pod: what KubeRay gives that pod's Ray as num-cpus, so a Ray Train worker's share."""
    return cpu_millis(PROFILES[check(name)]["worker_cpu"]) // 1000


def summary(name):
    """Every value of a profile, with the derived ones bash reads (`python3 -m training.cluster profile`)."""
    values = {"name": check(name), **PROFILES[name], "nodes": NODES, "worker_cpus": worker_cpus(name)}
    values["worker_cpus_total"] = values["workers"] * values["worker_cpus"]
    return values
