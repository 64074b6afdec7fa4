#!/usr/bin/env bash
# Scaling sweeps from bash: the glue between scripts/run-benchmark.sh and `python -m training.sweep`, which
# plans the runs, keeps the ledger, resumes and writes the report (training/sweep/).
#
#   sweep::main TARGET ARGS...     TARGET local or cluster; --status in ARGS shows the table, else runs
#   sweep::run [--local] ARGS...   runs the sweep; with --local inside a local Ray cluster (local_cluster.sh)
#                                  shaped for the largest Ray scale, started only if a Ray run is left to do
#   sweep::status ARGS...          the sweep's table from its ledger; starts nothing
#
# ARGS are python -m training.sweep flags: --sweep 1,2,3 | --scales FILE, --experiment NAME, --repeat K,
# --max-attempts M, --fresh, --target-accuracy A, --stop-at-target, --scaling strong|weak.
# Needs common.sh and venv.sh sourced (and local_cluster.sh for --local), and .venv made (venv::ensure).
#
# On the cluster target each run is `bash scripts/lib/sweep.sh pod-run KIND CPUS RESULT_NAME RUN_DIR -- ARGV...`:
# ARGV runs in the head pod (Ray) or in a worker pod with CPUS CPUs (baseline) through cluster_benchmark.sh,
# and the pod's /tmp/kit/RESULT_NAME becomes RUN_DIR/results.json.

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  # Run as a program (pod-run, --help) rather than sourced: it needs the shared library itself.
  # shellcheck source=scripts/lib/common.sh
  source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
  # shellcheck source=scripts/lib/cluster_benchmark.sh
  source "${REPO_ROOT}/scripts/lib/cluster_benchmark.sh"
fi

# From any folder: RESULTS_DIR stays relative to where the user ran the script, as for the other benchmarks.
sweep::_python() {
  "${REPO_ROOT}/.venv/bin/python" -m training.sweep "$@"
}

sweep::status() {
  sweep::_python status "$@"
}

# Prints the value of KEY from the key=value lines of `training.sweep plan`.
sweep::_plan_value() {
  local key="$1" plan="$2"
  sed -n "s/^${key}=//p" <<<"${plan}"
}

# Runs in a subshell: its EXIT trap stops only the Ray cluster it started and leaves the caller's traps alone.
sweep::_run_local() (
  local plan left workers cpus rc=0
  # Checks the input (and that no other sweep holds the experiment) before a Ray node starts.
  plan="$(sweep::_python plan --target local "$@")" || exit
  left="$(sweep::_plan_value ray_runs_left "${plan}")"
  if ((left > 0)); then
    workers="$(sweep::_plan_value max_workers "${plan}")"
    cpus="$(sweep::_plan_value max_cpus_per_worker "${plan}")"
    SWEEP_RAY_STATE_DIR="$(mktemp -d /tmp/kit-ray.XXXXXX)"
    trap 'local_cluster::stop "${SWEEP_RAY_STATE_DIR}" || true; rm -rf "${SWEEP_RAY_STATE_DIR}"' EXIT
    # One cluster for the whole sweep, sized to its largest Ray scale; a smaller run takes some of its nodes.
    local_cluster::start "${workers}" "${cpus}" "${SWEEP_RAY_STATE_DIR}"
  else
    log::info "No Ray run left to do in this sweep; not starting a Ray cluster"
  fi
  sweep::_python run --target local "$@" || rc=$?
  exit "${rc}"
)

sweep::_run_cluster() {
  local pods worker cpus total=0 head
  # shellcheck source=scripts/lib/cluster_benchmark.sh
  source "${REPO_ROOT}/scripts/lib/cluster_benchmark.sh"
  cluster_benchmark::find_pods
  head="${CLUSTER_HEAD_POD}" pods="${CLUSTER_WORKER_PODS}"
  while read -r worker; do
    cpus="$(k8s::pod_cpus "${worker}" "${K8S_WORKER_CONTAINER}")" || cpus=0
    total=$((total + cpus))
  done <<<"${pods}"
  cluster_benchmark::_check_image_versions "${head}"
  # The runs' checkpoints go to the store every pod reaches, under each run's id (see commands.py).
  settings::export_defaults --programs cluster CHECKPOINT_STORAGE_URI
  sweep::_python run --target k8s --cluster-cpus "${total}" "$@"
}

sweep::run() {
  local target=cluster arg
  local -a args=()
  for arg in "$@"; do
    if [[ "${arg}" == --local ]]; then target=local; else args+=("${arg}"); fi
  done
  if [[ "${target}" == local ]]; then
    sweep::_run_local "${args[@]}"
  else
    sweep::_run_cluster "${args[@]}"
  fi
}

sweep::main() {
  local target="$1" arg
  shift
  for arg in "$@"; do
    if [[ "${arg}" == --status ]]; then
      sweep::status "$@"
      return
    fi
  done
  if [[ "${target}" == local ]]; then
    sweep::run --local "$@"
  else
    sweep::run "$@"
  fi
}

# pod-run KIND CPUS RESULT_NAME RUN_DIR -- ARGV...: one run of a cluster sweep (see the header).
sweep::_pod_run() (
  local kind="${1:-}" need="${2:-}" result="${3:-}" run_dir="${4:-}" pod="" container worker cpus
  [[ "${5:-}" == -- && "${kind}" =~ ^(ray|baseline)$ ]] || die "${EXIT_BAD_INPUT}" "usage: sweep.sh pod-run KIND CPUS RESULT_NAME RUN_DIR -- ARGV..."
  shift 5
  RUN_TIMEOUT_S="${RUN_TIMEOUT_S:-3600}"
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
  cluster_benchmark::_run_in_pod "${pod}" "${container}" "${kind}" "${result}" "${run_dir}" "$@"
  mv -f "${run_dir}/${result}" "${run_dir}/results.json"
)

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  case "${1:-}" in
    pod-run)
      shift
      sweep::_pod_run "$@"
      ;;
    -h | --help)
      usage_from_header "$0"
      ;;
    *) die "${EXIT_BAD_INPUT}" "sweep.sh is a library (source it); run directly it takes only 'pod-run ...' or --help" ;;
  esac
fi
