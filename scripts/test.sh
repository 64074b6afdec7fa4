#!/usr/bin/env bash
# Runs the kit's whole test suite: shellcheck on every script, then pytest (unit tests, stubbed Kubernetes
# scripts, manifest validation, and real local Ray clusters). Makes .venv from the pinned requirements first
# if it is missing or out of date.
#
# Usage: scripts/test.sh [PYTEST_ARGS...]      e.g. scripts/test.sh -m "not slow"   or   scripts/test.sh tests/test_data.py
#
# Settings:
#   KIT_PYTHON=python3   the Python 3.11 used to create .venv
#   SKIP_SHELLCHECK=     set to 1 to skip shellcheck (it is required otherwise)

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/venv.sh
source "${REPO_ROOT}/scripts/lib/venv.sh"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage_from_header "$0"
  exit 0
fi

venv::ensure
if [[ "${SKIP_SHELLCHECK:-}" != 1 ]]; then
  require_cmd shellcheck "https://github.com/koalaman/shellcheck#installing (apt install shellcheck)"
  mapfile -t scripts < <(find "${REPO_ROOT}/scripts" "${REPO_ROOT}/docker" "${REPO_ROOT}/tests" -name '*.sh' -type f | sort)
  mapfile -t stubs < <(find "${REPO_ROOT}/tests" -path '*stubs*' -type f ! -name '*.*' | sort)
  log::info "shellcheck: ${#scripts[@]} scripts, ${#stubs[@]} test stubs"
  (cd "${REPO_ROOT}" && shellcheck -x "${scripts[@]}" "${stubs[@]}")
fi
cd "${REPO_ROOT}"
exec "${REPO_ROOT}/.venv/bin/python" -m pytest -ra "$@" tests
