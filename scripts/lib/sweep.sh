#!/usr/bin/env bash
# Scaling sweeps from bash: the glue between scripts/run-benchmark.sh and `python -m training.sweep`, which runs
# the sweep as a Temporal workflow (training/sweep/): it starts or resumes the experiment's workflow, runs its
# activities (each run through training/launch.py, the kit's one launcher) and writes the report.
#
#   sweep::main TARGET ARGS...     TARGET local or cluster; --status in ARGS shows the table, else runs
#
# ARGS are python -m training.sweep flags: --sweep 1,2,3 | --scales FILE, --experiment NAME, --repeat K,
# --max-attempts M, --fresh, --target-accuracy A, --stop-at-target, --scaling strong|weak, --run-timeout S,
# --temporal-ui. Needs common.sh and venv.sh sourced, and .venv made (venv::ensure).
#
# Local target: the sweep starts its local Ray cluster (local_cluster.sh) for its first Ray run and stops it at
# the end. Cluster target: each run goes into the RayCluster's pods (cluster_benchmark.sh pod-run); the Temporal
# server stays on this machine either way.

# From any folder: RESULTS_DIR stays relative to where the user ran the script, as for the other benchmarks.
sweep::_python() {
  "${REPO_ROOT}/.venv/bin/python" -m training.sweep "$@"
}

sweep::_run_cluster() {
  local worker cpus total=0
  # shellcheck source=scripts/lib/cluster_benchmark.sh
  source "${REPO_ROOT}/scripts/lib/cluster_benchmark.sh"
  cluster_benchmark::find_pods
  while read -r worker; do
    cpus="$(k8s::pod_cpus "${worker}" "${K8S_WORKER_CONTAINER}")" || cpus=0
    total=$((total + cpus))
  done <<<"${CLUSTER_WORKER_PODS}"
  cluster_benchmark::_check_image_versions "${CLUSTER_HEAD_POD}"
  sweep::_python run --target k8s --cluster-cpus "${total}" "$@"
}

sweep::main() {
  local target="$1" arg
  shift
  for arg in "$@"; do
    if [[ "${arg}" == --status ]]; then
      sweep::_python status "$@"
      return
    fi
  done
  if [[ "${target}" == local ]]; then
    sweep::_python run --target local "$@"
  else
    sweep::_run_cluster "$@"
  fi
}
