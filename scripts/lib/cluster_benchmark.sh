#!/usr/bin/env bash
# The benchmark on the RayCluster (the default target of scripts/run-benchmark.sh), run inside the pods:
#   source "${REPO_ROOT}/scripts/lib/cluster_benchmark.sh"; cluster_benchmark::run RUN_DIR
#   bash scripts/lib/cluster_benchmark.sh pod-run KIND CPUS RESULT_NAME RUN_DIR -- ARGV...
#     one run in a pod, as training/launch.py launches it for the sweep: ARGV in the head pod (KIND ray) or in a
#     worker pod with CPUS CPUs (baseline); the pod's /tmp/kit/RESULT_NAME becomes RUN_DIR/results.json
#
# 1. baseline with one Ray worker's resources: in a worker pod (its limits are one worker's share), with
#    TensorFlow threads = CPUS_PER_WORKER;
# 2. baseline with the resources of all workers together, only when some pod is that large (else skipped);
# 3. Ray training from the head pod with `--ray-address auto`, or through the Ray Jobs API (SUBMIT=jobs).
# Each result JSON is copied into RUN_DIR right after its run; a failed run copies nothing.
#
# Before any run it checks that every Ray pod runs the image scripts/install-ray.sh last applied (reference and
# image ID) with the pinned versions. Ctrl-C (or TERM) stops the run in the pod too, and a run left behind by an
# earlier interrupted one is stopped before a new one starts.
#
# Settings: every training setting --local honours reaches the pods as a flag (the settings table's argv
# builder, training/core/settings.py; unset ones keep the table's defaults there), or is refused with one line:
# DATA_DIR (a path on this machine), USE_GPU=1 without GPU worker pods. Defaults: the settings table's for the
# cluster target (`python3 -m training.core.settings list --programs cluster`; pod-run: the sweep's), the head
# run's from the pod profile (training/cluster/head_run.py). Besides those:
#   RAY_NAMESPACE (ray), RAY_CLUSTER_NAME (raybench), KUBE_CONTEXT (= MINIKUBE_PROFILE, raybench)
#   CPUS_PER_WORKER   default: the CPUs of one worker pod, read from the pod
#   NUM_WORKERS       default: the worker pods of CLUSTER_PROFILE (training/cluster/profiles.py)
#   RUN_TIMEOUT_S     limit for each training run (pod-run: no limit, as in a sweep)
#   SUBMIT            exec: kubectl exec in the head pod; jobs: `ray job submit` over a port-forward
#   DASHBOARD_LOCAL_PORT  local end of the port-forward (bound to 127.0.0.1 only)
#   CHECKPOINT_STORAGE_URI  the in-cluster S3 store every pod reaches

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  # Run as a program (pod-run, --help) rather than sourced: it needs the shared library itself.
  # shellcheck source=scripts/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
fi
# shellcheck source=scripts/lib/k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/k8s.sh"

readonly CLUSTER_KIT_DIR="/tmp/kit"

# The pid of the run's `timeout` in a pod (a process-group leader), so an interrupt can stop the whole run there.
readonly CLUSTER_RUN_PIDFILE="${CLUSTER_KIT_DIR}/run.pid"

# USE_GPU as the settings table reads it (checked there before anything ran, its default exported by
# cluster_benchmark::run): 1/true/yes in any case on, else off.
cluster_benchmark::_use_gpu() {
  local value="${USE_GPU}"
  [[ "${value,,}" =~ ^[[:space:]]*(1|true|yes)[[:space:]]*$ ]]
}

# cluster_benchmark::ray_training_argv: the exact command the head pod runs, NUL-separated (also used by
# tests/distributed/test_netns_cluster.py, which runs it on a real multi-node cluster). training/cluster builds
# it (head_run.py), with the settings table's argv builder: every training setting of the environment becomes a
# flag (the pods see no environment of this machine), and one the pods cannot take (DATA_DIR) is refused. The
# head run's own values (the cluster's address, the workers, a worker pod's CPUs, the checkpoint store, the
# output file) come from CLUSTER_PROFILE where the environment sets none, as in the k8s/ray-job-<profile>.yaml
# it generates. The store's credentials are not in its URI: the RayCluster sets AWS_* variables in every pod
# from a Secret, and pyarrow reads them there.
cluster_benchmark::ray_training_argv() {
  k8s::plan head-argv ${RUN_ID:+RUN_ID="${RUN_ID}-ray"} || exit "${EXIT_BAD_INPUT}"
}

# cluster_benchmark::baseline_argv THREADS OUTPUT_NAME
cluster_benchmark::baseline_argv() {
  local -a argv
  settings::trainer_argv argv baseline pod THREADS="$1" OUTPUT="${CLUSTER_KIT_DIR}/$2" \
    ${RUN_ID:+RUN_ID="${RUN_ID}-${2%_results.json}"}
  printf '%s\0' python "${argv[@]}"
}

# The pods run what install-ray.sh last applied (recorded on the RayCluster), and that image has the pinned
# packages. An arm64 or GPU image carries `tensorflow` instead of `tensorflow-cpu`; either is read.
cluster_benchmark::_check_image_versions() {
  local head="$1" found want applied applied_id mismatch
  applied="$(k8s::kubectl -n "${RAY_NAMESPACE}" get raycluster "${RAY_CLUSTER_NAME}" \
    -o jsonpath="{.metadata.annotations.${K8S_IMAGE_ANNOTATION//./\\.}}" 2>/dev/null)" || applied=""
  [[ -n "${applied}" ]] ||
    die "${EXIT_INFRA}" "RayCluster ${RAY_CLUSTER_NAME} has no record of the image install-ray.sh applied (annotation ${K8S_IMAGE_ANNOTATION}); rerun scripts/install-ray.sh"
  applied_id="$(k8s::kubectl -n "${RAY_NAMESPACE}" get raycluster "${RAY_CLUSTER_NAME}" \
    -o jsonpath="{.metadata.annotations.${K8S_IMAGE_ID_ANNOTATION//./\\.}}" 2>/dev/null)" || applied_id=""
  mismatch="$(k8s::image_mismatch "${applied}" "${applied_id}")" ||
    die "${EXIT_INFRA}" "cannot read the images of the Ray pods of ${RAY_CLUSTER_NAME}"
  [[ -z "${mismatch}" ]] ||
    die "${EXIT_INFRA}" "not every Ray pod runs ${applied}, the image install-ray.sh last applied ($(tr '\n' ';' <<<"${mismatch}" | sed 's/;$//')); rerun scripts/install-ray.sh and wait for it to finish"
  want="$(k8s::pinned_version ray) $(k8s::pinned_version tensorflow) $(k8s::pinned_version tf-keras)"
  found="$(k8s::kubectl -n "${RAY_NAMESPACE}" exec "${head}" -c "${K8S_HEAD_CONTAINER}" -- python -c \
    'import importlib.metadata as m; have = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in m.distributions()}; print(*(next((have[n] for n in names if n in have), "missing") for names in (("ray",), ("tensorflow-cpu", "tensorflow"), ("tf-keras",))))')" ||
    die "${EXIT_INFRA}" "could not read the package versions in pod ${head}"
  [[ "${found}" == "${want}" ]] ||
    die "${EXIT_INFRA}" "the image in the cluster has ray/tensorflow/tf-keras '${found}', the pins say '${want}'; run docker/build-and-push.sh and scripts/install-ray.sh"
  log::info "Every Ray pod runs ${applied}; versions match the pins: ray/tensorflow/tf-keras ${found}"
}

# USE_GPU=1 asks Ray for one GPU per worker, which only worker pods with an nvidia.com/gpu limit have.
cluster_benchmark::_check_gpus() {
  local worker="$1" gpus
  cluster_benchmark::_use_gpu || return 0
  gpus="$(k8s::kubectl -n "${RAY_NAMESPACE}" get pod "${worker}" \
    -o jsonpath="{.spec.containers[?(@.name==\"${K8S_WORKER_CONTAINER}\")].resources.limits.nvidia\\.com/gpu}")" || gpus=""
  [[ "${gpus:-0}" =~ ^[1-9][0-9]*$ ]] ||
    die "${EXIT_BAD_INPUT}" "USE_GPU=1 needs worker pods with an nvidia.com/gpu limit, and ${worker} has none (the kit's image and k8s/ray-cluster.yaml are CPU-only: see the GPU challenge in docs/EXERCISE.md) (allowed: 0)"
}

# The worker pods' nodes: one node for all of them means the all-reduce never crosses the pod network.
cluster_benchmark::_report_worker_nodes() {
  local nodes count
  nodes="$(k8s::kubectl -n "${RAY_NAMESPACE}" get pods -l "$(k8s::_cluster_selector),ray.io/node-type=worker" \
    --field-selector=status.phase=Running -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' 2>/dev/null |
    sed '/^$/d' | sort -u)" || nodes=""
  count="$(grep -c . <<<"${nodes}")" || count=0
  if ((NUM_WORKERS > 1 && count == 1)); then
    log::warn "every worker pod runs on node ${nodes}: the scheduler found no room on another node (the spread is preferred, not required), so the all-reduce stays inside one node"
  elif ((count > 0)); then
    log::info "Worker pods run on nodes: $(tr '\n' ' ' <<<"${nodes}")"
  fi
}

# After the Ray run: which Kubernetes node each Ray worker recorded (workers[].kubernetes_node).
cluster_benchmark::_report_ray_nodes() {
  local file="$1" nodes
  nodes="$(python3 - "${file}" <<'PY' 2>/dev/null
import json, sys
workers = json.load(open(sys.argv[1])).get("workers") or []
print(" ".join(str(w.get("kubernetes_node")) for w in workers if isinstance(w, dict) and w.get("kubernetes_node")))
PY
)" || nodes=""
  [[ -n "${nodes}" ]] || return 0
  log::info "Ray workers ran on Kubernetes nodes: ${nodes}"
  if ((NUM_WORKERS > 1)) && [[ "$(tr ' ' '\n' <<<"${nodes}" | sort -u | grep -c .)" == 1 ]]; then
    log::warn "all ${NUM_WORKERS} Ray workers ran on one Kubernetes node (${nodes%% *})"
  fi
}

# _stop_remote POD CONTAINER: stops the run recorded in the pod's pid file (its whole process group), if it is
# still running; returns 0 when it stopped one, 1 when there was none. The pid must still be our `timeout`: a
# pid from an old file may belong to a Ray process by now.
# shellcheck disable=SC2016  # expanded by the pod's sh
cluster_benchmark::_stop_remote() {
  local pod="$1" container="$2" script
  script='p=$(cat "$1" 2>/dev/null) || exit 3; case "$p" in "" | *[!0-9]*) exit 3 ;; esac;'
  script+=' tr "\0" " " <"/proc/$p/cmdline" 2>/dev/null | grep -q "^timeout " || { rm -f "$1"; exit 3; };'
  script+=' kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; i=0;'
  script+=' while kill -0 "$p" 2>/dev/null && [ "$i" -lt 15 ]; do sleep 1; i=$((i + 1)); done;'
  script+=' kill -KILL -- "-$p" 2>/dev/null; rm -f "$1"; exit 0'
  k8s::kubectl -n "${RAY_NAMESPACE}" exec "${pod}" -c "${container}" -- sh -c "${script}" sh "${CLUSTER_RUN_PIDFILE}" \
    >/dev/null 2>&1
}

# The trap of an interrupted run: stop kubectl here and the run in the pod, say so, exit 130.
cluster_benchmark::_interrupted() {
  local pod="$1" container="$2" label="$3" local_pid="$4"
  trap '' INT TERM
  kill "${local_pid}" 2>/dev/null || true
  if cluster_benchmark::_stop_remote "${pod}" "${container}"; then
    log::warn "Interrupted: stopped ${label} in pod ${pod} (its process group); nothing of it keeps running"
  else
    log::warn "Interrupted: ${label} in pod ${pod} had already ended"
  fi
  exit 130
}

# _run_in_pod POD CONTAINER LABEL RESULT_NAME RUN_DIR ARGV...: runs ARGV in the pod under RUN_TIMEOUT_S, its
# output streaming here, then copies /tmp/kit/RESULT_NAME to RUN_DIR (through a temporary name, so a failed copy
# leaves no half file).
cluster_benchmark::_run_in_pod() {
  local pod="$1" container="$2" label="$3" result="$4" run_dir="$5" rc=0 local_pid restore
  shift 5
  # The real kubectl, not the k8s::kubectl function: `timeout` below can only run a program.
  local -a in_pod=(kubectl --context "${KUBE_CONTEXT}" -n "${RAY_NAMESPACE}" exec "${pod}" -c "${container}" --)
  # A result file left from an earlier run must never be copied out as this run's.
  "${in_pod[@]}" sh -c "mkdir -p ${CLUSTER_KIT_DIR} && rm -f ${CLUSTER_KIT_DIR}/${result}" ||
    die "${EXIT_INFRA}" "cannot run commands in pod ${pod}"
  if cluster_benchmark::_stop_remote "${pod}" "${container}"; then
    log::warn "Stopped a run left in pod ${pod} by an earlier interrupted benchmark; it was holding the pod's CPUs"
  fi
  log::info "[${label}] in pod ${pod}: $*"
  # The timeout inside the pod stops the training there; the outer one covers a hung kubectl. kubectl exec
  # without a TTY never passes a Ctrl-C on, so the pod's `timeout` (a process-group leader) writes its pid for
  # _stop_remote. In the background with `wait`, so a signal reaches the trap at once.
  # RUN_TIMEOUT_S=0 is no limit: `timeout 0` in the pod runs unbounded, and so must kubectl here.
  local -a outer=()
  ((RUN_TIMEOUT_S == 0)) || outer=(timeout --kill-after=30 "$((RUN_TIMEOUT_S + 60))")
  # A signal between the start and the trap that stops it is noted, not lost: bash drops a SIGINT that arrives
  # while it waits for a command substitution, and the run would then go on to its end.
  local interrupted=0
  restore="$(trap -p INT TERM)"
  trap 'interrupted=1' INT TERM
  # shellcheck disable=SC2016  # expanded by the pod's sh
  "${outer[@]}" "${in_pod[@]}" \
    sh -c 'echo "$$" >"$0" && exec "$@"' "${CLUSTER_RUN_PIDFILE}" timeout "${RUN_TIMEOUT_S}" "$@" &
  local_pid=$!
  local on_interrupt
  on_interrupt="cluster_benchmark::_interrupted $(printf '%q ' "${pod}" "${container}" "${label}" "${local_pid}")"
  # shellcheck disable=SC2064  # the values are fixed now, on purpose
  trap "${on_interrupt}" INT TERM
  ((interrupted == 0)) || eval "${on_interrupt}"
  wait "${local_pid}" || rc=$?
  trap - INT TERM
  eval "${restore}"
  case "${rc}" in
    0) ;;
    124 | 137) die "${EXIT_INFRA}" "${label} did not finish within RUN_TIMEOUT_S=${RUN_TIMEOUT_S}s; raise RUN_TIMEOUT_S or lower EPOCHS" ;;
    2 | 3) exit "${rc}" ;; # the training code already printed its one-line error
    *) die "${EXIT_INFRA}" "${label} failed in pod ${pod} (exit ${rc}); its output is above" ;;
  esac
  cluster_benchmark::_copy_out "${pod}" "${container}" "${result}" "${run_dir}"
}

# kubectl cp runs `tar cf - /tmp/kit/FILE` in the pod and writes that tar's stderr (GNU tar's "Removing leading
# `/' from member names") to its own stdout (kubernetes/kubectl pkg/cmd/cp/cp.go: the exec's ErrOut is o.Out,
# 1.20 to today), which goes to /dev/null here; kubectl's own errors stay on stderr.
cluster_benchmark::_copy_out() {
  local pod="$1" container="$2" result="$3" run_dir="$4"
  local partial="${run_dir}/.${result}.partial"
  if ! k8s::kubectl -n "${RAY_NAMESPACE}" cp -c "${container}" "${pod}:${CLUSTER_KIT_DIR}/${result}" "${partial}" >/dev/null ||
    [[ ! -s "${partial}" ]]; then
    rm -f "${partial}"
    die "${EXIT_INFRA}" "could not copy ${CLUSTER_KIT_DIR}/${result} out of pod ${pod}"
  fi
  mv -f "${partial}" "${run_dir}/${result}"
  log::info "Copied ${result} to ${run_dir}/"
}

# Ray training through the Jobs API: the dashboard port reached over a port-forward bound to 127.0.0.1, with the
# token KubeRay keeps in the Secret named after the cluster. Runs in a subshell so its trap stops only our
# port-forward and leaves the caller's traps alone.
cluster_benchmark::_submit_job() (
  local head="$1" run_dir="$2" ray_cli token pf_pid entrypoint port="${DASHBOARD_LOCAL_PORT}"
  shift 2
  ray_cli="${REPO_ROOT}/.venv/bin/ray"
  [[ -x "${ray_cli}" ]] || ray_cli="$(command -v ray)" ||
    die "${EXIT_MISSING_PREREQ}" "SUBMIT=jobs needs the ray CLI in .venv; scripts/run-benchmark.sh installs it with SUBMIT=jobs set, or use SUBMIT=exec"
  token="$(k8s::kubectl -n "${RAY_NAMESPACE}" get secret "${RAY_CLUSTER_NAME}" -o jsonpath='{.data.auth_token}' |
    base64 -d)" || token=""
  [[ -n "${token}" ]] || die "${EXIT_INFRA}" "cannot read the Ray auth token from Secret ${RAY_NAMESPACE}/${RAY_CLUSTER_NAME}"
  k8s::kubectl -n "${RAY_NAMESPACE}" port-forward --address 127.0.0.1 "svc/${RAY_CLUSTER_NAME}-head-svc" \
    "${port}:8265" >"${run_dir}/.port-forward.log" 2>&1 &
  pf_pid=$!
  trap 'kill "${pf_pid}" 2>/dev/null || true' EXIT
  wait_until 30 1 "the port-forward to the Ray dashboard on 127.0.0.1:${port}" \
    bash -c "exec 3<>/dev/tcp/127.0.0.1/${port}" ||
    die "${EXIT_INFRA}" "port-forward failed: $(tail -n 3 "${run_dir}/.port-forward.log"); is DASHBOARD_LOCAL_PORT=${port} in use?"
  printf -v entrypoint '%q ' "$@"
  local id submit_pid
  id="raybench-$(date +%Y%m%d-%H%M%S)"
  local -a submit=("${ray_cli}" job submit --address "http://127.0.0.1:${port}"
    --submission-id "${id}" -- "cd /home/ray && ${entrypoint}")
  log::info "[ray] submitting through the Jobs API: ${entrypoint}"
  local rc=0
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN="${token}"
  # `ray job submit` only tails the job's log: a Ctrl-C stops the tailing and the job runs on, so stop it.
  timeout "${RUN_TIMEOUT_S}" "${submit[@]}" &
  submit_pid=$!
  # shellcheck disable=SC2064
  trap "kill ${submit_pid} 2>/dev/null; $(printf '%q ' "${ray_cli}") job stop --address http://127.0.0.1:${port} ${id} >/dev/null 2>&1 && log::warn 'Interrupted: stopped Ray job ${id}'; exit 130" INT TERM
  wait "${submit_pid}" || rc=$?
  trap - INT TERM
  ((rc == 0)) || die "${EXIT_INFRA}" "the Ray job failed or timed out (exit ${rc}); its log is above"
  cluster_benchmark::_copy_out "${head}" "${K8S_HEAD_CONTAINER}" "ray_results_${NUM_WORKERS}workers.json" "${run_dir}"
)

# _read_argv ARRAY_NAME CMD...: fills ARRAY_NAME with the NUL-separated words CMD prints.
cluster_benchmark::_read_argv() {
  local -n into="$1"
  shift
  # shellcheck disable=SC2034  # a nameref: this fills the caller's array
  mapfile -d '' into < <("$@")
}

# cluster_benchmark::find_pods: sets CLUSTER_HEAD_POD and CLUSTER_WORKER_PODS (one per line), the RayCluster's
# running pods, or stops with what to do when the cluster or its pods are not there.
cluster_benchmark::find_pods() {
  require_cmd kubectl "${K8S_INSTALL_KUBECTL}"
  k8s::require_cluster
  CLUSTER_HEAD_POD="$(k8s::head_pod)" ||
    die "${EXIT_INFRA}" "no running head pod of RayCluster ${RAY_NAMESPACE}/${RAY_CLUSTER_NAME}; run scripts/install-ray.sh"
  CLUSTER_WORKER_PODS="$(k8s::worker_pods)" || CLUSTER_WORKER_PODS=""
  [[ -n "${CLUSTER_WORKER_PODS}" ]] ||
    die "${EXIT_INFRA}" "RayCluster ${RAY_CLUSTER_NAME} has no running worker pods; run scripts/install-ray.sh"
}

# cluster_benchmark::run RUN_DIR
cluster_benchmark::run() {
  local run_dir="$1" head pods worker cpus fits=0 need big_pod="" largest=0 workers_default
  local -a workers argv
  # Every setting, checked by the settings table before any kubectl call; then its defaults for this path, and
  # the workers of the pod profile (training/cluster/head_run.py: as many as the profile has worker pods).
  settings::check baseline,ray,cluster
  settings::export_defaults --programs cluster RUN_TIMEOUT_S SUBMIT DASHBOARD_LOCAL_PORT USE_GPU
  workers_default="$(k8s::plan pod-defaults NUM_WORKERS)" || exit "${EXIT_BAD_INPUT}"
  [[ -z "${workers_default}" ]] || export "${workers_default?}"
  # What the pods cannot take (DATA_DIR) is refused by the argv builder, here before any kubectl call.
  cluster_benchmark::ray_training_argv >/dev/null
  cluster_benchmark::find_pods
  head="${CLUSTER_HEAD_POD}" pods="${CLUSTER_WORKER_PODS}"
  mapfile -t workers <<<"${pods}"
  cpus="$(k8s::pod_cpus "${workers[0]}" "${K8S_WORKER_CONTAINER}")" || die "${EXIT_INFRA}" "cannot read the CPU limit of ${workers[0]}"
  # The settings table's rule for this target (its CPUS_PER_WORKER row): a worker pod's CPUs, read from the running
  # pod, so that a cluster installed with another CLUSTER_PROFILE than this shell names still gets its own.
  export CPUS_PER_WORKER="${CPUS_PER_WORKER:-${cpus}}"
  require_positive_int CPUS_PER_WORKER "${CPUS_PER_WORKER}"
  need=$((NUM_WORKERS * CPUS_PER_WORKER))
  for worker in "${workers[@]}"; do
    cpus="$(k8s::pod_cpus "${worker}" "${K8S_WORKER_CONTAINER}")" || cpus=0
    fits=$((fits + cpus / CPUS_PER_WORKER))
    ((cpus <= largest)) || largest="${cpus}"
    ((cpus < need)) || big_pod="${worker}"
  done
  ((NUM_WORKERS <= fits)) ||
    die "${EXIT_BAD_INPUT}" "NUM_WORKERS=${NUM_WORKERS} with CPUS_PER_WORKER=${CPUS_PER_WORKER} does not fit the ${#workers[@]} worker pod(s) of ${RAY_CLUSTER_NAME} (allowed: 1..${fits})"
  cluster_benchmark::_check_gpus "${workers[0]}"
  cluster_benchmark::_check_image_versions "${head}"
  cluster_benchmark::_report_worker_nodes
  mkdir -p "${run_dir}"

  cluster_benchmark::_read_argv argv cluster_benchmark::baseline_argv "${CPUS_PER_WORKER}" baseline_results.json
  cluster_benchmark::_run_in_pod "${workers[0]}" "${K8S_WORKER_CONTAINER}" "baseline, ${CPUS_PER_WORKER} CPU(s)" \
    baseline_results.json "${run_dir}" "${argv[@]}"
  if [[ -n "${big_pod}" ]]; then
    cluster_benchmark::_read_argv argv cluster_benchmark::baseline_argv "${need}" baseline_equal_resources_results.json
    cluster_benchmark::_run_in_pod "${big_pod}" "${K8S_WORKER_CONTAINER}" "baseline, ${need} CPUs" \
      baseline_equal_resources_results.json "${run_dir}" "${argv[@]}"
  else
    log::info "Skipping the equal-resources baseline: no pod has ${need} CPUs (the largest worker pod has ${largest}); the comparison uses the one-worker baseline"
  fi

  cluster_benchmark::_read_argv argv cluster_benchmark::ray_training_argv
  # shellcheck disable=SC2153  # exported by settings::export_defaults above
  if [[ "${SUBMIT}" == "jobs" ]]; then
    cluster_benchmark::_submit_job "${head}" "${run_dir}" "${argv[@]}"
  else
    cluster_benchmark::_run_in_pod "${head}" "${K8S_HEAD_CONTAINER}" "ray, ${NUM_WORKERS} workers" \
      "ray_results_${NUM_WORKERS}workers.json" "${run_dir}" "${argv[@]}"
  fi
  cluster_benchmark::_report_ray_nodes "${run_dir}/ray_results_${NUM_WORKERS}workers.json"
}

# pod-run KIND CPUS RESULT_NAME RUN_DIR -- ARGV...: see the header.
cluster_benchmark::pod_run() (
  local kind="${1:-}" need="${2:-}" result="${3:-}" run_dir="${4:-}" pod="" container worker cpus
  [[ "${5:-}" == -- && "${kind}" =~ ^(ray|baseline)$ ]] || die "${EXIT_BAD_INPUT}" "usage: cluster_benchmark.sh pod-run KIND CPUS RESULT_NAME RUN_DIR -- ARGV..."
  shift 5
  # The sweep launches these runs: the settings table's default for a sweep (no limit).
  settings::export_defaults --programs sweep RUN_TIMEOUT_S
  if [[ "${kind}" == ray ]]; then
    pod="$(k8s::head_pod)" || die "${EXIT_INFRA}" "no running head pod of RayCluster ${RAY_CLUSTER_NAME}"
    container="${K8S_HEAD_CONTAINER}"
  else
    # The baseline runs in one pod, so that pod's CPU limit must cover the threads it is given.
    while read -r worker; do
      [[ -n "${worker}" ]] || continue
      cpus="$(k8s::pod_cpus "${worker}" "${K8S_WORKER_CONTAINER}")" || cpus=0
      if ((cpus >= need)); then
        pod="${worker}"
        break
      fi
    done <<<"$(k8s::worker_pods || true)"
    [[ -n "${pod}" ]] ||
      die "${EXIT_BAD_INPUT}" "a baseline with ${need} CPUs needs a worker pod with at least ${need} CPUs; RayCluster ${RAY_CLUSTER_NAME} has none"
    container="${K8S_WORKER_CONTAINER}"
  fi
  mkdir -p "${run_dir}"
  cluster_benchmark::_run_in_pod "${pod}" "${container}" "${kind}" "${result}" "${run_dir}" "$@"
  mv -f "${run_dir}/${result}" "${run_dir}/results.json"
)

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  case "${1:-}" in
    pod-run)
      shift
      cluster_benchmark::pod_run "$@"
      ;;
    -h | --help)
      usage_from_header "$0"
      ;;
    *) die "${EXIT_BAD_INPUT}" "cluster_benchmark.sh is a library (source it); run directly it takes only 'pod-run ...' or --help" ;;
  esac
fi
