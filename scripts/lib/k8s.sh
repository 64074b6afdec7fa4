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

# k8s::pinned_version PACKAGE: the '==' pin of PACKAGE in docker/requirements.txt (extras ignored).
k8s::pinned_version() {
  awk -F'==' -v want="$1" '{ name = $1; sub(/\[.*\]/, "", name) } name == want { print $2; exit }' \
    "${REPO_ROOT}/docker/requirements.txt"
}

# k8s::image_ref: IMAGE_NAME:IMAGE_TAG. The default tag carries the pinned Ray and TensorFlow and a hash of
# everything baked into the image, so changed code gets a new tag and IfNotPresent can never run a stale image.
k8s::image_ref() {
  local tag="${IMAGE_TAG:-}" digest
  if [[ -z "${tag}" ]]; then
    digest="$(cd "${REPO_ROOT}" && find docker/Dockerfile docker/requirements.txt training -type f \
      ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-10)"
    tag="ray$(k8s::pinned_version ray)-tf$(k8s::pinned_version tensorflow-cpu)-${digest}"
  fi
  printf '%s:%s\n' "${IMAGE_NAME}" "${tag}"
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

k8s::_diagnose_pod() {
  local ns="$1" pod="$2" phase waiting
  phase="$(k8s::kubectl -n "${ns}" get pod "${pod}" -o jsonpath='{.status.phase}' 2>/dev/null)" || true
  waiting="$(k8s::kubectl -n "${ns}" get pod "${pod}" \
    -o jsonpath='{range .status.containerStatuses[*]}{.state.waiting.reason}{" "}{end}' 2>/dev/null)" || true
  printf '\n# pod %s: phase %s %s\n' "${pod}" "${phase:-unknown}" "${waiting}"
  case "${phase} ${waiting}" in
    Pending*ImagePull* | Pending*ErrImage*)
      printf 'The node cannot get the image. Load it onto every node: docker/build-and-push.sh, then rerun scripts/install-ray.sh\n'
      ;;
    *CrashLoopBackOff*)
      printf 'The container keeps crashing; its last log lines:\n'
      k8s::kubectl -n "${ns}" logs "${pod}" --all-containers --tail=20 --previous 2>&1 || true
      ;;
    Pending*)
      printf 'Scheduler events (what the pod asked for that no node had):\n'
      k8s::kubectl -n "${ns}" get events --field-selector "involvedObject.name=${pod}" \
        -o jsonpath='{range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>&1 || true
      printf 'Asked for (requests per container): '
      k8s::kubectl -n "${ns}" get pod "${pod}" \
        -o jsonpath='{range .spec.containers[*]}{.name} cpu={.resources.requests.cpu} memory={.resources.requests.memory}; {end}' 2>&1 || true
      printf '\nAvailable on each node (allocatable, and already requested by running pods):\n'
      k8s::kubectl describe nodes 2>/dev/null |
        awk '/^Name:/ { print } /^Allocatable:/, /^System Info:/ { if ($1 ~ /^(cpu|memory):$/) print "  allocatable " $0 }
             /^Allocated resources:/ { grab = 1 } grab && $1 ~ /^(cpu|memory)$/ { print "  requested   " $0 }
             /^Events:/ { grab = 0 }' || true
      printf 'Fix: give Minikube more (MINIKUBE_CPUS / MINIKUBE_MEMORY, then scripts/cleanup.sh --all and scripts/setup-minikube.sh), or lower the requests in k8s/ray-cluster.yaml.\n'
      ;;
  esac
  printf 'Last events (kubectl describe pod %s):\n' "${pod}"
  k8s::kubectl -n "${ns}" describe pod "${pod}" 2>&1 | sed -n '/^Events:/,$p' | tail -n 12 || true
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
