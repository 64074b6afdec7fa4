#!/usr/bin/env bash
# Measures the README's quick start and writes what it measured where the docs quote it: runs
# `scripts/run-benchmark.sh --local --quick` RUNS times in a row (each into a folder of its own, so results/ is
# untouched), then rewrites the marked blocks of README.md (the summary), GETTING_STARTED.md (one line of
# figures), docs/EXERCISE.md (the whole console) and BENCHMARKS.md (a table of every run, medians and spread)
# from them, with this machine's CPU model and the date. The samples shown come from the run of median wall
# time. Needs .venv (the first quick run makes it; that run's install time is not what this measures).
#
# Usage: scripts/measure-quick-start.sh [--runs N] [--no-docs]
#
# Options:
#   --runs N     quick runs to make (default 3)
#   --no-docs    measure and print, change no file
#   -h, --help   this text
#
# Settings:
#   none of its own; settings in the environment (EPOCHS, NUM_WORKERS, ...) reach the quick runs, and the docs
#   then say so, so leave them unset to measure the README's command.

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

RUNS=3
WRITE_DOCS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs)
      [[ $# -ge 2 ]] || die "${EXIT_BAD_INPUT}" "--runs needs a value"
      require_positive_int --runs "$2"
      RUNS="$2"
      shift
      ;;
    --no-docs) WRITE_DOCS=0 ;;
    -h | --help)
      usage_from_header "$0"
      exit 0
      ;;
    *) die "${EXIT_BAD_INPUT}" "unknown option '$1' (allowed: --runs N, --no-docs, --help)" ;;
  esac
  shift
done

work="$(mktemp -d /tmp/kit-quick-start.XXXXXX)"
trap 'rm -rf "${work}"' EXIT
for ((i = 1; i <= RUNS; i++)); do
  log::info "Quick run ${i} of ${RUNS}"
  started="$(date +%s.%N)"
  RESULTS_DIR="${work}/run${i}" "${REPO_ROOT}/scripts/run-benchmark.sh" --local --quick \
    >"${work}/run${i}.stdout" 2>"${work}/run${i}.stderr" ||
    die "quick run ${i} failed; its output: $(tail -n 5 "${work}/run${i}.stderr")"
  ended="$(date +%s.%N)"
  echo "${started} ${ended}" >"${work}/run${i}.time"
  log::info "Quick run ${i}: $(awk '{printf "%.0f", $2 - $1}' "${work}/run${i}.time") s"
done
docs_flag=()
((WRITE_DOCS)) || docs_flag=(--no-docs)
"${REPO_ROOT}/.venv/bin/python" -m benchmarks.quick_start_docs --work "${work}" --runs "${RUNS}" \
  "${docs_flag[@]}"
