#!/usr/bin/env bash
# Benchmarks the kit itself: baseline (1 thread, all threads) and Ray Train (1 worker, NUM_WORKERS workers) side by
# side, repeated, on a local Ray cluster; plus Ray's fixed costs, the all-reduce, the FLOP rate against a measured
# peak, the input pipeline and an accuracy check. Writes BENCHMARKS.md and benchmarks/results.json.
#
# Usage: scripts/benchmark.sh [--quick]      (--quick: 2 repeats of smaller runs, under 10 minutes on 2 cores)
#
# Settings: NUM_WORKERS (Ray workers of 1 CPU each; needs that many CPUs), REPEATS, BENCH_EPOCHS,
# BENCH_TRAIN_SAMPLES, BATCH_SIZE (per worker), BENCH_ACCURACY_EPOCHS, BENCH_ALLREDUCE_DTYPE, LOCAL_RAY_PIN_CPUS:
# each one's default, allowed values and reason are in docs/QUICK_REFERENCE.md (from training/core/settings/table.py).

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
# Checked before the virtualenv is made or anything measured: one line naming the setting, exit 2.
settings::check benchmark
venv::ensure
exec "${REPO_ROOT}/.venv/bin/python" -m benchmarks.run "${args[@]}"
