#!/usr/bin/env bash
# Builds the kit's image and loads it onto every node of the Minikube profile, then checks each node has it.
# Skips the build when every node already has the tag (the default tag changes whenever docker/ or training/
# changes, so an unchanged tag means an unchanged image). There is no registry: `minikube image load` copies the
# image into each node's container runtime, and the pods use imagePullPolicy IfNotPresent.
#
# Usage: docker/build-and-push.sh [--help]
#
# Settings:
#   MINIKUBE_PROFILE  raybench        the Minikube profile whose nodes get the image
#   IMAGE_NAME        raybench-kit    image repository name
#   IMAGE_TAG         ray<ray>-tf<tf>-<content hash>   never `latest`
#   BASE_IMAGE        rayproject/ray:<pinned ray>-py311-cpu
#   PREFETCH_CIFAR10  1               0 = do not bake CIFAR-10 into the image (pods then download it)
#   FORCE_BUILD       0               1 = build and load even when every node has the tag

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/k8s.sh"

# k8s::image_ref stores images as docker.io/library/<name> on the nodes; crictl resolves the short name.
node_has_image() {
  minikube -p "${MINIKUBE_PROFILE}" ssh -n "$1" -- sudo crictl inspecti "$2" >/dev/null 2>&1
}

profile_nodes() {
  minikube -p "${MINIKUBE_PROFILE}" node list | awk '{ print $1 }'
}

main() {
  [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]] && { usage_from_header "$0"; exit 0; }
  [[ $# -eq 0 ]] || die "${EXIT_BAD_INPUT}" "unknown argument '$1' (allowed: --help)"
  [[ "${PREFETCH_CIFAR10:-1}" =~ ^[01]$ ]] || die "${EXIT_BAD_INPUT}" "PREFETCH_CIFAR10 must be 0 or 1, got '${PREFETCH_CIFAR10}'"
  [[ "${FORCE_BUILD:-0}" =~ ^[01]$ ]] || die "${EXIT_BAD_INPUT}" "FORCE_BUILD must be 0 or 1, got '${FORCE_BUILD}'"
  [[ "${IMAGE_TAG:-}" != "latest" ]] || die "${EXIT_BAD_INPUT}" "IMAGE_TAG must be a version, not 'latest' (IfNotPresent would keep a stale image)"
  require_cmd docker "${K8S_INSTALL_DOCKER}"
  require_cmd minikube "${K8S_INSTALL_MINIKUBE}"
  docker info >/dev/null 2>&1 || die "${EXIT_MISSING_PREREQ}" "the Docker daemon does not answer; start Docker Desktop (or: sudo systemctl start docker)"

  local image nodes node missing=()
  image="$(k8s::image_ref)"
  nodes="$(profile_nodes)" || nodes=""
  [[ -n "${nodes}" ]] ||
    die "${EXIT_INFRA}" "Minikube profile '${MINIKUBE_PROFILE}' has no nodes; run scripts/setup-minikube.sh"
  for node in ${nodes}; do
    node_has_image "${node}" "${image}" || missing+=("${node}")
  done
  if [[ ${#missing[@]} -eq 0 && "${FORCE_BUILD:-0}" == "0" ]]; then
    log::info "Every node already has ${image}; nothing to build (FORCE_BUILD=1 rebuilds)"
    printf '%s\n' "${image}"
    return 0
  fi

  local -a build=(docker build
    --file "${REPO_ROOT}/docker/Dockerfile"
    --build-arg "BASE_IMAGE=${BASE_IMAGE:-rayproject/ray:$(k8s::pinned_version ray)-py311-cpu}"
    --build-arg "PREFETCH_CIFAR10=${PREFETCH_CIFAR10:-1}"
    --tag "${image}"
    "${REPO_ROOT}")
  log::info "Building ${image} (the first build downloads the ~2 GB Ray base image and the pinned packages)"
  "${build[@]}" || die "${EXIT_INFRA}" "docker build failed; its output is above"
  log::info "Loading ${image} onto every node of profile ${MINIKUBE_PROFILE}"
  minikube -p "${MINIKUBE_PROFILE}" image load "${image}" ||
    die "${EXIT_INFRA}" "minikube image load failed; check 'minikube -p ${MINIKUBE_PROFILE} status'"
  for node in ${nodes}; do
    node_has_image "${node}" "${image}" ||
      die "${EXIT_INFRA}" "node ${node} still lacks ${image} after loading; retry with FORCE_BUILD=1"
    log::info "Node ${node} has ${image}"
  done
  printf '%s\n' "${image}"
}

main "$@"
