#!/usr/bin/env bash
# Benchmarks the kit itself: baseline (1 thread, all threads) and Ray Train (1 worker, NUM_WORKERS workers) side by
# side, repeated, on a local Ray cluster; plus Ray's fixed costs, the all-reduce, the FLOP rate against a measured
# peak, the input pipeline and an accuracy check. Writes BENCHMARKS.md and benchmarks/results.json.
#
# Usage: scripts/benchmark.sh [--quick]      (--quick: 2 repeats of smaller runs, under 10 minutes on 2 cores)
#
# Settings:
#   NUM_WORKERS=2             Ray workers of 1 CPU each (needs that many CPUs)
#   REPEATS=3 (2 with --quick)
#   BENCH_EPOCHS=3            epochs per throughput run (the first is warm-up)
#   BENCH_TRAIN_SAMPLES=1536  synthetic images per throughput run (768 with --quick)
#   BATCH_SIZE=64             per worker
#   BENCH_ACCURACY_EPOCHS=5   epochs of the digits accuracy check (3 with --quick)
#   BENCH_ALLREDUCE_DTYPE=float32  what the Ray runs all-reduce gradients in: float32, bfloat16 or float16

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/venv.sh
source "${REPO_ROOT}/scripts/lib/venv.sh"

args=()
for arg in "$@"; do
  case "${arg}" in
    -h | --help)
      usage_from_header "$0"
      exit 0
      ;;
    --quick) args+=(--quick) ;;
    *) die "${EXIT_BAD_INPUT}" "unknown option '${arg}' (allowed: --quick, --help)" ;;
  esac
done
for name in NUM_WORKERS REPEATS BENCH_EPOCHS BENCH_TRAIN_SAMPLES BATCH_SIZE BENCH_ACCURACY_EPOCHS; do
  [[ -z "${!name:-}" ]] || require_positive_int "${name}" "${!name}"
done
case "${BENCH_ALLREDUCE_DTYPE:-float32}" in
  float32 | bfloat16 | float16) ;;
  *) die "${EXIT_BAD_INPUT}" "BENCH_ALLREDUCE_DTYPE must be one of float32, bfloat16, float16, got '${BENCH_ALLREDUCE_DTYPE}'" ;;
esac
venv::ensure
exec "${REPO_ROOT}/.venv/bin/python" "${REPO_ROOT}/benchmarks/run.py" "${args[@]}"
