#!/usr/bin/env bash
# venv::ensure [full|laptop]: makes REPO_ROOT/.venv with pinned requirements on first use, and again whenever a
# pinned file changes (a stamp per kind holds their checksum), so the local install always matches the files the
# image installs from.
#   full    docker/requirements.txt (which includes the laptop list) + tests/requirements.txt: --local, tests
#   laptop  docker/requirements-laptop.txt only: the cluster target, whose training runs in the pods; no
#           TensorFlow or Ray on this machine, so it installs on any laptop
# A full install holds the laptop list too and stamps both kinds.

settings::export_defaults --programs local KIT_PYTHON

venv::_files() {
  local laptop="${REPO_ROOT}/docker/requirements-laptop.txt"
  if [[ "$1" == laptop ]]; then
    printf '%s\n' "${laptop}"
  else
    printf '%s\n' "${REPO_ROOT}/docker/requirements.txt" "${laptop}" "${REPO_ROOT}/tests/requirements.txt"
  fi
}

venv::_stamp() {
  local -a files
  mapfile -t files < <(venv::_files "$1")
  cat "${files[@]}" | sha256sum | cut -d' ' -f1
}

venv::ensure() {
  local kind="${1:-full}" venv="${REPO_ROOT}/.venv" stamp
  [[ "${kind}" == full || "${kind}" == laptop ]] || die "venv::ensure: unknown kind '${kind}' (allowed: full, laptop)"
  stamp="$(venv::_stamp "${kind}")"
  if [[ -x "${venv}/bin/python" && "$(cat "${venv}/.kit-stamp-${kind}" 2>/dev/null)" == "${stamp}" ]]; then
    return 0
  fi
  require_cmd "${KIT_PYTHON}" "https://www.python.org/downloads/ (Python 3.11)"
  "${KIT_PYTHON}" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' ||
    die "${EXIT_MISSING_PREREQ}" "Python 3.11 is required (the pinned Ray and TensorFlow wheels); ${KIT_PYTHON} is $("${KIT_PYTHON}" -V 2>&1). Set KIT_PYTHON to a python3.11"
  if [[ -x "${venv}/bin/python" ]]; then
    log::info "Updating ${venv}: the pinned requirements (${kind}) changed"
  else
    log::info "Setting up ${venv} with the pinned requirements (${kind}; first run only; $([[ "${kind}" == laptop ]] && echo "under a minute" || echo "about 2 minutes"))"
    "${KIT_PYTHON}" -m venv "${venv}" ||
      die "${EXIT_MISSING_PREREQ}" "could not create a virtualenv with ${KIT_PYTHON} -m venv (on Debian/Ubuntu: apt install python3-venv)"
  fi
  # pip's own output (progress, resolver notes, index warnings) goes to a log; the terminal gets its last lines
  # only when the install fails.
  local install_log="${venv}/install.log" file
  local -a requirements=()
  while IFS= read -r file; do requirements+=(-r "${file}"); done < <(venv::_files "${kind}")
  if ! "${venv}/bin/python" -m pip install --disable-pip-version-check "${requirements[@]}" >"${install_log}" 2>&1; then
    tail -n 15 "${install_log}" >&2
    die "${EXIT_MISSING_PREREQ}" "installing the pinned requirements into ${venv} failed; pip's whole output is in ${install_log}"
  fi
  echo "${stamp}" >"${venv}/.kit-stamp-${kind}"
  [[ "${kind}" == laptop ]] || venv::_stamp laptop >"${venv}/.kit-stamp-laptop"
  log::info "Virtualenv ready"
}

# venv::dashboard_dir: where venv::ensure_dashboard puts the Ray Dashboard's packages.
venv::dashboard_dir() { echo "${REPO_ROOT}/.venv/dashboard-deps"; }

# venv::ensure_dashboard: the Ray Dashboard's packages (docker/requirements-dashboard.txt) in a folder of their own,
# which only the local head node puts on its PYTHONPATH: in .venv itself they would turn every node's agent into
# a full one (Ray decides by what imports), CPU the workers need in every local run. Again when the list changes.
venv::ensure_dashboard() {
  local dir pins stamp
  dir="$(venv::dashboard_dir)"
  pins="${REPO_ROOT}/docker/requirements-dashboard.txt"
  stamp="$(sha256sum <"${pins}" | cut -d' ' -f1)"
  [[ "$(cat "${dir}/.kit-stamp" 2>/dev/null)" != "${stamp}" ]] || return 0
  log::info "Installing the Ray Dashboard's packages into ${dir} (first use of LOCAL_RAY_DASHBOARD only)"
  rm -rf "${dir}"
  # --no-deps: the list is the whole closure; nothing in it may replace a package of .venv.
  if ! "${REPO_ROOT}/.venv/bin/python" -m pip install --disable-pip-version-check --no-deps --target "${dir}" \
    -r "${pins}" >"${dir}.install.log" 2>&1; then
    tail -n 15 "${dir}.install.log" >&2
    rm -rf "${dir}"
    die "${EXIT_MISSING_PREREQ}" "installing the Ray Dashboard's packages failed; pip's output is in ${dir}.install.log (or run without LOCAL_RAY_DASHBOARD)"
  fi
  echo "${stamp}" >"${dir}/.kit-stamp"
}
