#!/usr/bin/env bash
# Deletes one worker pod of the RayCluster, as a node failure in the middle of training would: the Ray Train run
# loses a worker, KubeRay starts a replacement pod, and the run resumes from its last checkpoint (MAX_FAILURES).
# Start it in a second terminal beside scripts/run-benchmark.sh, at any time: the benchmark first runs its
# plain-Keras baseline for minutes in a worker pod, so the script waits until a Ray Train worker runs (a process
# titled ray::RayTrainWorker, Ray's title for that actor, in a worker pod) and deletes a pod that holds one;
# deleting the baseline's pod would only fail the baseline. It says which pod and why.
#   KILL_AFTER_S=60 scripts/kill-worker-pod.sh      # 60 s into the Ray Train run
#
# Usage: scripts/kill-worker-pod.sh [--help]
#
# Settings:
#   KILL_AFTER_S       0          seconds to wait, once Ray Train workers run, before deleting
#   RAY_TRAIN_TIMEOUT_S 3600      how long to wait for a Ray Train worker (the baseline runs first)
#   WORKER_POD         (the first worker pod, by name, that runs a Ray Train worker)   the pod to delete; when set,
#                                 it is deleted without waiting for Ray Train
#   GRACE_PERIOD_S     0          0 = killed at once, like a lost node (kubectl delete --grace-period=0
#                                 --force: kubectl turns a 0 without --force into 1 s); more lets Ray shut the
#                                 worker down (SIGTERM, then SIGKILL after that many seconds)
#   WAIT_FOR_REPLACEMENT 1        1 = wait until the RayCluster has its workers running again
#   REPLACEMENT_TIMEOUT_S 300
#   RAY_NAMESPACE (ray), RAY_CLUSTER_NAME (raybench), KUBE_CONTEXT (raybench)

source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s.sh"

worker_count() { k8s::worker_pods | grep -c . || true; }

# Whether POD runs a Ray Train worker: Ray titles an actor's process ray::<class> (ray::<class>.<method> while a
# method runs; _raylet.pyx execute_task), and Ray Train's workers are RayTrainWorker actors in Train V1 and V2.
# The [R] keeps grep from matching its own command line (and the shell's).
runs_train_worker() {
  k8s::kubectl -n "${RAY_NAMESPACE}" exec "$1" -c "${K8S_WORKER_CONTAINER}" -- \
    sh -c 'grep -qsa "ray::[R]ayTrainWorker" /proc/[0-9]*/cmdline' >/dev/null 2>&1
}

# Sets TRAIN_POD to the first running worker pod with a Ray Train worker; fails when there is none.
find_train_pod() {
  local pod
  for pod in $(k8s::worker_pods); do
    if runs_train_worker "${pod}"; then
      TRAIN_POD="${pod}"
      return 0
    fi
  done
  return 1
}

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
  RAY_TRAIN_TIMEOUT_S="${RAY_TRAIN_TIMEOUT_S:-3600}"
  [[ "${KILL_AFTER_S}" =~ ^[0-9]+$ ]] || die "${EXIT_BAD_INPUT}" "KILL_AFTER_S must be a whole number of seconds, got '${KILL_AFTER_S}'"
  [[ "${GRACE_PERIOD_S}" =~ ^[0-9]+$ ]] || die "${EXIT_BAD_INPUT}" "GRACE_PERIOD_S must be a whole number of seconds, got '${GRACE_PERIOD_S}'"
  [[ "${WAIT_FOR_REPLACEMENT:-1}" =~ ^[01]$ ]] || die "${EXIT_BAD_INPUT}" "WAIT_FOR_REPLACEMENT must be 0 or 1, got '${WAIT_FOR_REPLACEMENT}'"
  require_positive_int REPLACEMENT_TIMEOUT_S "${REPLACEMENT_TIMEOUT_S}"
  require_positive_int RAY_TRAIN_TIMEOUT_S "${RAY_TRAIN_TIMEOUT_S}"
  require_cmd kubectl "${K8S_INSTALL_KUBECTL}"
  k8s::require_cluster

  local pods node
  pods="$(k8s::worker_pods)" || pods=""
  [[ -n "${pods}" ]] || die "${EXIT_INFRA}" "RayCluster ${RAY_NAMESPACE}/${RAY_CLUSTER_NAME} has no running worker pod to delete; run scripts/install-ray.sh"
  if [[ -n "${WORKER_POD:-}" ]]; then
    grep -qx -- "${WORKER_POD}" <<<"${pods}" ||
      die "${EXIT_BAD_INPUT}" "WORKER_POD=${WORKER_POD} is not a running worker pod of ${RAY_CLUSTER_NAME} (allowed: $(tr '\n' ' ' <<<"${pods}"))"
    if ((KILL_AFTER_S > 0)); then
      log::info "Deleting ${WORKER_POD} in ${KILL_AFTER_S}s"
      sleep "${KILL_AFTER_S}"
    fi
    VICTIM="${WORKER_POD}"
    log::info "Deleting ${VICTIM}: named by WORKER_POD (whether or not it runs a Ray Train worker now)"
  else
    wait_until "${RAY_TRAIN_TIMEOUT_S}" 5 "a Ray Train worker in a worker pod (run-benchmark.sh runs its baseline first)" \
      find_train_pod ||
      die "${EXIT_INFRA}" "no worker pod ran a Ray Train worker within RAY_TRAIN_TIMEOUT_S=${RAY_TRAIN_TIMEOUT_S}s; start scripts/run-benchmark.sh, or name a pod with WORKER_POD"
    if ((KILL_AFTER_S > 0)); then
      log::info "Ray Train runs; deleting a pod with a Ray Train worker in ${KILL_AFTER_S}s"
      sleep "${KILL_AFTER_S}"
      find_train_pod ||
        die "${EXIT_INFRA}" "the Ray Train run ended within KILL_AFTER_S=${KILL_AFTER_S}s; no worker pod runs a Ray Train worker now, so nothing was deleted"
    fi
    VICTIM="${TRAIN_POD}"
    log::info "Deleting ${VICTIM}: it runs a Ray Train worker (ray::RayTrainWorker), so the run loses a worker (not the baseline's pod while the baseline runs)"
  fi
  pods="$(k8s::worker_pods)" || pods=""
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
