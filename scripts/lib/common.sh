#!/usr/bin/env bash
# Shared bash library: strict mode, logging, fatal errors, prerequisite checks and bounded waits.
# Every script in scripts/ sources it first:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Exit codes, so a caller can tell bad input from a broken cluster:
#   1 other failure, 2 bad input (a setting or flag), 3 missing prerequisite, 4 cluster or infrastructure failure.

set -o errexit -o nounset -o pipefail
[[ -n "${KIT_TRACE:-}" ]] && set -o xtrace

# kit::require_shell BASH_MAJOR BASH_MINOR: the scripts use bash 4.4 features (namerefs, mapfile -d, associative
# arrays) and GNU timeout; macOS ships bash 3.2 and no timeout. Checked here, before any of them runs, so a Mac
# user reads what to install instead of a syntax error halfway through a run. Homebrew's coreutils names it
# gtimeout unless its gnubin folder is on PATH; the function below stands in for it then.
kit::require_shell() {
  local major="$1" minor="$2"
  if ((major < 4 || (major == 4 && minor < 4))); then
    printf 'error: bash 4.4 or newer is required, this is bash %s.%s; on macOS: brew install bash coreutils, then run the script again from a new terminal (Homebrew puts its bash first on PATH)\n' \
      "${major}" "${minor}" >&2
    exit 3
  fi
  if ! command -v timeout >/dev/null 2>&1; then
    if command -v gtimeout >/dev/null 2>&1; then
      timeout() { gtimeout "$@"; }
    else
      printf 'error: GNU timeout is not installed; on macOS: brew install coreutils (it installs it as gtimeout, which the kit finds)\n' >&2
      exit 3
    fi
  fi
}
kit::require_shell "${BASH_VERSINFO[0]}" "${BASH_VERSINFO[1]}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this file
readonly REPO_ROOT
# shellcheck disable=SC2034
readonly EXIT_BAD_INPUT=2 EXIT_MISSING_PREREQ=3 EXIT_INFRA=4
# The kit's Python is one package tree (training/, benchmarks/, scripts/lib/) run as `python -m training.X`;
# this lets every Python the scripts start find it, whatever the current directory.
export PYTHONPATH="${REPO_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"

# Progress goes to stdout, problems to stderr, each line stamped so a long run can be read back afterwards.
log::_stamp() { date '+%H:%M:%S'; }
log::info() { printf '[%s] %s\n' "$(log::_stamp)" "$*"; }
log::warn() { printf '[%s] WARNING: %s\n' "$(log::_stamp)" "$*" >&2; }
log::error() { printf '[%s] ERROR: %s\n' "$(log::_stamp)" "$*" >&2; }

# die [CODE] MESSAGE: one line on stderr, then exit CODE (default 1).
die() {
  local code=1
  if [[ $# -gt 1 && "$1" =~ ^[0-9]+$ ]]; then
    code="$1"
    shift
  fi
  printf 'error: %s\n' "$*" >&2
  exit "${code}"
}

# require_cmd NAME INSTALL_URL: stop with exit 3 and where to get NAME when it is not on PATH.
require_cmd() {
  local name="$1" url="$2"
  command -v "${name}" >/dev/null 2>&1 ||
    die "${EXIT_MISSING_PREREQ}" "${name} is not installed or not on PATH; install it from ${url}"
}

# require_positive_int NAME VALUE: settings that count things must be whole numbers above zero.
require_positive_int() {
  local name="$1" value="$2"
  [[ "${value}" =~ ^[1-9][0-9]*$ ]] ||
    die "${EXIT_BAD_INPUT}" "${name} must be a positive integer, got '${value}'"
}

# wait_until TIMEOUT_S INTERVAL_S DESCRIPTION CMD [ARGS...]
# Runs CMD every INTERVAL_S seconds until it succeeds; returns 1 after TIMEOUT_S seconds, having said what it
# waited for and for how long. The caller decides what diagnostics to print and whether to die.
wait_until() {
  local timeout_s="$1" interval_s="$2" description="$3"
  shift 3
  local start now
  start="$(date +%s)"
  log::info "Waiting up to ${timeout_s}s for ${description}"
  until "$@" >/dev/null 2>&1; do
    now="$(date +%s)"
    if ((now - start >= timeout_s)); then
      log::error "Timed out after ${timeout_s}s waiting for ${description}"
      return 1
    fi
    sleep "${interval_s}"
  done
  now="$(date +%s)"
  log::info "Done after $((now - start))s: ${description}"
}

# usage_from_header FILE: prints the script's header comment (the lines after the shebang that start with '#'),
# so --help and the header can never disagree.
usage_from_header() {
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p;}' "$1"
}

# The settings table (training/core/settings/) from bash; standard library only, so it runs before .venv exists.
settings::py() {
  python3 -m training.core.settings "$@"
}

# settings::export_defaults [--quick] NAME...: exports the table's default of each NAME the environment leaves
# unset (with --quick, the quick recipe's values first).
settings::export_defaults() {
  local assignments assignment
  assignments="$(settings::py defaults "$@")" || exit "${EXIT_BAD_INPUT}"
  while IFS= read -r assignment; do
    [[ -z "${assignment}" ]] || export "${assignment?}"
  done <<<"${assignments}"
}

# settings::check PROGRAM,...: every setting those programs take, and the rules between them, checked before
# anything is installed or started: one line naming the setting, exit 2.
settings::check() {
  settings::py check --programs "$1" || exit "${EXIT_BAD_INPUT}"
}

# settings::trainer_argv ARRAY PROGRAM TARGET NAME=VALUE...: fills ARRAY with a trainer's argv (no interpreter)
# from the table's builder: the given values, then every setting of PROGRAM the environment sets.
settings::trainer_argv() {
  local -n _settings_argv="$1"
  local words
  words="$(mktemp)"
  settings::py argv --program "$2" --target "$3" "${@:4}" >"${words}" ||
    {
      rm -f "${words}"
      exit "${EXIT_BAD_INPUT}"
    }
  # shellcheck disable=SC2034  # a nameref: this fills the caller's array
  mapfile -d '' _settings_argv <"${words}"
  rm -f "${words}"
}
