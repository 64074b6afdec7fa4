#!/usr/bin/env bash
# A Ray cluster on this machine shaped like the Kubernetes one: a head node that schedules no training
# (--num-cpus=0) and one worker node per Ray Train worker, each offering its CPU share.
#
#   local_cluster::start NUM_WORKER_NODES CPUS_PER_NODE STATE_DIR   exports RAY_ADDRESS, RAY_AUTH_MODE and
#                                                                   RAY_AUTH_TOKEN_PATH for the processes that follow
#   local_cluster::exported_env                                     prints what start exported (NAME=VALUE lines),
#                                                                   for a caller in another process (Python)
#   local_cluster::stop STATE_DIR                                   stops only the nodes recorded in STATE_DIR
#
# Needs .venv (scripts/lib/venv.sh) and common.sh. Every node gets its own ports: nodes on one machine that share
# Ray's defaults fail with "bind: Address already in use". Nodes start one after the other for the same reason.
# Token authentication is set explicitly with a fresh token in STATE_DIR, never from ~/.ray.

# The table's defaults (LOCAL_RAY_PIN_CPUS: an experiment, off; LOCAL_RAY_DASHBOARD: off) where the environment
# leaves them unset; the rows say why.
settings::export_defaults --programs local LOCAL_RAY_PORT LOCAL_RAY_PIN_CPUS LOCAL_RAY_DASHBOARD DASHBOARD_LOCAL_PORT
LOCAL_RAY_START_TIMEOUT="${LOCAL_RAY_START_TIMEOUT:-90}"
# LOCAL_RAY_PIN_CPUS=1: the threads that run TensorFlow's ops in each worker node's Ray workers are
# held to CPUs of their own (KIT_WORKER_CPUS in the node's environment, which its workers inherit;
# training/core/tf_env.py applies it), as a pod is held to its CPU limit. Off because in some 1-worker runs
# model.fit's exit then stalled for 17-34 s, and at the benchmark's batch the gain was within the spread.
# LOCAL_RAY_DASHBOARD=1: the head also runs the Ray Dashboard, bound to 127.0.0.1:DASHBOARD_LOCAL_PORT only.

local_cluster::_cpu_list() { # INDEX CPUS: the CPU ids worker node INDEX (1-based) gets, or nothing when they run out
  "${REPO_ROOT}/.venv/bin/python" -c '
import os, sys
index, cpus = int(sys.argv[1]), int(sys.argv[2])
mine = sorted(os.sched_getaffinity(0))[(index - 1) * cpus:index * cpus]
print(",".join(map(str, mine)) if len(mine) == cpus else "")' "$1" "$2"
}

local_cluster::_node_args() { # INDEX: distinct port block per node (head is 0)
  local base=$((LOCAL_RAY_PORT + 10 + $1 * 10)) min_worker=$((20000 + $1 * 1000))
  printf '%s\n' "--node-manager-port=${base}" "--object-manager-port=$((base + 1))" \
    "--metrics-export-port=$((base + 2))" "--dashboard-agent-listen-port=$((base + 3))" \
    "--dashboard-agent-grpc-port=$((base + 4))" "--runtime-env-agent-port=$((base + 5))" \
    "--min-worker-port=${min_worker}" "--max-worker-port=$((min_worker + 999))"
}

local_cluster::_start_node() { # STATE_DIR NAME INDEX CPU_LIST ARGS...: starts one `ray start --block` whose
  # workers train on CPU_LIST (anywhere when it is empty), and waits for it
  local state_dir="$1" name="$2" index="$3" cpu_list="$4"
  shift 4
  local log="${state_dir}/${name}.log" node_args
  mapfile -t node_args < <(local_cluster::_node_args "${index}")
  # setsid: each node in its own process group, so stop can take down everything the node started.
  # Through training.distributed.local_node: Ray's own `ray start`, held to 127.0.0.1 (that module says why).
  KIT_WORKER_CPUS="${cpu_list}" setsid "${REPO_ROOT}/.venv/bin/python" -m training.distributed.local_node \
    start --block --disable-usage-stats \
    "${node_args[@]}" "$@" >"${log}" 2>&1 &
  echo "$!" >>"${state_dir}/pids"
  # stop() owns the node from here; without disown bash reports its end ("Killed ...") in the middle of output.
  disown "$!"
  if ! wait_until "${LOCAL_RAY_START_TIMEOUT}" 1 "Ray ${name} node" grep -q "block forever" "${log}"; then
    tail -n 20 "${log}" >&2
    return 1
  fi
}

local_cluster::_dashboard_on() { [[ "${LOCAL_RAY_DASHBOARD}" =~ ^(1|true|yes)$ ]]; }

local_cluster::_dashboard_args() { # the head's dashboard arguments, one per line
  if local_cluster::_dashboard_on; then
    printf '%s\n' --include-dashboard=true --dashboard-host=127.0.0.1 "--dashboard-port=${DASHBOARD_LOCAL_PORT}"
  else
    echo --include-dashboard=false
  fi
}

local_cluster::_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Which state dir holds the cluster on this port: a run killed with SIGKILL cannot stop its nodes, and the
# next run finds them through this file and stops them (they are the kit's own, recorded by PID).
local_cluster::_marker() { echo "${TMPDIR:-/tmp}/kit-ray-port-${LOCAL_RAY_PORT}.state"; }

local_cluster::_stop_leftover() {
  local marker old
  marker="$(local_cluster::_marker)"
  [[ -f "${marker}" ]] || return 0
  old="$(cat "${marker}")"
  if [[ -f "${old}/pids" ]]; then
    log::warn "Stopping a local Ray cluster left running by an earlier, interrupted kit run (${old})"
    local_cluster::stop "${old}"
  fi
  rm -f "${marker}"
}

local_cluster::start() {
  local workers="$1" cpus="$2" state_dir="$3" i
  require_positive_int NUM_WORKERS "${workers}"
  require_positive_int CPUS_PER_WORKER "${cpus}"
  mkdir -p "${state_dir}"
  chmod 700 "${state_dir}"
  local_cluster::_stop_leftover
  local_cluster::_port_free "${LOCAL_RAY_PORT}" ||
    die "${EXIT_INFRA}" "port ${LOCAL_RAY_PORT} is in use (another Ray cluster?); stop it or set LOCAL_RAY_PORT"
  ! local_cluster::_dashboard_on || local_cluster::_port_free "${DASHBOARD_LOCAL_PORT}" ||
    die "${EXIT_INFRA}" "DASHBOARD_LOCAL_PORT ${DASHBOARD_LOCAL_PORT} is in use (another dashboard or a port-forward?); stop it or set DASHBOARD_LOCAL_PORT"
  echo "${state_dir}" >"$(local_cluster::_marker)"
  : >"${state_dir}/pids"
  (umask 077 && "${REPO_ROOT}/.venv/bin/python" -c 'import secrets; print(secrets.token_hex(32))' \
    >"${state_dir}/auth_token")
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="${state_dir}/auth_token"
  export RAY_ADDRESS="127.0.0.1:${LOCAL_RAY_PORT}"
  # Every process of this cluster, the driver included, keeps its loopback address, and the nodes run this
  # checkout with the workers' environment, so a job ships nothing (training/distributed/local_node.py).
  export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 KIT_RAY_NODES_CODE="${REPO_ROOT}"
  # Ray's sockets live under its temp dir and a Unix socket path may not exceed 107 bytes: a short folder of
  # its own, whatever the length of STATE_DIR (logs stay there after the run, for reading).
  local ray_tmp
  ray_tmp="$(mktemp -d /tmp/kit-ray-tmp.XXXXXX)"
  echo "${ray_tmp}" >"${state_dir}/ray_tmp"
  local dashboard_args head_path="${PYTHONPATH:-}"
  mapfile -t dashboard_args < <(local_cluster::_dashboard_args)
  if local_cluster::_dashboard_on; then
    venv::ensure_dashboard
    # The head alone sees the dashboard's packages; the worker nodes' agents stay minimal (venv.sh says why).
    head_path="$(venv::dashboard_dir)${head_path:+:${head_path}}"
  fi
  log::info "Starting a local Ray cluster: 1 head (no training) + ${workers} worker node(s) x ${cpus} CPU"
  PYTHONPATH="${head_path}" local_cluster::_start_node "${state_dir}" head 0 "" --head --num-cpus=0 --node-ip-address=127.0.0.1 \
    --port="${LOCAL_RAY_PORT}" --ray-client-server-port="$((LOCAL_RAY_PORT + 1))" \
    "${dashboard_args[@]}" --temp-dir="${ray_tmp}" ||
    die "${EXIT_INFRA}" "the Ray head node did not start; its log is ${state_dir}/head.log"
  if local_cluster::_dashboard_on; then
    log::info "Ray Dashboard: http://127.0.0.1:${DASHBOARD_LOCAL_PORT} until the run ends (this machine only); it asks for the cluster's token: cat ${state_dir}/auth_token"
  fi
  local cpu_list pinned=""
  for ((i = 1; i <= workers; i++)); do
    cpu_list=""
    [[ "${LOCAL_RAY_PIN_CPUS}" != 1 ]] || cpu_list="$(local_cluster::_cpu_list "${i}" "${cpus}")"
    [[ -z "${cpu_list}" ]] || pinned+=" worker${i}:${cpu_list}"
    # One log monitor per host (Ray's own rule): the head's. Every node here shares one session folder, and
    # each extra monitor rescanned it ten times a second on the CPUs the training needs.
    local_cluster::_start_node "${state_dir}" "worker${i}" "${i}" "${cpu_list}" --address="${RAY_ADDRESS}" \
      --num-cpus="${cpus}" --node-ip-address=127.0.0.1 --include-log-monitor=false ||
      die "${EXIT_INFRA}" "Ray worker node ${i} did not join; its log is ${state_dir}/worker${i}.log"
  done
  [[ -z "${pinned}" ]] || log::info "TensorFlow op threads of each worker node held to CPUs:${pinned}"
  log::info "Local Ray cluster up at ${RAY_ADDRESS} (token auth; state in ${state_dir})"
}

local_cluster::exported_env() {
  env | grep -E '^(RAY_|KIT_RAY_)'
}

# Stops what start recorded, workers before the head, then SIGKILL to each node's process group (the raylet,
# agents and workers under `ray start --block`) so nothing outlives it.
local_cluster::stop() {
  local state_dir="$1" pid pids=() waited
  [[ -f "${state_dir}/pids" ]] || return 0
  mapfile -t pids < <(tac "${state_dir}/pids")
  # SIGTERM to `ray start --block` alone: it stops its own node cleanly (a SIGTERM to the whole group races with
  # it and can leave it waiting forever); the group SIGKILL below takes whatever is left.
  for pid in "${pids[@]}"; do
    kill -TERM "${pid}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for ((waited = 0; waited < ${LOCAL_RAY_STOP_TIMEOUT:-15} * 2; waited++)); do
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-${pid}" 2>/dev/null || true
  done
  # SIGKILL is delivered asynchronously: the next cluster on these ports must not start before the old processes,
  # and with them their listening sockets, are gone.
  for pid in "${pids[@]}"; do
    for ((waited = 0; waited < 20; waited++)); do
      kill -0 -- "-${pid}" 2>/dev/null || break
      sleep 0.25
    done
  done
  rm -f "${state_dir}/pids"
  if [[ "$(cat "$(local_cluster::_marker)" 2>/dev/null)" == "${state_dir}" ]]; then rm -f "$(local_cluster::_marker)"; fi
  log::info "Stopped the local Ray cluster"
}
