#!/usr/bin/env bash
# publish::run RUN_DIR RESULTS_DIR: a finished run's files become what RESULTS_DIR holds.
#
# The files a run publishes to RESULTS_DIR; nothing else there (runs/, experiments/, a user's own files) is touched.
PUBLISHED_FILES=(baseline_results.json baseline_equal_resources_results.json 'ray_results_*workers.json'
  comparison.json comparison.md training_time.png training_curves.png)

# Makes RESULTS_DIR hold exactly a finished run's files: each copied in under a temporary name and renamed, so no
# reader sees half a file, then the files of earlier runs that this one did not make (a 2-worker run's Ray
# results after a 1-worker run) removed, so that compare.py --results-dir RESULTS_DIR reads one run.
publish::run() {
  local run_dir="$1" results_dir="$2" pattern file name
  local -A fresh=()
  for pattern in "${PUBLISHED_FILES[@]}"; do
    for file in "${run_dir}"/${pattern}; do
      [[ -f "${file}" ]] || continue
      name="$(basename "${file}")"
      fresh["${name}"]=1
      cp "${file}" "${results_dir}/.${name}.tmp"
      mv -f "${results_dir}/.${name}.tmp" "${results_dir}/${name}"
    done
  done
  for pattern in "${PUBLISHED_FILES[@]}"; do
    for file in "${results_dir}"/${pattern}; do
      [[ -f "${file}" && -z "${fresh[$(basename "${file}")]:-}" ]] || continue
      rm -f "${file}"
    done
  done
  log::info "Results in ${results_dir}/ (this run's own copy and its logs: ${run_dir}/)"
}
