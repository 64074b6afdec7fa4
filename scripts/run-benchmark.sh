#!/usr/bin/env bash
# Runs the benchmark: the plain-Keras baseline, then Ray Train with NUM_WORKERS workers, then the comparison
# (comparison.json, comparison.md, training_time.png, training_curves.png and a printed summary).
#
# Usage:
#   scripts/run-benchmark.sh --local [--quick]     on a Ray cluster started on this machine (no Kubernetes needed)
#   scripts/run-benchmark.sh [--quick]             on the Minikube RayCluster (after setup-minikube.sh, install-ray.sh)
#   scripts/run-benchmark.sh [--local] --sweep 1,2 [--repeat K] [--experiment NAME] [--fresh]   a scaling sweep
#   scripts/run-benchmark.sh [--local] --scales FILE ...                                       a sweep from a file
#   scripts/run-benchmark.sh --status [--experiment NAME]                                       a sweep's progress
#   Sweep options (see python -m training.sweep --help): --max-attempts M, --target-accuracy A, --stop-at-target,
#   --scaling weak|strong, --cluster-cpus N, --run-timeout S, --temporal-ui, --temporal-address HOST:PORT
#   A sweep is a Temporal workflow (embedded server on 127.0.0.1, or TEMPORAL_ADDRESS): the same command resumes it.
#
# Options:
#   --local      the embedded target: a local Ray cluster of 1 head + NUM_WORKERS worker nodes (CPUS_PER_WORKER each)
#   --quick      a short run that learns (about 2-3 minutes on 2 cores): DATASET=digits (all 1,294 training
#                images), EPOCHS=2, BATCH_SIZE=64 with BATCH_SIZE_MODE=global (Ray: 2 workers x 32), LEARNING_RATE
#                0.002, each unless set (training/core/settings/recipes.py QUICK says why). Both sides take the same 40
#                optimizer steps of the same global batch at the same rate, so their accuracies compare.
#   -h, --help   this text
#
# Settings: environment variables, listed below by --help with their defaults and allowed values (all of the
# kit's, with the reason for each default, are in docs/QUICK_REFERENCE.md, generated from training/core/settings/table.py).
#
# Results of a failed or interrupted run stay in its runs/<id>/ folder; the files in RESULTS_DIR are replaced
# only by a run that finished, and then hold exactly that run's files. Each step's whole output (TensorFlow's
# and Ray's start-up messages included) is in runs/<id>/logs/; the terminal shows the kit's own lines.

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/venv.sh
source "${REPO_ROOT}/scripts/lib/venv.sh"
# shellcheck source=lib/local_cluster.sh
source "${REPO_ROOT}/scripts/lib/local_cluster.sh"
# shellcheck source=lib/console.sh
source "${REPO_ROOT}/scripts/lib/console.sh"
# shellcheck source=lib/publish.sh
source "${REPO_ROOT}/scripts/lib/publish.sh"

TARGET=cluster
QUICK=0
SWEEP_ARGS=()

parse_flags() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --local) TARGET=local ;;
      --quick) QUICK=1 ;;
      -h | --help)
        usage_from_header "$0"
        printf '\nSettings (environment variables, with defaults):\n'
        settings::py list --programs baseline,ray,local,cluster
        exit 0
        ;;
      --sweep | --scales | --repeat | --experiment | --max-attempts | --target-accuracy | --scaling | --cluster-cpus | --run-timeout | --temporal-address)
        [[ $# -ge 2 ]] || die "${EXIT_BAD_INPUT}" "$1 needs a value"
        SWEEP_ARGS+=("$1" "$2")
        shift
        ;;
      --fresh | --status | --stop-at-target | --temporal-ui) SWEEP_ARGS+=("$1") ;;
      *) die "${EXIT_BAD_INPUT}" "unknown option '$1' (allowed: --local, --quick, --sweep, --scales, --repeat, --experiment, --fresh, --status, --max-attempts, --target-accuracy, --stop-at-target, --scaling, --cluster-cpus, --run-timeout, --temporal-ui, --temporal-address, --help)" ;;
    esac
    shift
  done
}

apply_defaults() {
  # What this script reads itself; the table in training/core/settings/table.py holds the values and why (and QUICK, the
  # quick recipe with the measurements behind it).
  local -a names=(EPOCHS BATCH_SIZE NUM_WORKERS DATASET RESULTS_DIR)
  # On the cluster an unset CPUS_PER_WORKER means a whole worker pod's CPUs (cluster_benchmark.sh reads them).
  [[ "${TARGET}" != local ]] || names+=(CPUS_PER_WORKER)
  if ((QUICK)); then names=(--quick "${names[@]}"); fi
  settings::export_defaults "${names[@]}"
  # Every setting, checked with the standard library before anything is installed or started.
  settings::check "baseline,ray,${TARGET}"
}

check_local_capacity() {
  local needed=$((NUM_WORKERS * CPUS_PER_WORKER)) have
  # CPUs this process may use; not nproc, which reports OMP_NUM_THREADS when that is set.
  have="$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')"
  ((needed <= have)) ||
    die "${EXIT_BAD_INPUT}" "NUM_WORKERS=${NUM_WORKERS} x CPUS_PER_WORKER=${CPUS_PER_WORKER} needs ${needed} CPUs; this machine has ${have} (more workers than cores would share cores and the speedup would lie)"
}

step() { # LOG_NAME ARGV...: one Python program of the kit with the venv's Python, its output logged
  local log_name="$1"
  shift
  console::run "${RUN_DIR}/logs/${log_name}.log" "${REPO_ROOT}/.venv/bin/python" "$@"
}

trainer() { # LOG_NAME PROGRAM NAME=VALUE...: one run through the kit's one launcher (training/launch.py), as the
  # sweep and scripts/benchmark.sh launch theirs: the settings table's argv, its own process group
  step "$1" -m training.launch "${@:2}"
}

run_local() {
  local run_dir="$1" all_cpus=$((NUM_WORKERS * CPUS_PER_WORKER))
  log::info "Baseline: one process, ${CPUS_PER_WORKER} TensorFlow thread(s) (one Ray worker's share)"
  trainer baseline baseline THREADS="${CPUS_PER_WORKER}" RUN_ID="${RUN_ID}-baseline" \
    OUTPUT="${run_dir}/baseline_results.json"
  if ((all_cpus > CPUS_PER_WORKER)); then
    log::info "Baseline, equal resources: one process, ${all_cpus} TensorFlow threads (all of Ray's CPUs)"
    trainer baseline-equal-resources baseline THREADS="${all_cpus}" RUN_ID="${RUN_ID}-baseline-equal" \
      OUTPUT="${run_dir}/baseline_equal_resources_results.json"
  fi
  RAY_STATE_DIR="$(mktemp -d /tmp/kit-ray.XXXXXX)"
  local_cluster::start "${NUM_WORKERS}" "${CPUS_PER_WORKER}" "${RAY_STATE_DIR}"
  log::info "Ray Train: ${NUM_WORKERS} worker(s) x ${CPUS_PER_WORKER} CPU"
  trainer ray ray RAY_ADDRESS="${RAY_ADDRESS}" RUN_ID="${RUN_ID}-ray" STORAGE_PATH="${run_dir}/checkpoints" \
    OUTPUT="${run_dir}/ray_results_${NUM_WORKERS}workers.json"
  local_cluster::stop "${RAY_STATE_DIR}"
}

cleanup() {
  local code=$? ray_logs=""
  if [[ -n "${RAY_STATE_DIR:-}" && -f "${RAY_STATE_DIR}/ray_tmp" ]]; then
    ray_logs="; Ray's own logs (workers' output included): $(cat "${RAY_STATE_DIR}/ray_tmp")/session_latest/logs/"
  fi
  if [[ -n "${RAY_STATE_DIR:-}" ]]; then
    local_cluster::stop "${RAY_STATE_DIR}" || true
    # The nodes' own logs (ray start's output) go with the run; Ray's session logs stay where ray_logs says.
    if [[ -n "${RUN_DIR:-}" ]] && compgen -G "${RAY_STATE_DIR}/*.log" >/dev/null; then
      mkdir -p "${RUN_DIR}/logs/ray-nodes" && cp "${RAY_STATE_DIR}"/*.log "${RUN_DIR}/logs/ray-nodes/" || true
    fi
    rm -rf "${RAY_STATE_DIR}"
  fi
  if ((code != 0)) && [[ -n "${RUN_DIR:-}" ]]; then
    # shellcheck disable=SC2153  # exported by settings::export_defaults (apply_defaults)
    log::error "The run did not finish (exit ${code}); earlier results in ${RESULTS_DIR}/ are untouched; this run's files: ${RUN_DIR}/, each step's whole output: ${RUN_DIR}/logs/${ray_logs}"
  fi
}

main() {
  parse_flags "$@"
  apply_defaults
  # The cluster target trains in the pods: this machine only compares, plots and drives kubectl, so it gets the
  # light list (no TensorFlow or Ray, which a Mac could not install from the image's pins).
  # The cluster target trains in the pods; only SUBMIT=jobs needs Ray here too (its `ray job submit`).
  if [[ "${TARGET}" == local || "${SUBMIT:-}" == jobs ]]; then venv::ensure full; else venv::ensure laptop; fi
  if [[ ${#SWEEP_ARGS[@]} -gt 0 ]]; then
    # A sweep's scaling decides the batch mode of its runs (a global batch, --quick's, means strong scaling:
    # training/sweep/__main__.py).
    # shellcheck source=lib/sweep.sh
    source "${REPO_ROOT}/scripts/lib/sweep.sh"
    sweep::main "${TARGET}" "${SWEEP_ARGS[@]}"
    return
  fi
  [[ "${TARGET}" == local ]] && check_local_capacity
  # On a terminal the progress line is redrawn in place every second; a pipe or a log gets the table's interval.
  console::choose_progress_interval
  RUN_ID="$(date -u +%Y%m%d-%H%M%S)-$$"
  RUN_DIR="${RESULTS_DIR}/runs/${RUN_ID}"
  mkdir -p "${RUN_DIR}"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  local cpus_shown="${CPUS_PER_WORKER:-}"
  [[ -n "${cpus_shown}" ]] || cpus_shown="(the CPUs of a worker pod)"
  log::info "Run ${RUN_ID}: ${TARGET} target, DATASET=${DATASET} EPOCHS=${EPOCHS} BATCH_SIZE=${BATCH_SIZE} NUM_WORKERS=${NUM_WORKERS} CPUS_PER_WORKER=${cpus_shown}${TRAIN_SAMPLES:+ TRAIN_SAMPLES=${TRAIN_SAMPLES}}${BATCH_SIZE_MODE:+ BATCH_SIZE_MODE=${BATCH_SIZE_MODE}}${LEARNING_RATE:+ LEARNING_RATE=${LEARNING_RATE}}"
  if [[ "${TARGET}" == local ]]; then
    run_local "${RUN_DIR}"
  else
    # shellcheck source=lib/cluster_benchmark.sh
    source "${REPO_ROOT}/scripts/lib/cluster_benchmark.sh"
    cluster_benchmark::run "${RUN_DIR}"
  fi
  step compare -m training.compare --results-dir "${RUN_DIR}" --num-workers "${NUM_WORKERS}"
  publish::run "${RUN_DIR}" "${RESULTS_DIR}"
}

main "$@"
