#!/usr/bin/env bash
# Kubernetes helpers for the Minikube + KubeRay path: one place that names the context, namespaces and labels,
# finds pods, reads CPU limits, and explains why pods are not running when a wait times out.
# Sourced after (or instead of) scripts/lib/common.sh:
#   source "${REPO_ROOT}/scripts/lib/k8s.sh"
#
# Every kubectl and helm call goes through k8s::kubectl / k8s::helm with an explicit context, so a kit script can
# never act on whatever cluster the user's kubeconfig happens to point at (cleanup deletes namespaces).

# common.sh declares readonly variables, so it must be sourced once only.
if [[ -z "${EXIT_INFRA:-}" ]]; then
  # shellcheck source=scripts/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
fi

MINIKUBE_PROFILE="${MINIKUBE_PROFILE:-raybench}"
# minikube names the kubeconfig context after the profile.
KUBE_CONTEXT="${KUBE_CONTEXT:-${MINIKUBE_PROFILE}}"
RAY_NAMESPACE="${RAY_NAMESPACE:-ray}"
RAY_CLUSTER_NAME="${RAY_CLUSTER_NAME:-raybench}"
OPERATOR_NAMESPACE="${OPERATOR_NAMESPACE:-ray-system}"
IMAGE_NAME="${IMAGE_NAME:-raybench-kit}"
# The annotations on the RayCluster in which install-ray.sh records the image it applied: its reference, and the
# image ID the nodes' container runtime reported for it after the load (k8s::nodes_image_id). Not Docker's own
# ID on this machine: with the containerd image store (Docker Desktop 4.34+, Docker Engine 29+) that is the
# manifest or index digest, which no node reports. The key is new (an older install recorded Docker's ID under
# raybench.kit/image-id), so an old record is never compared.
# shellcheck disable=SC2034
readonly K8S_IMAGE_ANNOTATION="raybench.kit/image" K8S_IMAGE_ID_ANNOTATION="raybench.kit/node-image-id"
# Used by the scripts that source this file.
# shellcheck disable=SC2034
readonly K8S_HEAD_CONTAINER="ray-head" K8S_WORKER_CONTAINER="ray-worker"
# shellcheck disable=SC2034
readonly K8S_INSTALL_KUBECTL="https://kubernetes.io/docs/tasks/tools/" \
  K8S_INSTALL_HELM="https://helm.sh/docs/intro/install/" \
  K8S_INSTALL_MINIKUBE="https://minikube.sigs.k8s.io/docs/start/" \
  K8S_INSTALL_DOCKER="https://docs.docker.com/get-docker/"

k8s::kubectl() { kubectl --context "${KUBE_CONTEXT}" "$@"; }
k8s::helm() { helm --kube-context "${KUBE_CONTEXT}" "$@"; }

# k8s::require_cluster: stop with exit 4 when the API server of KUBE_CONTEXT does not answer.
k8s::require_cluster() {
  k8s::kubectl get --raw=/readyz --request-timeout=15s >/dev/null 2>&1 ||
    die "${EXIT_INFRA}" "cannot reach the Kubernetes cluster of context '${KUBE_CONTEXT}'; start it with scripts/setup-minikube.sh (or set KUBE_CONTEXT)"
}

# k8s::pinned_version PACKAGE: the '==' version of PACKAGE in docker/requirements.txt or the laptop list it
# includes (extras and environment markers ignored). TensorFlow is one version under two names, tensorflow-cpu
# on Linux x86_64 and tensorflow elsewhere: `tensorflow` finds either.
k8s::pinned_version() {
  awk -v want="$1" '
    BEGIN { want = tolower(want) }
    /^[[:space:]]*(#|-|$)/ { next }
    {
      line = $0; sub(/;.*/, "", line); gsub(/[[:space:]]/, "", line); split(line, part, "==")
      name = tolower(part[1]); sub(/\[.*\]/, "", name)
      if (want == "tensorflow" && name == "tensorflow-cpu") name = "tensorflow"
      if (name == want) { print part[2]; exit }
    }' "${REPO_ROOT}/docker/requirements.txt" "${REPO_ROOT}/docker/requirements-laptop.txt"
}

# k8s::plan ARGS...: the cluster's shape, training/cluster (standard library only, so the system python3 runs it
# before .venv exists; PYTHONPATH is the repository root, common.sh). It owns the pod profiles and which one an
# unset CLUSTER_PROFILE means.
k8s::plan() { python3 -m training.cluster "$@"; }

# k8s::load_profile: sets CLUSTER_PROFILE to the profile it names (unset: the default one) and K8S_PROFILE to
# that profile's values as key=value lines (workers, worker_cpus, worker_cpus_total, nodes, ...); an unknown
# profile stops with its one-line error, exit 2.
k8s::load_profile() {
  K8S_PROFILE="$(k8s::plan profile)" || exit "${EXIT_BAD_INPUT}"
  export CLUSTER_PROFILE
  CLUSTER_PROFILE="$(k8s::profile_value name)"
}

# k8s::profile_value KEY: one value of the profile k8s::load_profile loaded.
k8s::profile_value() {
  sed -n "s/^$1=//p" <<<"${K8S_PROFILE}"
}

# k8s::base_image: BASE_IMAGE, or the official Ray image of the pinned Ray for the architecture of Docker's
# machine (which is the nodes' architecture). Untagged-architecture rayproject/ray tags are amd64 only; arm64
# ones end in -aarch64. Docker's own answer, because on a Mac `uname -m` says arm64 outside Docker's VM.
k8s::base_image() {
  if [[ -n "${BASE_IMAGE:-}" ]]; then
    printf '%s\n' "${BASE_IMAGE}"
    return 0
  fi
  local arch suffix=""
  arch="$(docker info --format '{{.Architecture}}' 2>/dev/null)" || arch=""
  [[ -n "${arch}" ]] || arch="$(uname -m)"
  case "${arch}" in aarch64 | arm64) suffix="-aarch64" ;; esac
  printf 'rayproject/ray:%s-py311-cpu%s\n' "$(k8s::pinned_version ray)" "${suffix}"
}

# k8s::image_ref: IMAGE_NAME:IMAGE_TAG. The default tag carries the pinned Ray and TensorFlow and a hash of
# everything that decides the image's content: the files baked in, the build context filter, the base image and
# the build arguments. Changed input gets a new tag, so IfNotPresent can never run a stale image.
k8s::image_ref() {
  local tag="${IMAGE_TAG:-}" digest
  if [[ -z "${tag}" ]]; then
    digest="$({
      cd "${REPO_ROOT}" && find docker/Dockerfile docker/Dockerfile.dockerignore docker/requirements.txt \
        docker/requirements-laptop.txt training \
        -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
      printf 'BASE_IMAGE=%s\nPREFETCH_CIFAR10=%s\n' "$(k8s::base_image)" "${PREFETCH_CIFAR10:-1}"
    } | sha256sum | cut -c1-10)"
    tag="ray$(k8s::pinned_version ray)-tf$(k8s::pinned_version tensorflow)-${digest}"
  fi
  printf '%s:%s\n' "${IMAGE_NAME}" "${tag}"
}

# k8s::profile_nodes: the nodes of MINIKUBE_PROFILE, one name a line.
k8s::profile_nodes() {
  minikube -p "${MINIKUBE_PROFILE}" node list </dev/null | awk '{ print $1 }'
}

# k8s::node_image_id NODE IMAGE: the ID NODE's container runtime gives IMAGE, as crictl reads it over the CRI
# (the ID the kubelet puts in a pod's containerStatuses[].imageID); fails when the node lacks the image.
# `minikube ssh` joins its arguments into one remote command and always asks for a terminal (libmachine's
# NativeClient.Shell), hence the quotes for the remote shell, no standard input, and the ID picked out of the
# output (a terminal ends lines in CR LF).
k8s::node_image_id() {
  local out
  out="$(minikube -p "${MINIKUBE_PROFILE}" ssh -n "$1" -- \
    sudo crictl inspecti -o go-template --template "'{{.status.id}}'" "$2" </dev/null 2>/dev/null)" || return 1
  grep -o 'sha256:[0-9a-f]\{64\}' <<<"${out}" | tail -n 1 | grep .
}

# k8s::nodes_image_id IMAGE NODE...: the one image ID every NODE reports for IMAGE. Returns 1 (naming the nodes
# on stderr) when a node lacks it, 2 when the nodes hold different images under that reference.
k8s::nodes_image_id() {
  local image="$1" node id first="" lacking=()
  shift
  for node in "$@"; do
    if ! id="$(k8s::node_image_id "${node}" "${image}")"; then
      lacking+=("${node}")
    elif [[ -z "${first}" ]]; then
      first="${id}"
    elif [[ "${id}" != "${first}" ]]; then
      printf 'nodes hold different images under %s: %s and %s\n' "${image}" "${first}" "${id}" >&2
      return 2
    fi
  done
  if ((${#lacking[@]} > 0)); then
    printf 'node(s) without %s: %s\n' "${image}" "${lacking[*]}" >&2
    return 1
  fi
  printf '%s\n' "${first}"
}

# k8s::remove_node_tarballs NODE: deletes the image tarballs of IMAGE_NAME that `minikube image load` leaves in
# the node's /var/lib/minikube/images/ (machine.transferAndLoadImage copies each file there under its base name:
# a cache file <name>_<tag>, or the loaded file's own name) and never removes; several GB each. Best effort.
k8s::remove_node_tarballs() {
  minikube -p "${MINIKUBE_PROFILE}" ssh -n "$1" -- \
    "sudo find /var/lib/minikube/images -maxdepth 1 -type f -name '${IMAGE_NAME//\//_}_*' -delete" </dev/null >/dev/null 2>&1 ||
    log::warn "could not remove the ${IMAGE_NAME} tarballs in node $1's /var/lib/minikube/images/"
}

k8s::_cluster_selector() { printf 'ray.io/cluster=%s' "${RAY_CLUSTER_NAME}"; }

# k8s::head_pod: the name of the RayCluster's running head pod; returns 1 when there is none.
k8s::head_pod() {
  local name
  name="$(k8s::kubectl -n "${RAY_NAMESPACE}" get pods -l "$(k8s::_cluster_selector),ray.io/node-type=head" \
    --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}' 2>/dev/null)" || return 1
  [[ -n "${name}" ]] || return 1
  printf '%s\n' "${name}"
}

# k8s::worker_pods: running worker pods of the RayCluster, one name per line, sorted.
k8s::worker_pods() {
  k8s::kubectl -n "${RAY_NAMESPACE}" get pods -l "$(k8s::_cluster_selector),ray.io/node-type=worker" \
    --field-selector=status.phase=Running \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sed '/^$/d' | sort
}

# k8s::cpu_millis QUANTITY: a Kubernetes CPU quantity ("2", "500m", "1.5") in millicores.
k8s::cpu_millis() {
  local q="$1"
  if [[ "${q}" =~ ^([0-9]+)m$ ]]; then
    printf '%s\n' "${BASH_REMATCH[1]}"
  elif [[ "${q}" =~ ^([0-9]+)(\.([0-9]{1,3}))?$ ]]; then
    local frac="${BASH_REMATCH[3]:-0}"
    while ((${#frac} < 3)); do frac="${frac}0"; done
    printf '%s\n' "$((BASH_REMATCH[1] * 1000 + 10#${frac}))"
  else
    return 1
  fi
}

# k8s::pod_cpus POD CONTAINER: whole CPUs in the container's limit, which is what KubeRay gives Ray as num-cpus.
k8s::pod_cpus() {
  local pod="$1" container="$2" limit millis
  limit="$(k8s::kubectl -n "${RAY_NAMESPACE}" get pod "${pod}" \
    -o jsonpath="{.spec.containers[?(@.name==\"${container}\")].resources.limits.cpu}")"
  millis="$(k8s::cpu_millis "${limit}")" || return 1
  printf '%s\n' "$((millis / 1000))"
}

# k8s::ray_view POD: how Ray itself sees the cluster, asked from inside the head pod:
# "nodes=N worker_nodes=W worker_cpus=C" (worker nodes are those with CPUs; the head has num-cpus 0).
k8s::ray_view() {
  local probe='import ray
ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
cpus = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]]
print(f"nodes={len(cpus)} worker_nodes={sum(c > 0 for c in cpus)} worker_cpus={sum(cpus)}")'
  k8s::kubectl -n "${RAY_NAMESPACE}" exec "$1" -c "${K8S_HEAD_CONTAINER}" -- python -c "${probe}" 2>/dev/null |
    grep '^nodes='
}

# k8s::diagnose SELECTOR: says why the pods matching SELECTOR in RAY_NAMESPACE are not running, and what to
# change. Printed to stderr after a wait times out.
k8s::diagnose() {
  local selector="$1" ns="${RAY_NAMESPACE}" pods pod
  {
    printf '\n--- Diagnostics for pods %s in namespace %s ---\n' "${selector}" "${ns}"
    k8s::kubectl -n "${ns}" get pods -l "${selector}" -o wide 2>&1 || true
    pods="$(k8s::kubectl -n "${ns}" get pods -l "${selector}" \
      -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null)" || true
    [[ -n "${pods}" ]] || printf 'No pods exist yet: check the operator logs: kubectl -n %s logs deploy/kuberay-operator\n' \
      "${OPERATOR_NAMESPACE}"
    while IFS= read -r pod; do
      if [[ -n "${pod}" ]]; then k8s::_diagnose_pod "${ns}" "${pod}"; fi
    done <<<"${pods}"
  } >&2
}

# Init containers are read as well as the Ray container: KubeRay's wait-gcs-ready runs the same image first, so
# an image the node cannot get shows up there while the Ray container only says PodInitializing.
k8s::_diagnose_pod() {
  local ns="$1" pod="$2" phase scheduled statuses name kind reason message problem=""
  phase="$(k8s::kubectl -n "${ns}" get pod "${pod}" -o jsonpath='{.status.phase}' 2>/dev/null)" || true
  scheduled="$(k8s::kubectl -n "${ns}" get pod "${pod}" \
    -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].status}' 2>/dev/null)" || true
  statuses="$(k8s::kubectl -n "${ns}" get pod "${pod}" -o jsonpath='{range .status.initContainerStatuses[*]}{.name}{"\t"}init container{"\t"}{.state.waiting.reason}{"\t"}{.state.waiting.message}{"\n"}{end}{range .status.containerStatuses[*]}{.name}{"\t"}container{"\t"}{.state.waiting.reason}{"\t"}{.state.waiting.message}{"\n"}{end}' 2>/dev/null)" || true
  printf '\n# pod %s: phase %s\n' "${pod}" "${phase:-unknown}"
  while IFS=$'\t' read -r name kind reason message; do
    [[ -n "${reason}" ]] || continue
    printf '  %s %s is waiting: %s %s\n' "${kind}" "${name}" "${reason}" "${message}"
    case "${reason}" in
      *ImagePull* | ErrImage* | InvalidImageName) problem="image" ;;
      CrashLoopBackOff | RunContainerError | CreateContainerError | CreateContainerConfigError)
        [[ "${problem}" == image ]] || problem="crash ${name}"
        ;;
    esac
  done <<<"${statuses}"
  case "${problem}" in
    image)
      printf 'The node cannot get the image (above: which container, and the image). Load it onto every node: docker/build-and-push.sh, then rerun scripts/install-ray.sh\n'
      ;;
    crash*)
      printf 'Container %s keeps failing; its last log lines:\n' "${problem#crash }"
      k8s::kubectl -n "${ns}" logs "${pod}" -c "${problem#crash }" --tail=20 --previous 2>&1 || true
      ;;
    *)
      if [[ "${phase}" == Pending && "${scheduled}" != True ]]; then
        printf 'Not scheduled. Scheduler events:\n'
        k8s::kubectl -n "${ns}" get events --field-selector "involvedObject.name=${pod}" \
          -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>&1 || true
        k8s::plan pending "${ns}/${pod}" <(k8s::kubectl get nodes -o json 2>/dev/null) \
          <(k8s::kubectl get pods --all-namespaces -o json 2>/dev/null) || true
      elif [[ "${phase}" == Pending ]]; then
        printf 'Scheduled, and its containers are still being created (a first image unpack takes minutes).\n'
      fi
      ;;
  esac
  printf 'Last events (kubectl describe pod %s):\n' "${pod}"
  k8s::kubectl -n "${ns}" describe pod "${pod}" 2>&1 | sed -n '/^Events:/,$p' | tail -n 12 || true
}

# k8s::cluster_pod_images: "POD<TAB>IMAGE<TAB>IMAGE_ID" for every running Ray container of the RayCluster
# (init containers aside), one line each.
k8s::cluster_pod_images() {
  k8s::kubectl -n "${RAY_NAMESPACE}" get pods -l "$(k8s::_cluster_selector)" --field-selector=status.phase=Running \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.spec.containers[0].image}{"\t"}{.status.containerStatuses[0].imageID}{"\n"}{end}'
}

# k8s::image_mismatch WANT_IMAGE WANT_ID: prints each running Ray pod that does not run the image install-ray.sh
# applied: another image reference, or (when both IDs are known) another image ID. Prints nothing when all match.
# WANT_ID is what the nodes reported (k8s::nodes_image_id), so both sides come from the same container runtime.
# A containerStatuses imageID is "docker://sha256:..." (cri-dockerd, core/convert.go toPullableImageID) or
# "sha256:..." for a loaded image, and a registry digest (name@sha256:...) for a pulled one, which is skipped.
k8s::image_mismatch() {
  local want="$1" want_id="${2#sha256:}" pod image image_id
  while IFS=$'\t' read -r pod image image_id; do
    [[ -n "${pod}" ]] || continue
    if [[ "${image}" != "${want}" && "${image}" != "docker.io/library/${want}" ]]; then
      printf '%s runs %s\n' "${pod}" "${image}"
    elif [[ -n "${want_id}" && -n "${image_id}" && "${image_id}" != *@* && "${image_id##*sha256:}" != "${want_id}" ]]; then
      printf '%s runs image ID %s, not %s\n' "${pod}" "${image_id##*sha256:}" "${want_id}"
    fi
  done < <(k8s::cluster_pod_images)
}

# k8s::wait_or_diagnose TIMEOUT_S DESCRIPTION SELECTOR CMD...: wait_until, and on timeout print why the pods
# matching SELECTOR are not ready, then stop with exit 4.
k8s::wait_or_diagnose() {
  local timeout_s="$1" description="$2" selector="$3"
  shift 3
  if ! wait_until "${timeout_s}" 5 "${description}" "$@"; then
    k8s::diagnose "${selector}"
    die "${EXIT_INFRA}" "timed out after ${timeout_s}s waiting for ${description}; the diagnostics above say why"
  fi
}
