#!/usr/bin/env bash
# The benchmark on the RayCluster (the default target of scripts/run-benchmark.sh), run inside the pods:
#   source "${REPO_ROOT}/scripts/lib/cluster_benchmark.sh"; cluster_benchmark::run RUN_DIR
#
# 1. baseline with one Ray worker's resources: in a worker pod (its limits are one worker's share), with
#    TensorFlow threads = CPUS_PER_WORKER;
# 2. baseline with the resources of all workers together, only when some pod is that large (else skipped);
# 3. Ray training from the head pod with `--ray-address auto`, or through the Ray Jobs API (SUBMIT=jobs).
# Each result JSON is copied into RUN_DIR right after its run; a failed run copies nothing.
#
# Settings (besides the training settings EPOCHS BATCH_SIZE LEARNING_RATE SEED DATASET TRAIN_SAMPLES
# TEST_SAMPLES NUM_WORKERS CPUS_PER_WORKER, passed on as flags):
#   RAY_NAMESPACE (ray), RAY_CLUSTER_NAME (raybench), KUBE_CONTEXT (= MINIKUBE_PROFILE, raybench)
#   CPUS_PER_WORKER   default: the CPUs of one worker pod
#   RUN_TIMEOUT_S     3600  limit for each training run
#   SUBMIT            exec  exec: kubectl exec in the head pod; jobs: `ray job submit` over a port-forward
#   DASHBOARD_LOCAL_PORT 8265  local end of the port-forward (bound to 127.0.0.1 only)
#   CHECKPOINT_STORAGE_URI  s3://ray-checkpoints/runs?... the in-cluster S3 store every pod reaches

# shellcheck source=scripts/lib/k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/k8s.sh"

readonly CLUSTER_KIT_DIR="/tmp/kit"
# The MinIO Service of k8s/checkpoint-store.yaml; Ray Train's storage_path goes through pyarrow, which reads the
# endpoint from the URI. Credentials come from AWS_* variables the RayCluster sets from a Secret.
readonly DEFAULT_CHECKPOINT_STORAGE_URI="s3://ray-checkpoints/runs?endpoint_override=checkpoint-store:9000&scheme=http&region=us-east-1&allow_bucket_creation=true"

# Training settings that go to the pods as flags; unset ones keep the training code's own defaults there.
cluster_benchmark::_training_flags() {
  local setting flag
  for setting in EPOCHS BATCH_SIZE LEARNING_RATE SEED DATASET TRAIN_SAMPLES TEST_SAMPLES "$@"; do
    [[ -n "${!setting:-}" ]] || continue
    flag="--$(tr 'A-Z_' 'a-z-' <<<"${setting}")"
    printf '%s\0%s\0' "${flag}" "${!setting}"
  done
}

# cluster_benchmark::ray_training_argv: the exact command the head pod runs, NUL-separated (also used by
# tests/test_netns_cluster.py, which runs it on a real multi-node cluster).
cluster_benchmark::ray_training_argv() {
  printf '%s\0' python training/ray_training.py --ray-address auto \
    --num-workers "${NUM_WORKERS:-2}" --cpus-per-worker "${CPUS_PER_WORKER:-1}" \
    --storage-path "${CHECKPOINT_STORAGE_URI:-${DEFAULT_CHECKPOINT_STORAGE_URI}}" \
    --output "${CLUSTER_KIT_DIR}/ray_results_${NUM_WORKERS:-2}workers.json"
  # Ray-only settings reach the pod as flags, exactly as --local passes them through the environment.
  cluster_benchmark::_training_flags BATCH_SIZE_MODE LR_SCALING CHECKPOINT_POLICY CHECKPOINT_BUDGET MTBF_SECONDS \
    MAX_FAILURES INJECT_FAILURE_EPOCH COLLECTIVE ALLREDUCE_DTYPE
}

# cluster_benchmark::baseline_argv THREADS OUTPUT_NAME
cluster_benchmark::baseline_argv() {
  printf '%s\0' python training/baseline_training.py --threads "$1" --output "${CLUSTER_KIT_DIR}/$2"
  cluster_benchmark::_training_flags
}

cluster_benchmark::_check_image_versions() {
  local head="$1" found want
  want="$(k8s::pinned_version ray) $(k8s::pinned_version tensorflow-cpu) $(k8s::pinned_version tf-keras)"
  found="$(k8s::kubectl -n "${RAY_NAMESPACE}" exec "${head}" -c "${K8S_HEAD_CONTAINER}" -- python -c \
    'from importlib.metadata import version as v; print(v("ray"), v("tensorflow-cpu"), v("tf-keras"))')" ||
    die "${EXIT_INFRA}" "could not read the package versions in pod ${head}"
  [[ "${found}" == "${want}" ]] ||
    die "${EXIT_INFRA}" "the image in the cluster has ray/tensorflow-cpu/tf-keras '${found}', the pins say '${want}'; run docker/build-and-push.sh and scripts/install-ray.sh"
  log::info "Image versions match the pins: ray/tensorflow-cpu/tf-keras ${found}"
}

# _run_in_pod POD CONTAINER LABEL RESULT_NAME RUN_DIR ARGV...: runs ARGV in the pod under RUN_TIMEOUT_S, its
# output streaming here, then copies /tmp/kit/RESULT_NAME to RUN_DIR (through a temporary name, so a failed copy
# leaves no half file).
cluster_benchmark::_run_in_pod() {
  local pod="$1" container="$2" label="$3" result="$4" run_dir="$5" rc=0
  shift 5
  # The real kubectl, not the k8s::kubectl function: `timeout` below can only run a program.
  local -a in_pod=(kubectl --context "${KUBE_CONTEXT}" -n "${RAY_NAMESPACE}" exec "${pod}" -c "${container}" --)
  # A result file left from an earlier run must never be copied out as this run's.
  "${in_pod[@]}" sh -c "mkdir -p ${CLUSTER_KIT_DIR} && rm -f ${CLUSTER_KIT_DIR}/${result}" ||
    die "${EXIT_INFRA}" "cannot run commands in pod ${pod}"
  log::info "[${label}] in pod ${pod}: $*"
  # The timeout inside the pod stops the training there; the outer one covers a hung kubectl.
  timeout --kill-after=30 "$((RUN_TIMEOUT_S + 60))" "${in_pod[@]}" timeout "${RUN_TIMEOUT_S}" "$@" || rc=$?
  case "${rc}" in
    0) ;;
    124 | 137) die "${EXIT_INFRA}" "${label} did not finish within RUN_TIMEOUT_S=${RUN_TIMEOUT_S}s; raise RUN_TIMEOUT_S or lower EPOCHS" ;;
    2 | 3) exit "${rc}" ;; # the training code already printed its one-line error
    *) die "${EXIT_INFRA}" "${label} failed in pod ${pod} (exit ${rc}); its output is above" ;;
  esac
  cluster_benchmark::_copy_out "${pod}" "${container}" "${result}" "${run_dir}"
}

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
  local head="$1" run_dir="$2" ray_cli token pf_pid entrypoint port="${DASHBOARD_LOCAL_PORT:-8265}"
  shift 2
  ray_cli="${REPO_ROOT}/.venv/bin/ray"
  [[ -x "${ray_cli}" ]] || ray_cli="$(command -v ray)" ||
    die "${EXIT_MISSING_PREREQ}" "SUBMIT=jobs needs the ray CLI; run scripts/run-benchmark.sh --local once to create .venv, or use SUBMIT=exec"
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
  local -a submit=("${ray_cli}" job submit --address "http://127.0.0.1:${port}"
    --submission-id "raybench-$(date +%Y%m%d-%H%M%S)" -- "cd /home/ray && ${entrypoint}")
  log::info "[ray] submitting through the Jobs API: ${entrypoint}"
  local rc=0
  RAY_AUTH_MODE=token RAY_AUTH_TOKEN="${token}" timeout "${RUN_TIMEOUT_S}" "${submit[@]}" || rc=$?
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

# cluster_benchmark::run RUN_DIR
cluster_benchmark::run() {
  local run_dir="$1" head pods worker cpus fits=0 need big_pod="" largest=0
  local -a workers argv
  RUN_TIMEOUT_S="${RUN_TIMEOUT_S:-3600}"
  NUM_WORKERS="${NUM_WORKERS:-2}"
  require_positive_int RUN_TIMEOUT_S "${RUN_TIMEOUT_S}"
  require_positive_int NUM_WORKERS "${NUM_WORKERS}"
  [[ "${SUBMIT:-exec}" =~ ^(exec|jobs)$ ]] || die "${EXIT_BAD_INPUT}" "SUBMIT must be one of exec, jobs, got '${SUBMIT}'"
  [[ -z "${DATA_DIR:-}" ]] || log::warn "DATA_DIR is a path on this machine; the pods use the CIFAR-10 copy in the image"
  require_cmd kubectl "${K8S_INSTALL_KUBECTL}"
  k8s::require_cluster
  head="$(k8s::head_pod)" ||
    die "${EXIT_INFRA}" "no running head pod of RayCluster ${RAY_NAMESPACE}/${RAY_CLUSTER_NAME}; run scripts/install-ray.sh"
  pods="$(k8s::worker_pods)" || pods=""
  [[ -n "${pods}" ]] || die "${EXIT_INFRA}" "RayCluster ${RAY_CLUSTER_NAME} has no running worker pods; run scripts/install-ray.sh"
  mapfile -t workers <<<"${pods}"
  cpus="$(k8s::pod_cpus "${workers[0]}" "${K8S_WORKER_CONTAINER}")" || die "${EXIT_INFRA}" "cannot read the CPU limit of ${workers[0]}"
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
  cluster_benchmark::_check_image_versions "${head}"
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
  if [[ "${SUBMIT:-exec}" == "jobs" ]]; then
    cluster_benchmark::_submit_job "${head}" "${run_dir}" "${argv[@]}"
  else
    cluster_benchmark::_run_in_pod "${head}" "${K8S_HEAD_CONTAINER}" "ray, ${NUM_WORKERS} workers" \
      "ray_results_${NUM_WORKERS}workers.json" "${run_dir}" "${argv[@]}"
  fi
}
