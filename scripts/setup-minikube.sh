#!/usr/bin/env bash
# Creates (or reuses) the Minikube cluster the benchmark runs on: MINIKUBE_NODES nodes, each with MINIKUBE_CPUS
# CPUs and MINIKUBE_MEMORY of memory, on the docker driver; enables metrics-server; waits until every node is
# Ready; checks that a pod on the first node reaches a pod on the last one; prints the nodes.
# Safe to run twice: a running profile is reused, a stopped one is started again.
#
# Usage: scripts/setup-minikube.sh [--help]
#
# Settings:
#   MINIKUBE_PROFILE  raybench   profile name (also the kubectl context)
#   MINIKUBE_NODES    2          nodes
#   MINIKUBE_CPUS     4          CPUs per node (each node can use this many of the host's CPUs)
#   MINIKUBE_MEMORY   8192       MiB per node
#   NODE_READY_TIMEOUT_S 300     how long to wait for the nodes and the connectivity check
#   NETCHECK_IMAGE    busybox:1.37   image of the two connectivity-check pods

source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s.sh"

readonly NETCHECK_NAMESPACE="raybench-netcheck"

check_settings() {
  MINIKUBE_NODES="${MINIKUBE_NODES:-2}"
  MINIKUBE_CPUS="${MINIKUBE_CPUS:-4}"
  MINIKUBE_MEMORY="${MINIKUBE_MEMORY:-8192}"
  NODE_READY_TIMEOUT_S="${NODE_READY_TIMEOUT_S:-300}"
  require_positive_int MINIKUBE_NODES "${MINIKUBE_NODES}"
  require_positive_int MINIKUBE_CPUS "${MINIKUBE_CPUS}"
  require_positive_int MINIKUBE_MEMORY "${MINIKUBE_MEMORY}"
  require_positive_int NODE_READY_TIMEOUT_S "${NODE_READY_TIMEOUT_S}"
  ((MINIKUBE_NODES >= 2)) || die "${EXIT_BAD_INPUT}" "MINIKUBE_NODES must be at least 2 (the benchmark spreads workers over nodes), got ${MINIKUBE_NODES}"
  ((MINIKUBE_CPUS >= 2)) || die "${EXIT_BAD_INPUT}" "MINIKUBE_CPUS must be at least 2 (minikube's minimum), got ${MINIKUBE_CPUS}"
  ((MINIKUBE_MEMORY >= 4096)) || die "${EXIT_BAD_INPUT}" "MINIKUBE_MEMORY must be at least 4096 MiB (a worker pod alone asks 4 GiB), got ${MINIKUBE_MEMORY}"
}

check_prerequisites() {
  require_cmd docker "${K8S_INSTALL_DOCKER}"
  require_cmd minikube "${K8S_INSTALL_MINIKUBE}"
  require_cmd kubectl "${K8S_INSTALL_KUBECTL}"
  docker info >/dev/null 2>&1 ||
    die "${EXIT_MISSING_PREREQ}" "the Docker daemon does not answer; start Docker Desktop (or: sudo systemctl start docker) and rerun"
}

# Every docker-driver node is a container on this host sharing its CPUs and memory: each node must fit in what
# Docker has, and all nodes together can only use more than that by overcommitting.
check_host_capacity() {
  local host_cpus host_mib
  host_cpus="$(docker info --format '{{.NCPU}}')"
  host_mib="$(($(docker info --format '{{.MemTotal}}') / 1024 / 1024))"
  ((MINIKUBE_CPUS <= host_cpus)) ||
    die "${EXIT_MISSING_PREREQ}" "MINIKUBE_CPUS=${MINIKUBE_CPUS} but Docker has only ${host_cpus} CPUs; lower MINIKUBE_CPUS or give Docker more CPUs"
  ((MINIKUBE_MEMORY <= host_mib)) ||
    die "${EXIT_MISSING_PREREQ}" "MINIKUBE_MEMORY=${MINIKUBE_MEMORY} MiB but Docker has only ${host_mib} MiB; lower MINIKUBE_MEMORY or give Docker more memory"
  if ((MINIKUBE_NODES * MINIKUBE_MEMORY > host_mib)); then
    log::warn "${MINIKUBE_NODES} nodes x ${MINIKUBE_MEMORY} MiB is more than Docker's ${host_mib} MiB; the nodes share it, so a full cluster may be OOM-killed"
  fi
  log::info "Docker has ${host_cpus} CPUs and ${host_mib} MiB; the profile asks ${MINIKUBE_NODES} x (${MINIKUBE_CPUS} CPUs, ${MINIKUBE_MEMORY} MiB)"
}

start_or_reuse_profile() {
  local host_state
  host_state="$(minikube -p "${MINIKUBE_PROFILE}" status --format '{{.Host}}' 2>/dev/null | head -n 1)" || true
  if [[ "${host_state}" == "Running" ]]; then
    log::info "Minikube profile ${MINIKUBE_PROFILE} is already running; reusing it"
    return 0
  fi
  local -a start=(minikube start
    --profile "${MINIKUBE_PROFILE}"
    --driver=docker
    --nodes "${MINIKUBE_NODES}"
    --cpus "${MINIKUBE_CPUS}"
    --memory "${MINIKUBE_MEMORY}")
  if [[ -n "${host_state}" ]]; then
    # An existing profile keeps the size it was created with; minikube ignores the sizing flags on a restart.
    log::info "Starting the existing (${host_state}) Minikube profile ${MINIKUBE_PROFILE}"
  else
    log::info "Creating Minikube profile ${MINIKUBE_PROFILE}: ${MINIKUBE_NODES} nodes x ${MINIKUBE_CPUS} CPUs x ${MINIKUBE_MEMORY} MiB (a few minutes)"
  fi
  "${start[@]}" || die "${EXIT_INFRA}" "minikube start failed; its output is above (try: minikube delete -p ${MINIKUBE_PROFILE}, then rerun)"
}

nodes_ready() {
  local ready
  ready="$(k8s::kubectl get nodes \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')" ||
    return 1
  ((ready >= MINIKUBE_NODES))
}

netcheck_pod() {
  local name="$1" node="$2" command="$3"
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NETCHECK_NAMESPACE}
spec:
  nodeName: ${node}
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: main
    image: ${NETCHECK_IMAGE:-busybox:1.37}
    command: [sh, -c, '${command}']
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 10m, memory: 16Mi}}
YAML
}

delete_netcheck() {
  k8s::kubectl delete namespace "${NETCHECK_NAMESPACE}" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}

server_ip() {
  k8s::kubectl -n "${NETCHECK_NAMESPACE}" get pod server -o jsonpath='{.status.podIP}' | grep -q .
}

client_succeeded() {
  [[ "$(k8s::kubectl -n "${NETCHECK_NAMESPACE}" get pod client -o jsonpath='{.status.phase}')" == "Succeeded" ]]
}

# Ray's workers talk to each other pod to pod across nodes; a broken CNI would only show up mid-training.
check_cross_node_network() {
  local first last ip
  first="$(k8s::kubectl get nodes -o jsonpath='{.items[0].metadata.name}')"
  last="$(k8s::kubectl get nodes -o jsonpath='{.items[-1:].metadata.name}')"
  delete_netcheck
  trap delete_netcheck EXIT
  k8s::kubectl create namespace "${NETCHECK_NAMESPACE}" --dry-run=client -o yaml | k8s::kubectl apply -f - >/dev/null
  netcheck_pod server "${first}" 'echo ok > /tmp/ok && exec httpd -f -p 8080 -h /tmp' | k8s::kubectl apply -f - >/dev/null
  wait_until "${NODE_READY_TIMEOUT_S}" 2 "the check pod on ${first} to get an IP" server_ip ||
    die "${EXIT_INFRA}" "the network check pod on ${first} never started; see: kubectl -n ${NETCHECK_NAMESPACE} describe pod server"
  ip="$(k8s::kubectl -n "${NETCHECK_NAMESPACE}" get pod server -o jsonpath='{.status.podIP}')"
  netcheck_pod client "${last}" "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -T 3 -O - http://${ip}:8080/ok && exit 0; sleep 3; done; exit 1" |
    k8s::kubectl apply -f - >/dev/null
  wait_until "${NODE_READY_TIMEOUT_S}" 2 "a pod on ${last} to reach a pod on ${first} (${ip})" client_succeeded ||
    die "${EXIT_INFRA}" "a pod on ${last} cannot reach a pod on ${first}; the pod network between nodes is broken (try: minikube delete -p ${MINIKUBE_PROFILE} and rerun)"
  log::info "Pod network OK: ${last} reaches ${first}"
}

main() {
  [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]] && { usage_from_header "$0"; exit 0; }
  [[ $# -eq 0 ]] || die "${EXIT_BAD_INPUT}" "unknown argument '$1' (allowed: --help)"
  check_settings
  check_prerequisites
  check_host_capacity
  start_or_reuse_profile
  minikube -p "${MINIKUBE_PROFILE}" addons enable metrics-server >/dev/null ||
    log::warn "could not enable metrics-server; 'kubectl top' will not work (the benchmark does not need it)"
  wait_until "${NODE_READY_TIMEOUT_S}" 5 "${MINIKUBE_NODES} Ready nodes" nodes_ready ||
    die "${EXIT_INFRA}" "not all nodes became Ready; see: kubectl --context ${KUBE_CONTEXT} describe nodes"
  check_cross_node_network
  k8s::kubectl get nodes -o wide
}

main "$@"
