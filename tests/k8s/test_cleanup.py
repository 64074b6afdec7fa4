"""scripts/cleanup.sh against stub kubectl, helm and minikube: it removes what install-ray.sh made from any partial
state, the profile with --all, the kit's images (nodes, their tarballs, Minikube's cache) with --images.
"""

from tests.helpers.k8s_worlds import NODES, image_ref, reachable
from tests.helpers.stub_tools import REPO_ROOT


def test_cleanup_removes_cluster_operator_and_namespaces(world):
    reachable(world)
    world.on("helm", "*status kuberay-operator", 0)
    result = world.run_script("scripts/cleanup.sh")
    assert result.returncode == 0, result.stderr
    assert world.called_with("kubectl", "delete", "raycluster", "raybench", "--ignore-not-found")
    assert world.called_with("helm", "uninstall", "kuberay-operator")
    for ns in ("ray", "ray-system"):
        assert world.called_with("kubectl", "delete", "namespace", ns, "--ignore-not-found")
    assert world.called_with("minikube", "delete") == []


def test_cleanup_when_everything_is_already_gone_succeeds(world):
    reachable(world)
    world.on("helm", "*status kuberay-operator", 1)
    world.on("kubectl", "*get crd rayclusters.ray.io", 1)
    for _ in range(2):
        result = world.run_script("scripts/cleanup.sh")
        assert result.returncode == 0, result.stderr
    assert world.called_with("helm", "uninstall") == []


def test_cleanup_of_an_unreachable_cluster_only_warns(world):
    world.on("kubectl", "*get --raw=/readyz*", 1)
    result = world.run_script("scripts/cleanup.sh")
    assert result.returncode == 0
    assert "not reachable" in result.stderr
    assert [c for c in world.calls("kubectl") if "delete" in c] == []


def test_cleanup_all_deletes_the_profile_and_leaves_results(world):
    world.on("kubectl", "*get --raw=/readyz*", 1)
    results = REPO_ROOT / "results"
    before = sorted(p.name for p in results.iterdir()) if results.exists() else None
    result = world.run_script("scripts/cleanup.sh", "--all")
    assert result.returncode == 0, result.stderr
    assert world.called_with("minikube", "delete", "-p", "raybench")
    assert (sorted(p.name for p in results.iterdir()) if results.exists() else None) == before


def test_cleanup_images_removes_kit_images_from_nodes_and_cache(world):
    """Defect 10: `minikube image load` leaves a multi-GB tarball per tag in Minikube's cache."""
    reachable(world)
    world.helm_release_missing()
    world.on("minikube", "*image ls --format short", 0,
             "registry.k8s.io/pause:3.10\ndocker.io/library/raybench-kit:ray2.60.0-tf2.21.0-0ld0ld0ld0")
    result = world.run_script("scripts/cleanup.sh", "--images")
    assert result.returncode == 0, result.stderr
    removed = [c[-1] for c in world.called_with("minikube", "image", "rm")]
    assert "raybench-kit:ray2.60.0-tf2.21.0-0ld0ld0ld0" in removed and image_ref(world) in removed
    assert not [r for r in removed if "pause" in r]
    assert {c[-1] for c in world.called_with("minikube", "cache", "delete")} == set(removed)


def test_cleanup_without_images_says_how_to_remove_them(world):
    reachable(world)
    world.helm_release_missing()
    result = world.run_script("scripts/cleanup.sh")
    assert result.returncode == 0, result.stderr
    assert "scripts/cleanup.sh --images" in result.stdout
    assert world.called_with("minikube", "image") == []


def test_cleanup_images_removes_the_node_side_tarballs(world):
    """`minikube image load` leaves a tarball per tag in each node's /var/lib/minikube/images/
    (pkg/minikube/machine/cache_images.go loadRoot) and never removes it."""
    reachable(world)
    world.helm_release_missing()
    world.on("minikube", "*node list", 0, NODES)
    result = world.run_script("scripts/cleanup.sh", "--images")
    assert result.returncode == 0, result.stderr
    removals = [c for c in world.called_with("minikube", "ssh") if any("/var/lib/minikube/images" in a for a in c)]
    assert {c[c.index("-n") + 1] for c in removals} == {"raybench", "raybench-m02"}
    assert all("-name 'raybench-kit_*' -delete" in c[-1] for c in removals)
