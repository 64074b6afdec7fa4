#!/usr/bin/env bash
# Builds the kit's image and loads it onto every node of the Minikube profile, then checks that each node has it
# and that all report the same image ID. Skips the build when every node already has the tag (the default tag
# changes whenever docker/ or training/ changes, so an unchanged tag means an unchanged image). There is no
# registry: the image goes to each node's container runtime, and the pods use imagePullPolicy IfNotPresent.
# The load goes through a file (`docker save -o`, then `minikube image load FILE`): `minikube image load IMAGE`
# reads the whole multi-GB image into memory first (go-containerregistry's buffered daemon reader, minikube
# issue 17785) and keeps a copy in ~/.minikube/cache. The file lands in TMPDIR while it is copied (several GB
# free needed), and the copy minikube leaves on each node (/var/lib/minikube/images/) is removed after the load.
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
  k8s::node_image_id "$1" "$2" >/dev/null
}

# The build context holds only what the Dockerfile copies. BuildKit would honour Dockerfile.dockerignore, the
# classic builder reads only <context>/.dockerignore: a copy of the repository root would then send .venv and
# results/ (gigabytes) to the daemon. The copy is filtered by the same .dockerignore either way.
stage_context() {
  local dir="$1"
  mkdir -p "${dir}/docker"
  cp "${REPO_ROOT}/docker/Dockerfile" "${REPO_ROOT}/docker/requirements.txt" "${REPO_ROOT}/docker/requirements-laptop.txt" \
    "${dir}/docker/"
  cp "${REPO_ROOT}/docker/Dockerfile.dockerignore" "${dir}/.dockerignore"
  (cd "${REPO_ROOT}" && tar -cf - --exclude='__pycache__' --exclude='*.pyc' training) | tar -xf - -C "${dir}"
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
  nodes="$(k8s::profile_nodes)" || nodes=""
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
  # Named as minikube names its cache files (':' -> '_'), so cleanup.sh finds either kind on the nodes.
  local tarball="${context}/${image//[:\/]/_}.tar" id rc=0
  log::info "Saving ${image} to ${tarball}"
  docker save -o "${tarball}" "${image}" ||
    die "${EXIT_INFRA}" "docker save failed (is there room in ${TMPDIR:-/tmp} for the image? set TMPDIR elsewhere)"
  log::info "Loading ${image} onto every node of profile ${MINIKUBE_PROFILE} from that file"
  # minikube exits 0 even when a node failed ("Live pushes are not considered a failure", machine.DoLoadImages);
  # the check below asks every node.
  minikube -p "${MINIKUBE_PROFILE}" image load "${tarball}" ||
    die "${EXIT_INFRA}" "minikube image load failed; check 'minikube -p ${MINIKUBE_PROFILE} status'"
  rm -f "${tarball}"
  # shellcheck disable=SC2086  # one node name per word
  id="$(k8s::nodes_image_id "${image}" ${nodes})" || rc=$?
  for node in ${nodes}; do k8s::remove_node_tarballs "${node}"; done
  case "${rc}" in
    0) log::info "Every node has ${image} (image ID ${id})" ;;
    2) die "${EXIT_INFRA}" "the nodes hold different images under ${image} (above); retry with FORCE_BUILD=1" ;;
    *) die "${EXIT_INFRA}" "a node still lacks ${image} after loading (above); retry with FORCE_BUILD=1" ;;
  esac
  printf '%s\n' "${image}"
}

main "$@"
