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
#   BASE_IMAGE        rayproject/ray:<pinned ray>-py311-cpu, with -aarch64 when Docker runs on arm64
#   PREFETCH_CIFAR10  1               0 = do not bake CIFAR-10 into the image (pods then download it)
#   FORCE_BUILD       0               1 = build and load even when every node has the tag

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/k8s.sh"

# k8s::image_ref stores images as docker.io/library/<name> on the nodes; crictl resolves the short name.
node_has_image() {
  minikube -p "${MINIKUBE_PROFILE}" ssh -n "$1" -- sudo crictl inspecti "$2" >/dev/null 2>&1
}

# The build context holds only what the Dockerfile copies. BuildKit would honour Dockerfile.dockerignore, the
# classic builder reads only <context>/.dockerignore: a copy of the repository root would then send .venv and
# results/ (gigabytes) to the daemon. The copy is filtered by the same .dockerignore either way.
stage_context() {
  local dir="$1"
  mkdir -p "${dir}/docker"
  cp "${REPO_ROOT}/docker/Dockerfile" "${REPO_ROOT}/docker/requirements.txt" "${dir}/docker/"
  cp "${REPO_ROOT}/docker/Dockerfile.dockerignore" "${dir}/.dockerignore"
  (cd "${REPO_ROOT}" && tar -cf - --exclude='__pycache__' --exclude='*.pyc' training) | tar -xf - -C "${dir}"
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

  local context
  context="$(mktemp -d "${TMPDIR:-/tmp}/raybench-build.XXXXXX")"
  # shellcheck disable=SC2064  # the folder is fixed now
  trap "rm -rf '${context}'" EXIT
  stage_context "${context}"
  local -a build=(docker build
    --file "${context}/docker/Dockerfile"
    --build-arg "BASE_IMAGE=$(k8s::base_image)"
    --build-arg "PREFETCH_CIFAR10=${PREFETCH_CIFAR10:-1}"
    --tag "${image}"
    "${context}")
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
