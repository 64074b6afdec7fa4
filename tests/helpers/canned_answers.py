"""Canned answers of the real kubectl, helm, minikube and docker: what each prints and exits with in the cases
the Kubernetes scripts meet, each written from the tool's source at a named version. StubWorld's
`minikube_profile()`, `helm_release_missing()`, `kubectl_list_empty()` and `kubectl_object_missing()` turn them
into stub rules; tests/k8s/test_stub_fidelity.py pins them against the real tools where it can.
"""

import json
import re

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

