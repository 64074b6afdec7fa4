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
#   --scaling weak|strong, --cluster-cpus N, --run-timeout S
#
# Options:
#   --local      the embedded target: a local Ray cluster of 1 head + NUM_WORKERS worker nodes (CPUS_PER_WORKER each)
#   --quick      a short run that learns (about 2-3 minutes on 2 cores): DATASET=digits (all 1,294 training
#                images), EPOCHS=2, BATCH_SIZE=64 with BATCH_SIZE_MODE=global (Ray: 2 workers x 32), LEARNING_RATE
#                0.002, each unless set (training/settings.py QUICK says why). Both sides take the same 40
#                optimizer steps of the same global batch at the same rate, so their accuracies compare.
#   -h, --help   this text
#
# Settings (environment variables, with defaults):
#   EPOCHS=10            epochs per run
#   BATCH_SIZE=64        images per step per worker (the baseline uses the same per-process batch)
#   BATCH_SIZE_MODE=per-worker   per-worker, or global: the Ray workers split BATCH_SIZE (same steps as the baseline)
#   LEARNING_RATE=0.001  Adam's rate (Ray scales it with the global batch; see ray_training.py --help)
#   NUM_WORKERS=2        Ray Train workers
#   CPUS_PER_WORKER=1    CPUs per Ray worker (cluster: default a worker pod's CPUs); the scale-out baseline gets
#                        the same, the equal-resources one all
#   DATASET=cifar10      cifar10, digits (offline, bundled with scikit-learn) or synthetic (throughput only)
#   DATA_DIR=            a cifar-10-batches-py folder to use instead of Keras' download
#   TRAIN_SAMPLES=       train on this many images (default: all)
#   TEST_SAMPLES=        evaluate on this many test images (default: all)
#   RESULTS_DIR=results  where results go: each run in RESULTS_DIR/runs/<id>/, copied up to RESULTS_DIR on success
#   CHECKPOINT_POLICY=adaptive, MAX_FAILURES=1, INJECT_FAILURE_EPOCH=0 (Ray fault tolerance; see ray_training.py)
#   ALLREDUCE_DTYPE=float32  what gradients cross workers in: float32, bfloat16 (half the bytes) or float16
#   LOCAL_RAY_PIN_CPUS=0     --local, an experiment: 1 holds each worker's TensorFlow op threads to a CPU of its own
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
        exit 0
        ;;
      --sweep | --scales | --repeat | --experiment | --max-attempts | --target-accuracy | --scaling | --cluster-cpus | --run-timeout)
        [[ $# -ge 2 ]] || die "${EXIT_BAD_INPUT}" "$1 needs a value"
        SWEEP_ARGS+=("$1" "$2")
        shift
        ;;
      --fresh | --status | --stop-at-target) SWEEP_ARGS+=("$1") ;;
      *) die "${EXIT_BAD_INPUT}" "unknown option '$1' (allowed: --local, --quick, --sweep, --scales, --repeat, --experiment, --fresh, --status, --max-attempts, --target-accuracy, --stop-at-target, --scaling, --cluster-cpus, --run-timeout, --help)" ;;
    esac
    shift
  done
}

apply_defaults() {
  if ((QUICK)); then
    # The quick recipe and the measurements behind it live in training/settings.py (QUICK).
    local assignment
    while IFS= read -r assignment; do
      [[ -z "${assignment}" ]] || export "${assignment?}"
    done < <(python3 "${REPO_ROOT}/training/settings.py" quick-env)
  fi
  export EPOCHS="${EPOCHS:-10}" BATCH_SIZE="${BATCH_SIZE:-64}" NUM_WORKERS="${NUM_WORKERS:-2}"
  export DATASET="${DATASET:-cifar10}" RESULTS_DIR="${RESULTS_DIR:-results}"
  # On the cluster an unset CPUS_PER_WORKER means a whole worker pod's CPUs (cluster_benchmark.sh reads them).
  [[ "${TARGET}" != local ]] || export CPUS_PER_WORKER="${CPUS_PER_WORKER:-1}"
  # Settings are checked with the standard library before anything is installed or started.
  python3 "${REPO_ROOT}/training/settings.py" check || exit "${EXIT_BAD_INPUT}"
}

check_local_capacity() {
  local needed=$((NUM_WORKERS * CPUS_PER_WORKER)) have
  # CPUs this process may use; not nproc, which reports OMP_NUM_THREADS when that is set.
  have="$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')"
  ((needed <= have)) ||
    die "${EXIT_BAD_INPUT}" "NUM_WORKERS=${NUM_WORKERS} x CPUS_PER_WORKER=${CPUS_PER_WORKER} needs ${needed} CPUs; this machine has ${have} (more workers than cores would share cores and the speedup would lie)"
}

train() { # LOG_NAME SCRIPT ARGS...: one training script of the kit with the venv's Python, its output logged
  local log_name="$1" script="$2"
  shift 2
  console::run "${RUN_DIR}/logs/${log_name}.log" "${REPO_ROOT}/.venv/bin/python" "${REPO_ROOT}/training/${script}" "$@"
}

run_local() {
  local run_dir="$1" all_cpus=$((NUM_WORKERS * CPUS_PER_WORKER))
  log::info "Baseline: one process, ${CPUS_PER_WORKER} TensorFlow thread(s) (one Ray worker's share)"
  train baseline baseline_training.py --threads "${CPUS_PER_WORKER}" --run-id "${RUN_ID}-baseline" \
    --output "${run_dir}/baseline_results.json"
  if ((all_cpus > CPUS_PER_WORKER)); then
    log::info "Baseline, equal resources: one process, ${all_cpus} TensorFlow threads (all of Ray's CPUs)"
    train baseline-equal-resources baseline_training.py --threads "${all_cpus}" --run-id "${RUN_ID}-baseline-equal" \
      --output "${run_dir}/baseline_equal_resources_results.json"
  fi
  RAY_STATE_DIR="$(mktemp -d /tmp/kit-ray.XXXXXX)"
  local_cluster::start "${NUM_WORKERS}" "${CPUS_PER_WORKER}" "${RAY_STATE_DIR}"
  log::info "Ray Train: ${NUM_WORKERS} worker(s) x ${CPUS_PER_WORKER} CPU"
  train ray ray_training.py --ray-address "${RAY_ADDRESS}" --num-workers "${NUM_WORKERS}" \
    --cpus-per-worker "${CPUS_PER_WORKER}" --run-id "${RUN_ID}-ray" --storage-path "${run_dir}/checkpoints" \
    --output "${run_dir}/ray_results_${NUM_WORKERS}workers.json"
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
    log::error "The run did not finish (exit ${code}); earlier results in ${RESULTS_DIR}/ are untouched; this run's files: ${RUN_DIR}/, each step's whole output: ${RUN_DIR}/logs/${ray_logs}"
  fi
}

main() {
  parse_flags "$@"
  apply_defaults
  venv::ensure
  if [[ ${#SWEEP_ARGS[@]} -gt 0 ]]; then
    # A sweep's scaling decides the batch mode of its runs; a global batch (--quick's) means strong scaling.
    [[ "${BATCH_SIZE_MODE:-}" != global ]] || export SCALING="${SCALING:-strong}"
    # shellcheck source=lib/sweep.sh
    source "${REPO_ROOT}/scripts/lib/sweep.sh"
    sweep::main "${TARGET}" "${SWEEP_ARGS[@]}"
    return
  fi
  [[ "${TARGET}" == local ]] && check_local_capacity
  RUN_ID="$(date -u +%Y%m%d-%H%M%S)-$$"
  RUN_DIR="${RESULTS_DIR}/runs/${RUN_ID}"
  mkdir -p "${RUN_DIR}"
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  local cpus_shown="${CPUS_PER_WORKER:-(the CPUs of a worker pod)}"
  log::info "Run ${RUN_ID}: ${TARGET} target, DATASET=${DATASET} EPOCHS=${EPOCHS} BATCH_SIZE=${BATCH_SIZE} NUM_WORKERS=${NUM_WORKERS} CPUS_PER_WORKER=${cpus_shown}${TRAIN_SAMPLES:+ TRAIN_SAMPLES=${TRAIN_SAMPLES}}${BATCH_SIZE_MODE:+ BATCH_SIZE_MODE=${BATCH_SIZE_MODE}}${LEARNING_RATE:+ LEARNING_RATE=${LEARNING_RATE}}"
  if [[ "${TARGET}" == local ]]; then
    run_local "${RUN_DIR}"
  else
    # shellcheck source=lib/cluster_benchmark.sh
    source "${REPO_ROOT}/scripts/lib/cluster_benchmark.sh"
    cluster_benchmark::run "${RUN_DIR}"
  fi
  train compare compare.py --results-dir "${RUN_DIR}" --num-workers "${NUM_WORKERS}"
  publish::run "${RUN_DIR}" "${RESULTS_DIR}"
}

main "$@"
