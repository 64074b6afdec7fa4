#!/usr/bin/env bash
# Deletes one worker pod of the RayCluster, as a node failure in the middle of training would: the Ray Train run
# loses a worker, KubeRay starts a replacement pod, and the run resumes from its last checkpoint (MAX_FAILURES).
# Start it in a second terminal while scripts/run-benchmark.sh trains, or with a delay:
#   KILL_AFTER_S=60 scripts/kill-worker-pod.sh
#
# Usage: scripts/kill-worker-pod.sh [--help]
#
# Settings:
#   KILL_AFTER_S       0          seconds to wait before deleting
#   WORKER_POD         (first running worker pod, by name)   the pod to delete
#   GRACE_PERIOD_S     0          0 = killed at once, like a lost node (kubectl delete --grace-period=0
#                                 --force: kubectl turns a 0 without --force into 1 s); more lets Ray shut the
#                                 worker down (SIGTERM, then SIGKILL after that many seconds)
#   WAIT_FOR_REPLACEMENT 1        1 = wait until the RayCluster has its workers running again
#   REPLACEMENT_TIMEOUT_S 300
#   RAY_NAMESPACE (ray), RAY_CLUSTER_NAME (raybench), KUBE_CONTEXT (raybench)

source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s.sh"

worker_count() { k8s::worker_pods | grep -c . || true; }

replacement_running() {
  local now
  now="$(worker_count)"
  ((now >= WORKERS_BEFORE)) && ! k8s::worker_pods | grep -qx -- "${VICTIM}"
}

main() {
  [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]] && { usage_from_header "$0"; exit 0; }
  [[ $# -eq 0 ]] || die "${EXIT_BAD_INPUT}" "unknown argument '$1' (allowed: --help)"
  KILL_AFTER_S="${KILL_AFTER_S:-0}"
  GRACE_PERIOD_S="${GRACE_PERIOD_S:-0}"
  REPLACEMENT_TIMEOUT_S="${REPLACEMENT_TIMEOUT_S:-300}"
  [[ "${KILL_AFTER_S}" =~ ^[0-9]+$ ]] || die "${EXIT_BAD_INPUT}" "KILL_AFTER_S must be a whole number of seconds, got '${KILL_AFTER_S}'"
  [[ "${GRACE_PERIOD_S}" =~ ^[0-9]+$ ]] || die "${EXIT_BAD_INPUT}" "GRACE_PERIOD_S must be a whole number of seconds, got '${GRACE_PERIOD_S}'"
  [[ "${WAIT_FOR_REPLACEMENT:-1}" =~ ^[01]$ ]] || die "${EXIT_BAD_INPUT}" "WAIT_FOR_REPLACEMENT must be 0 or 1, got '${WAIT_FOR_REPLACEMENT}'"
  require_positive_int REPLACEMENT_TIMEOUT_S "${REPLACEMENT_TIMEOUT_S}"
  require_cmd kubectl "${K8S_INSTALL_KUBECTL}"
  k8s::require_cluster

  if ((KILL_AFTER_S > 0)); then
    log::info "Deleting a worker pod in ${KILL_AFTER_S}s"
    sleep "${KILL_AFTER_S}"
  fi
  local pods node
  pods="$(k8s::worker_pods)" || pods=""
  [[ -n "${pods}" ]] || die "${EXIT_INFRA}" "RayCluster ${RAY_NAMESPACE}/${RAY_CLUSTER_NAME} has no running worker pod to delete; run scripts/install-ray.sh"
  VICTIM="${WORKER_POD:-$(head -n 1 <<<"${pods}")}"
  grep -qx -- "${VICTIM}" <<<"${pods}" ||
    die "${EXIT_BAD_INPUT}" "WORKER_POD=${VICTIM} is not a running worker pod of ${RAY_CLUSTER_NAME} (allowed: $(tr '\n' ' ' <<<"${pods}"))"
  WORKERS_BEFORE="$(grep -c . <<<"${pods}")"
  node="$(k8s::kubectl -n "${RAY_NAMESPACE}" get pod "${VICTIM}" -o jsonpath='{.spec.nodeName}')" || node="?"
  local -a delete=(k8s::kubectl -n "${RAY_NAMESPACE}" delete pod "${VICTIM}" --grace-period="${GRACE_PERIOD_S}" --wait=false)
  # kubectl refuses --force with a grace period above 0.
  ((GRACE_PERIOD_S > 0)) || delete+=(--force)
  "${delete[@]}" >/dev/null 2>&1 || die "${EXIT_INFRA}" "could not delete pod ${VICTIM}"
  if ((GRACE_PERIOD_S == 0)); then
    log::info "Force-deleted worker pod ${VICTIM} on node ${node}: no grace period, no SIGTERM first; the API object is gone now and the kubelet kills its containers as soon as it sees that"
  else
    log::info "Deleted worker pod ${VICTIM} on node ${node}: SIGTERM now, SIGKILL after ${GRACE_PERIOD_S}s if Ray has not stopped"
  fi
  [[ "${WAIT_FOR_REPLACEMENT:-1}" == "1" ]] || return 0
  k8s::wait_or_diagnose "${REPLACEMENT_TIMEOUT_S}" "KubeRay to replace ${VICTIM}" "ray.io/cluster=${RAY_CLUSTER_NAME}" \
    replacement_running
  k8s::kubectl -n "${RAY_NAMESPACE}" get pods -l "ray.io/cluster=${RAY_CLUSTER_NAME}" -o wide
}

main "$@"
