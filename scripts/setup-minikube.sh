#!/usr/bin/env bash
# Creates (or reuses) the Minikube cluster the benchmark runs on: MINIKUBE_NODES nodes, each with MINIKUBE_CPUS
# CPUs and MINIKUBE_MEMORY of memory, on the docker driver with Docker as the nodes' container runtime (the image
# checks read the nodes through cri-dockerd; minikube's own default is moving to containerd); enables
# metrics-server; waits until every node is Ready; checks that a pod on the first node reaches a pod on the last
# one, by its IP and through a Service's DNS name (as Ray's workers reach the head); prints the nodes. Unset
# sizes are chosen from what CLUSTER_PROFILE's pods request, capped by what Docker has (a 16 GB Mac's Docker
# Desktop gives Docker about 7.8 GB), and said. Before it starts
# anything it says whether the RayCluster of CLUSTER_PROFILE fits these nodes and Docker (training/cluster/sizing.py):
# with the docker driver every node advertises Docker's CPUs and memory to the scheduler, whatever
# MINIKUBE_CPUS / MINIKUBE_MEMORY say, and those only cap what each node's container may use.
# Safe to run twice: a running profile is reused, a stopped one is started again (the state comes from
# `minikube status -o json` and its exit code, never from its messages).
#
# Usage: scripts/setup-minikube.sh [--help]
#
# Settings:
#   MINIKUBE_PROFILE  raybench   profile name (also the kubectl context)
#   MINIKUBE_NODES    (the profile's: 2)  nodes
#   MINIKUBE_CPUS     (chosen)   CPUs per node (each node can use this many of the host's CPUs); unset: what
#                                the busiest node of CLUSTER_PROFILE requests (default 5, small 3), at most Docker's
#   MINIKUBE_MEMORY   (chosen)   MiB per node; unset: likewise (default 8192, small 5120), at most Docker's
#   CLUSTER_PROFILE   default    the pod sizes install-ray.sh will use (default, small), for the fit check
#   NODE_READY_TIMEOUT_S 300     how long to wait for the nodes and the connectivity check
#   NETCHECK_IMAGE    busybox:1.37   image of the two connectivity-check pods

source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s.sh"

readonly NETCHECK_NAMESPACE="raybench-netcheck" NETCHECK_SERVICE="server"
# The client's exit code when it reached the server's IP but not the Service's DNS name.
readonly NETCHECK_DNS_FAILED=3

check_settings() {
  # The profile's pods and nodes, as training/cluster plans them; an unknown CLUSTER_PROFILE stops here.
  k8s::load_profile
  MINIKUBE_NODES="${MINIKUBE_NODES:-$(k8s::profile_value nodes)}"
  NODE_READY_TIMEOUT_S="${NODE_READY_TIMEOUT_S:-300}"
  require_positive_int MINIKUBE_NODES "${MINIKUBE_NODES}"
  require_positive_int NODE_READY_TIMEOUT_S "${NODE_READY_TIMEOUT_S}"
  ((MINIKUBE_NODES >= 2)) || die "${EXIT_BAD_INPUT}" "MINIKUBE_NODES must be at least 2 (the benchmark spreads workers over nodes), got ${MINIKUBE_NODES}"
  if [[ -n "${MINIKUBE_CPUS:-}" ]]; then
    require_positive_int MINIKUBE_CPUS "${MINIKUBE_CPUS}"
    ((MINIKUBE_CPUS >= 2)) || die "${EXIT_BAD_INPUT}" "MINIKUBE_CPUS must be at least 2 (minikube's minimum), got ${MINIKUBE_CPUS}"
  fi
  if [[ -n "${MINIKUBE_MEMORY:-}" ]]; then
    require_positive_int MINIKUBE_MEMORY "${MINIKUBE_MEMORY}"
    ((MINIKUBE_MEMORY >= 2048)) || die "${EXIT_BAD_INPUT}" "MINIKUBE_MEMORY must be at least 2048 MiB (a small-profile worker pod asks 2 GiB), got ${MINIKUBE_MEMORY}"
  fi
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
  local host_cpus host_mib defaults chosen line
  host_cpus="$(docker info --format '{{.NCPU}}')"
  host_mib="$(($(docker info --format '{{.MemTotal}}') / 1024 / 1024))"
  HOST_CPUS="${host_cpus}" HOST_MIB="${host_mib}"
  # Sizes the user left unset: what the profile's pods need, capped by what Docker has.
  if [[ -z "${MINIKUBE_CPUS:-}" || -z "${MINIKUBE_MEMORY:-}" ]]; then
    defaults="$(k8s::plan defaults --profile "${CLUSTER_PROFILE}" --nodes "${MINIKUBE_NODES}" \
      --host-cpus "${host_cpus}" --host-memory-mib "${host_mib}")" || exit "${EXIT_BAD_INPUT}"
    chosen="$(head -n 1 <<<"${defaults}")"
    MINIKUBE_CPUS="${MINIKUBE_CPUS:-${chosen% *}}" MINIKUBE_MEMORY="${MINIKUBE_MEMORY:-${chosen#* }}"
    while IFS= read -r line; do log::info "${line}"; done < <(tail -n +2 <<<"${defaults}")
  fi
  ((MINIKUBE_CPUS <= host_cpus)) ||
    die "${EXIT_MISSING_PREREQ}" "MINIKUBE_CPUS=${MINIKUBE_CPUS} but Docker has only ${host_cpus} CPUs; lower MINIKUBE_CPUS or give Docker more CPUs"
  ((MINIKUBE_MEMORY <= host_mib)) ||
    die "${EXIT_MISSING_PREREQ}" "MINIKUBE_MEMORY=${MINIKUBE_MEMORY} MiB but Docker has only ${host_mib} MiB; lower MINIKUBE_MEMORY or give Docker more memory"
  if ((MINIKUBE_NODES * MINIKUBE_MEMORY > host_mib)); then
    log::info "${MINIKUBE_NODES} nodes x ${MINIKUBE_MEMORY} MiB adds up to more than Docker's ${host_mib} MiB: each is only a cap on one node's container, and the nodes share Docker's memory; the fit below says whether the pods' requests fit it"
  fi
  log::info "Docker has ${host_cpus} CPUs and ${host_mib} MiB; the profile asks ${MINIKUBE_NODES} x (${MINIKUBE_CPUS} CPUs, ${MINIKUBE_MEMORY} MiB)"
}

# Placed as the scheduler would see it: requests of the kit's pods and of Minikube's own against each node.
check_fit() {
  local plan rc=0 line
  plan="$(k8s::plan fit --profile "${CLUSTER_PROFILE}" --nodes "${MINIKUBE_NODES}" --node-cpus "${MINIKUBE_CPUS}" \
    --node-memory-mib "${MINIKUBE_MEMORY}" --host-cpus "${HOST_CPUS}" --host-memory-mib "${HOST_MIB}")" || rc=$?
  while IFS= read -r line; do log::info "Fit (CLUSTER_PROFILE=${CLUSTER_PROFILE}): ${line}"; done <<<"${plan}"
  if ((rc != 0)); then
    log::warn "the RayCluster of CLUSTER_PROFILE=${CLUSTER_PROFILE} does not fit what Docker has; a pod would stay Pending. Give Docker more CPUs/memory, or use CLUSTER_PROFILE=small for install-ray.sh (table: python3 -m training.cluster table)"
  fi
}

# PROFILE_STATE: missing, running or stopped; PROFILE_NODES: nodes minikube reports; PROFILE_HOSTS: their hosts.
# `minikube status` exits 85 (reason.ExGuestNotFound) for a missing profile, printing a message even with
# -o json (pkg/minikube/mustload/mustload.go Partial); else -o json prints cluster.Status, one object for one
# node and a list for more, and the exit code has a bit set for a host, cluster or kubeconfig that is not up
# (cmd/minikube/cmd/status.go statusJSON, exitCode; minikube v1.32-v1.38).
read_profile_state() {
  local out rc=0 parsed
  out="$(minikube -p "${MINIKUBE_PROFILE}" status -o json 2>/dev/null)" || rc=$?
  if ((rc == 85)); then
    PROFILE_STATE=missing PROFILE_NODES=0 PROFILE_HOSTS=""
    return 0
  fi
  parsed="$(python3 -c '
import json, sys
doc = json.loads(sys.stdin.read())
nodes = doc if isinstance(doc, list) else [doc]
print(len(nodes), ",".join(str(n["Host"]) for n in nodes))' <<<"${out}" 2>/dev/null)" ||
    die "${EXIT_INFRA}" "minikube status -p ${MINIKUBE_PROFILE} -o json failed (exit ${rc}) without a status; run it yourself to see why"
  PROFILE_NODES="${parsed%% *}" PROFILE_HOSTS="${parsed#* }"
  if ((rc == 0)); then PROFILE_STATE=running; else PROFILE_STATE=stopped; fi
}

start_or_reuse_profile() {
  read_profile_state
  if [[ "${PROFILE_STATE}" != missing ]] && ((PROFILE_NODES != MINIKUBE_NODES)); then
    log::warn "profile ${MINIKUBE_PROFILE} has ${PROFILE_NODES} node(s), not MINIKUBE_NODES=${MINIKUBE_NODES}; the sizing settings apply only to a new profile (scripts/cleanup.sh --all, then rerun)"
  fi
  if [[ "${PROFILE_STATE}" == running ]]; then
    log::info "Minikube profile ${MINIKUBE_PROFILE} is already running; reusing it"
    return 0
  fi
  local -a start=(minikube start
    --profile "${MINIKUBE_PROFILE}"
    --driver=docker
    --container-runtime=docker
    --nodes "${MINIKUBE_NODES}"
    --cpus "${MINIKUBE_CPUS}"
    --memory "${MINIKUBE_MEMORY}")
  if [[ "${PROFILE_STATE}" == stopped ]]; then
    # An existing profile keeps the size it was created with; minikube ignores the sizing flags on a restart.
    log::info "Starting the existing Minikube profile ${MINIKUBE_PROFILE} (node hosts: ${PROFILE_HOSTS})"
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
  labels: {app.kubernetes.io/name: netcheck-${name}}
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

# The Service in front of the server pod: Ray's workers reach the head through its Service's DNS name
# (<cluster>-head-svc.<namespace>.svc.cluster.local), which needs CoreDNS and kube-proxy as well as the pod network.
netcheck_service() {
  cat <<YAML
apiVersion: v1
kind: Service
metadata:
  name: ${NETCHECK_SERVICE}
  namespace: ${NETCHECK_NAMESPACE}
spec:
  selector: {app.kubernetes.io/name: netcheck-server}
  ports:
  - {port: 8080, targetPort: 8080}
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
  netcheck_service | k8s::kubectl apply -f - >/dev/null
  local dns="${NETCHECK_SERVICE}.${NETCHECK_NAMESPACE}.svc.cluster.local" try='for i in 1 2 3 4 5 6 7 8 9 10; do'
  netcheck_pod client "${last}" "${try} wget -q -T 3 -O - http://${ip}:8080/ok && break; [ \$i = 10 ] && exit 1; sleep 3; done; ${try} wget -q -T 3 -O - http://${dns}:8080/ok && exit 0; sleep 3; done; exit ${NETCHECK_DNS_FAILED}" |
    k8s::kubectl apply -f - >/dev/null
  if ! wait_until "${NODE_READY_TIMEOUT_S}" 2 "a pod on ${last} to reach a pod on ${first} (${ip}, then ${dns})" client_succeeded; then
    [[ "$(k8s::kubectl -n "${NETCHECK_NAMESPACE}" get pod client \
      -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}' 2>/dev/null)" != "${NETCHECK_DNS_FAILED}" ]] ||
      die "${EXIT_INFRA}" "a pod on ${last} reaches a pod on ${first} by its IP but not through the Service name ${dns}; Ray's workers find the head that way (check CoreDNS: kubectl --context ${KUBE_CONTEXT} -n kube-system get pods; or: minikube delete -p ${MINIKUBE_PROFILE} and rerun)"
    die "${EXIT_INFRA}" "a pod on ${last} cannot reach a pod on ${first}; the pod network between nodes is broken (try: minikube delete -p ${MINIKUBE_PROFILE} and rerun)"
  fi
  log::info "Pod network OK: ${last} reaches ${first} by pod IP and through the Service name ${dns}"
}

main() {
  [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]] && { usage_from_header "$0"; exit 0; }
  [[ $# -eq 0 ]] || die "${EXIT_BAD_INPUT}" "unknown argument '$1' (allowed: --help)"
  check_settings
  check_prerequisites
  check_host_capacity
  check_fit
  start_or_reuse_profile
  minikube -p "${MINIKUBE_PROFILE}" addons enable metrics-server >/dev/null ||
    log::warn "could not enable metrics-server; 'kubectl top' will not work (the benchmark does not need it)"
  wait_until "${NODE_READY_TIMEOUT_S}" 5 "${MINIKUBE_NODES} Ready nodes" nodes_ready ||
    die "${EXIT_INFRA}" "not all nodes became Ready; see: kubectl --context ${KUBE_CONTEXT} describe nodes"
  check_cross_node_network
  k8s::kubectl get nodes -o wide
}

main "$@"
