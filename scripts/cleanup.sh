#!/usr/bin/env bash
# Removes what scripts/install-ray.sh made: the RayJob and RayCluster, the checkpoint store, the KubeRay
# operator (helm uninstall) and both namespaces. With --all it also deletes the Minikube profile. With --images it
# first removes the kit's images (IMAGE_NAME:*) from every node (minikube image rm), the multi-GB tarballs
# `minikube image load` left in each node's /var/lib/minikube/images/ (one per tag; minikube never removes
# them), and those in Minikube's cache on this machine (minikube cache delete; an older kit loaded by image name,
# which leaves one per tag there, and deleting the profile does not remove them).
# Works from any partial state: whatever is already gone is skipped, and an unreachable cluster only skips the
# Kubernetes steps. Never touches results/.
#
# Usage: scripts/cleanup.sh [--all] [--images] [--help]
#
# Settings:
#   MINIKUBE_PROFILE  raybench   profile deleted by --all
#   KUBE_CONTEXT      raybench (= MINIKUBE_PROFILE)
#   RAY_NAMESPACE     ray
#   RAY_CLUSTER_NAME  raybench
#   OPERATOR_NAMESPACE ray-system
#   IMAGE_NAME        raybench-kit   the images --images removes
#   DELETE_TIMEOUT_S  300        wait for the namespaces to go

source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s.sh"

cluster_reachable() {
  command -v kubectl >/dev/null 2>&1 && k8s::kubectl get --raw=/readyz --request-timeout=10s >/dev/null 2>&1
}

# Deleting the RayCluster first lets the operator, which is still running, remove its pods and Secret cleanly.
delete_ray_resources() {
  k8s::kubectl -n "${RAY_NAMESPACE}" delete rayjob raybench-training --ignore-not-found >/dev/null 2>&1 || true
  if k8s::kubectl get crd rayclusters.ray.io >/dev/null 2>&1; then
    log::info "Deleting RayCluster ${RAY_NAMESPACE}/${RAY_CLUSTER_NAME}"
    k8s::kubectl -n "${RAY_NAMESPACE}" delete raycluster "${RAY_CLUSTER_NAME}" --ignore-not-found \
      --timeout="${DELETE_TIMEOUT_S}s" ||
      log::warn "RayCluster ${RAY_CLUSTER_NAME} was not deleted in time; deleting its namespace removes it"
  fi
}

uninstall_operator() {
  if command -v helm >/dev/null 2>&1 && k8s::helm -n "${OPERATOR_NAMESPACE}" status kuberay-operator >/dev/null 2>&1; then
    log::info "Uninstalling the KubeRay operator from ${OPERATOR_NAMESPACE} (its CRDs stay, as Helm leaves them)"
    k8s::helm -n "${OPERATOR_NAMESPACE}" uninstall kuberay-operator --wait --timeout "${DELETE_TIMEOUT_S}s" ||
      log::warn "helm uninstall kuberay-operator failed; deleting namespace ${OPERATOR_NAMESPACE} removes what it left"
  fi
}

delete_namespaces() {
  local ns
  for ns in "${RAY_NAMESPACE}" "${OPERATOR_NAMESPACE}"; do
    log::info "Deleting namespace ${ns} (if present)"
    k8s::kubectl delete namespace "${ns}" --ignore-not-found --timeout="${DELETE_TIMEOUT_S}s" ||
      die "${EXIT_INFRA}" "namespace ${ns} was not deleted within ${DELETE_TIMEOUT_S}s; see: kubectl --context ${KUBE_CONTEXT} get namespace ${ns} -o yaml"
  done
}

delete_profile() {
  require_cmd minikube "${K8S_INSTALL_MINIKUBE}"
  if minikube -p "${MINIKUBE_PROFILE}" status >/dev/null 2>&1 ||
    minikube profile list 2>/dev/null | grep -qw -- "${MINIKUBE_PROFILE}"; then
    log::info "Deleting Minikube profile ${MINIKUBE_PROFILE}"
    minikube delete -p "${MINIKUBE_PROFILE}" || die "${EXIT_INFRA}" "minikube delete -p ${MINIKUBE_PROFILE} failed"
  else
    log::info "Minikube profile ${MINIKUBE_PROFILE} does not exist; nothing to delete"
  fi
}

# The kit's image references on the nodes ("docker.io/library/raybench-kit:<tag>" or without the prefix), plus
# the one this checkout builds (its cache tarball may outlive the nodes).
kit_images() {
  {
    minikube -p "${MINIKUBE_PROFILE}" image ls --format short 2>/dev/null |
      sed -n "s#^\(docker\.io/library/\)\{0,1\}\(${IMAGE_NAME}:[^[:space:]]*\)\$#\2#p" || true
    k8s::image_ref
  } | sort -u
}

delete_images() {
  require_cmd minikube "${K8S_INSTALL_MINIKUBE}"
  local image on_nodes=0
  while IFS= read -r image; do
    [[ -n "${image}" ]] || continue
    if minikube -p "${MINIKUBE_PROFILE}" image rm "${image}" >/dev/null 2>&1; then
      on_nodes=$((on_nodes + 1))
    fi
    # Fails when no tarball of that tag is cached, which is fine.
    minikube cache delete "${image}" >/dev/null 2>&1 || true
  done < <(kit_images)
  local node nodes
  nodes="$(k8s::profile_nodes 2>/dev/null)" || nodes=""
  for node in ${nodes}; do k8s::remove_node_tarballs "${node}"; done
  log::info "Removed ${on_nodes} ${IMAGE_NAME} image(s) from the nodes, their tarballs from the nodes' /var/lib/minikube/images/ and from Minikube's cache"
}

main() {
  local all=0 images=0 arg
  for arg in "$@"; do
    case "${arg}" in
      --help | -h) usage_from_header "$0"; exit 0 ;;
      --all) all=1 ;;
      --images) images=1 ;;
      *) die "${EXIT_BAD_INPUT}" "unknown argument '${arg}' (allowed: --all, --images, --help)" ;;
    esac
  done
  DELETE_TIMEOUT_S="${DELETE_TIMEOUT_S:-300}"
  require_positive_int DELETE_TIMEOUT_S "${DELETE_TIMEOUT_S}"
  # Before the profile goes: its nodes are where the tags are listed.
  ((images == 0)) || delete_images

  if cluster_reachable; then
    delete_ray_resources
    uninstall_operator
    delete_namespaces
  elif ((all)); then
    log::info "Cluster of context ${KUBE_CONTEXT} is not reachable; deleting the profile removes everything in it"
  else
    log::warn "cluster of context ${KUBE_CONTEXT} is not reachable; nothing to remove from it (start it with scripts/setup-minikube.sh, or use --all)"
  fi
  ((all == 0)) || delete_profile
  ((images == 1)) || log::info "The kit's images stay on the nodes and in Minikube's cache (several GB each); scripts/cleanup.sh --images removes them"
  log::info "Cleanup done; results/ was left as it is"
}

main "$@"
