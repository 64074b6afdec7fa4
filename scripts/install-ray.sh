#!/usr/bin/env bash
# Installs the KubeRay operator (Helm, pinned chart) and the benchmark's RayCluster into the Minikube cluster:
# operator in OPERATOR_NAMESPACE, then in RAY_NAMESPACE the checkpoint store (k8s/checkpoint-store.yaml) and the
# RayCluster (k8s/ray-cluster.yaml) with the kit's image, which it builds and loads first if the nodes lack it.
# Waits until KubeRay reports the cluster provisioned and Ray itself sees the head and every worker with its
# CPUs; on a timeout prints why (Pending for CPU or memory, image pull errors, crash loops) and what to change.
# Safe to run twice: helm upgrade --install and kubectl apply leave a matching install as it is. After a change
# (new image tag, other sizes) KubeRay replaces every Ray pod (upgradeStrategy Recreate), and the script waits
# until each running pod runs the image it applied, which it records on the RayCluster for the benchmark.
#
# Usage: scripts/install-ray.sh [--help]
#
# Settings:
#   KUBE_CONTEXT      raybench (= MINIKUBE_PROFILE)  the cluster to install into
#   OPERATOR_NAMESPACE  ray-system
#   RAY_NAMESPACE     ray
#   RAY_CLUSTER_NAME  raybench
#   KUBERAY_VERSION   1.7.0    Helm chart version of kuberay/kuberay-operator
#   CLUSTER_PROFILE   default  pod sizes: default (workers 2 CPUs / 4 GiB) or small (1 CPU / 2 GiB, for a
#                              4-CPU / 8 GiB Docker); the profiles: training/cluster/profiles.py, what each
#                              needs: python3 -m training.cluster table
#   EXPECTED_WORKERS  (the profile's worker pods, 2)  worker pods Ray must report
#   EXPECTED_WORKER_CPUS (the profile's, 4 for default)  CPUs Ray must report across those workers
#   OPERATOR_TIMEOUT_S 300     wait for the operator
#   CLUSTER_TIMEOUT_S  900     wait for the RayCluster (image pulls on a first start take minutes)
#   IMAGE_NAME, IMAGE_TAG      see docker/build-and-push.sh

source "$(dirname "${BASH_SOURCE[0]}")/lib/k8s.sh"

readonly KUBERAY_HELM_REPO="https://ray-project.github.io/kuberay-helm/"
readonly CHECKPOINT_SECRET="checkpoint-store"

check_settings() {
  KUBERAY_VERSION="${KUBERAY_VERSION:-1.7.0}"
  # What the RayCluster of the profile is made of, as training/cluster renders it: what Ray must then report.
  k8s::load_profile
  EXPECTED_WORKERS="${EXPECTED_WORKERS:-$(k8s::profile_value workers)}"
  EXPECTED_WORKER_CPUS="${EXPECTED_WORKER_CPUS:-$(k8s::profile_value worker_cpus_total)}"
  OPERATOR_TIMEOUT_S="${OPERATOR_TIMEOUT_S:-300}"
  CLUSTER_TIMEOUT_S="${CLUSTER_TIMEOUT_S:-900}"
  [[ "${KUBERAY_VERSION}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "${EXIT_BAD_INPUT}" "KUBERAY_VERSION must be a chart version like 1.7.0, got '${KUBERAY_VERSION}'"
  local name
  for name in EXPECTED_WORKERS EXPECTED_WORKER_CPUS OPERATOR_TIMEOUT_S CLUSTER_TIMEOUT_S; do
    require_positive_int "${name}" "${!name}"
  done
}

install_operator() {
  k8s::helm repo add kuberay "${KUBERAY_HELM_REPO}" --force-update >/dev/null ||
    die "${EXIT_INFRA}" "helm repo add ${KUBERAY_HELM_REPO} failed; check your internet connection"
  local -a upgrade=(k8s::helm upgrade --install kuberay-operator kuberay/kuberay-operator
    --version "${KUBERAY_VERSION}"
    --namespace "${OPERATOR_NAMESPACE}"
    --create-namespace
    --wait --timeout "${OPERATOR_TIMEOUT_S}s")
  log::info "Installing the KubeRay operator ${KUBERAY_VERSION} into ${OPERATOR_NAMESPACE}"
  if ! "${upgrade[@]}"; then
    RAY_NAMESPACE="${OPERATOR_NAMESPACE}" k8s::diagnose "app.kubernetes.io/name=kuberay-operator"
    die "${EXIT_INFRA}" "helm could not install kuberay-operator ${KUBERAY_VERSION}; see the output above"
  fi
  k8s::kubectl -n "${OPERATOR_NAMESPACE}" rollout status deployment/kuberay-operator \
    --timeout="${OPERATOR_TIMEOUT_S}s" >/dev/null ||
    die "${EXIT_INFRA}" "the kuberay-operator deployment did not become available"
  # Helm installs CRDs on the first install only and never upgrades them; an old CRD would silently drop
  # authOptions, and the cluster would start without token auth.
  k8s::kubectl explain rayclusters.spec.authOptions --api-version=ray.io/v1 >/dev/null 2>&1 ||
    die "${EXIT_INFRA}" "the RayCluster CRD in this cluster predates authOptions (installed by an older KubeRay); run scripts/cleanup.sh, delete the ray.io CRDs (kubectl delete crd rayclusters.ray.io rayjobs.ray.io rayservices.ray.io) and rerun"
}

ensure_namespace() {
  k8s::kubectl create namespace "${RAY_NAMESPACE}" --dry-run=client -o yaml | k8s::kubectl apply -f - >/dev/null
}

# Random credentials made once; a rerun keeps them, so a running store and the pods keep agreeing.
install_checkpoint_store() {
  if ! k8s::kubectl -n "${RAY_NAMESPACE}" get secret "${CHECKPOINT_SECRET}" >/dev/null 2>&1; then
    k8s::kubectl -n "${RAY_NAMESPACE}" create secret generic "${CHECKPOINT_SECRET}" \
      --from-literal=access_key="raybench-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" \
      --from-literal=secret_key="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >/dev/null ||
      die "${EXIT_INFRA}" "could not create Secret ${RAY_NAMESPACE}/${CHECKPOINT_SECRET}"
  fi
  k8s::kubectl -n "${RAY_NAMESPACE}" apply -f "${REPO_ROOT}/k8s/checkpoint-store.yaml" >/dev/null ||
    die "${EXIT_INFRA}" "kubectl apply -f k8s/checkpoint-store.yaml failed"
}

# The manifest names a placeholder image, the default cluster name and the default sizes; the install uses the
# built tag, RAY_CLUSTER_NAME and CLUSTER_PROFILE.
rendered_cluster_manifest() {
  k8s::plan render --profile "${CLUSTER_PROFILE}" --image "$1" --cluster-name "${RAY_CLUSTER_NAME}" \
    "${REPO_ROOT}/k8s/ray-cluster.yaml"
}

# What the benchmark checks the pods against: the reference and the image ID the nodes report for it (crictl on
# each node, all agreeing), the same view the kubelet gives the pods. Never Docker's ID on this machine: with
# the containerd image store that is the manifest or index digest (docker/cli#5526), which no node reports.
record_applied_image() {
  local image="$1" image_id nodes
  nodes="$(k8s::profile_nodes)" || nodes=""
  [[ -n "${nodes}" ]] || die "${EXIT_INFRA}" "Minikube profile '${MINIKUBE_PROFILE}' has no nodes; run scripts/setup-minikube.sh"
  # shellcheck disable=SC2086  # one node name per word
  image_id="$(k8s::nodes_image_id "${image}" ${nodes})" ||
    die "${EXIT_INFRA}" "the nodes do not all hold one image ${image} (above); run FORCE_BUILD=1 docker/build-and-push.sh"
  APPLIED_IMAGE_ID="${image_id}"
  k8s::kubectl -n "${RAY_NAMESPACE}" annotate raycluster "${RAY_CLUSTER_NAME}" --overwrite \
    "${K8S_IMAGE_ANNOTATION}=${image}" "${K8S_IMAGE_ID_ANNOTATION}=${image_id}" >/dev/null ||
    die "${EXIT_INFRA}" "could not record the applied image on RayCluster ${RAY_CLUSTER_NAME}"
}

# All head and worker pods are running, and each runs the applied image (old pods that KubeRay is replacing
# still show as Running until they stop).
pods_run_applied_image() {
  local running mismatch
  running="$(k8s::cluster_pod_images | grep -c .)" || return 1
  ((running >= EXPECTED_WORKERS + 1)) || return 1
  mismatch="$(k8s::image_mismatch "${APPLIED_IMAGE}" "${APPLIED_IMAGE_ID}")" || return 1
  [[ -z "${mismatch}" ]]
}

cluster_provisioned() {
  [[ "$(k8s::kubectl -n "${RAY_NAMESPACE}" get raycluster "${RAY_CLUSTER_NAME}" \
    -o jsonpath='{.status.conditions[?(@.type=="RayClusterProvisioned")].status}')" == "True" ]]
}

ray_sees_all_workers() {
  local head view
  head="$(k8s::head_pod)" || return 1
  view="$(k8s::ray_view "${head}")" || return 1
  [[ "${view}" == "nodes=$((EXPECTED_WORKERS + 1)) worker_nodes=${EXPECTED_WORKERS} worker_cpus=${EXPECTED_WORKER_CPUS}" ]]
}

main() {
  [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]] && { usage_from_header "$0"; exit 0; }
  [[ $# -eq 0 ]] || die "${EXIT_BAD_INPUT}" "unknown argument '$1' (allowed: --help)"
  check_settings
  require_cmd kubectl "${K8S_INSTALL_KUBECTL}"
  require_cmd helm "${K8S_INSTALL_HELM}"
  k8s::require_cluster
  install_operator
  ensure_namespace

  local image selector
  # Progress lines go to the terminal through stderr; the last line is the image reference.
  image="$("${REPO_ROOT}/docker/build-and-push.sh" | tee /dev/stderr | tail -n 1)" ||
    die "${EXIT_INFRA}" "could not build or load the image (docker/build-and-push.sh failed above)"
  install_checkpoint_store
  log::info "Applying RayCluster ${RAY_NAMESPACE}/${RAY_CLUSTER_NAME} (profile ${CLUSTER_PROFILE}) with image ${image}"
  rendered_cluster_manifest "${image}" | k8s::kubectl -n "${RAY_NAMESPACE}" apply -f - ||
    die "${EXIT_INFRA}" "kubectl apply of k8s/ray-cluster.yaml failed"
  APPLIED_IMAGE="${image}"
  record_applied_image "${image}"

  selector="ray.io/cluster=${RAY_CLUSTER_NAME}"
  k8s::wait_or_diagnose "${CLUSTER_TIMEOUT_S}" "RayCluster ${RAY_CLUSTER_NAME} to be provisioned" "${selector}" \
    cluster_provisioned
  k8s::wait_or_diagnose "${CLUSTER_TIMEOUT_S}" "every Ray pod to run ${image}" "${selector}" pods_run_applied_image
  k8s::wait_or_diagnose "${CLUSTER_TIMEOUT_S}" \
    "Ray to report 1 head and ${EXPECTED_WORKERS} workers with ${EXPECTED_WORKER_CPUS} CPUs" "${selector}" \
    ray_sees_all_workers
  k8s::wait_or_diagnose "${OPERATOR_TIMEOUT_S}" "the checkpoint store" "app.kubernetes.io/name=checkpoint-store" \
    k8s::kubectl -n "${RAY_NAMESPACE}" rollout status deployment/checkpoint-store --timeout=5s
  k8s::kubectl -n "${RAY_NAMESPACE}" get pods -o wide
  log::info "Ready. Dashboard: kubectl --context ${KUBE_CONTEXT} -n ${RAY_NAMESPACE} port-forward --address 127.0.0.1 svc/${RAY_CLUSTER_NAME}-head-svc 8265:8265"
  # The RayJob files ask for a worker pod's CPUs of one profile each: name the one that fits this cluster.
  log::info "The Ray training as a RayJob on this cluster: kubectl --context ${KUBE_CONTEXT} -n ${RAY_NAMESPACE} apply -f k8s/ray-job-${CLUSTER_PROFILE}.yaml"
}

main "$@"
