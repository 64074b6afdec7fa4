"""docker/build-and-push.sh against stub docker and minikube: it builds only when a node lacks the image, loads it
from a saved file, checks every node's image ID, and tags by content (never `latest`).
"""

import pytest

from tests.helpers.canned_answers import canned_kubectl_exec_exit, canned_minikube_ssh_crictl_image_id
from tests.helpers.k8s_worlds import NODE_IMAGE_ID, NODES, image_ref, nodes_have_image
from tests.helpers.stub_tools import REPO_ROOT, assert_one_line_error


def test_build_builds_loads_and_verifies_each_node_when_a_node_lacks_the_image(world):
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh*crictl*", *canned_kubectl_exec_exit(1))  # no node has it, before or after the load
    result = world.run_script("docker/build-and-push.sh")
    assert_one_line_error(result, 4, "still lacks")
    assert "raybench raybench-m02" in result.stderr  # which nodes
    build = world.called_with("docker", "build")
    assert len(build) == 1
    assert "BASE_IMAGE=rayproject/ray:2.60.0-py311-cpu" in build[0]
    tag = build[0][build[0].index("--tag") + 1]
    assert tag.startswith("raybench-kit:ray2.60.0-tf2.21.0-") and not tag.endswith(":latest")


def test_build_loads_the_image_from_a_saved_file_not_through_minikubes_memory(world):
    """Issue 20 item 4: `minikube image load IMAGE` buffers the whole image (minikube#17785); a file streams."""
    nodes_have_image(world)
    result = world.run_script("docker/build-and-push.sh", FORCE_BUILD=1)
    assert result.returncode == 0, result.stderr
    tag = world.called_with("docker", "build")[0][world.called_with("docker", "build")[0].index("--tag") + 1]
    (save,) = world.called_with("docker", "save")
    tarball = save[save.index("-o") + 1]
    assert save[-1] == tag and tarball.endswith(tag.replace(":", "_") + ".tar")
    (load,) = world.called_with("minikube", "image", "load")
    assert load[-1] == tarball and tag not in load
    calls = world.calls()
    assert calls.index(save) < calls.index(load)
    # The copy minikube leaves in each node's /var/lib/minikube/images/ goes right after the load.
    removals = [c for c in world.called_with("minikube", "ssh") if any("/var/lib/minikube/images" in a for a in c)]
    assert {c[c.index("-n") + 1] for c in removals} == {"raybench", "raybench-m02"}
    assert all("-name 'raybench-kit_*' -delete" in c[-1] for c in removals)


def test_build_refuses_nodes_that_hold_different_images_under_the_tag(world):
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh -n raybench-m02*crictl inspecti*", 0,
             canned_minikube_ssh_crictl_image_id("sha256:" + "ee" * 32), raw=True)
    nodes_have_image(world)
    result = world.run_script("docker/build-and-push.sh", FORCE_BUILD=1)
    assert_one_line_error(result, 4, "different images")
    assert "ee" * 32 in result.stderr and NODE_IMAGE_ID in result.stderr


def test_build_is_skipped_when_every_node_has_the_image(world):
    nodes_have_image(world)
    result = world.run_script("docker/build-and-push.sh")
    assert result.returncode == 0, result.stderr
    assert world.called_with("docker", "build") == []
    nodes_checked = {c[c.index("-n") + 1] for c in world.called_with("minikube", "ssh")}
    assert nodes_checked == {"raybench", "raybench-m02"}
    assert result.stdout.strip().splitlines()[-1].startswith("raybench-kit:ray2.60.0-")


def test_build_refuses_latest(world):
    assert_one_line_error(world.run_script("docker/build-and-push.sh", IMAGE_TAG="latest"), 2, "IMAGE_TAG")


@pytest.mark.parametrize("setting,value", [("BASE_IMAGE", "rayproject/ray:2.60.0-py311-cpu-aarch64"),
                                           ("PREFETCH_CIFAR10", "0")])
def test_image_tag_changes_with_base_image_and_prefetch(world, setting, value):
    """Defect 9: either setting changes the image, so it must change the tag."""
    assert image_ref(world) != image_ref(world, **{setting: value})


def test_build_picks_the_aarch64_base_on_an_arm64_docker(world):
    """Defect 10: untagged-architecture rayproject/ray images are amd64."""
    world.on("docker", "info --format {{.Architecture}}", 0, "aarch64")
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh*crictl*", 1)
    world.run_script("docker/build-and-push.sh")
    build = world.called_with("docker", "build")
    assert "BASE_IMAGE=rayproject/ray:2.60.0-py311-cpu-aarch64" in build[0]


def test_build_context_holds_only_what_the_image_needs(world):
    """Defect 10: without BuildKit Dockerfile.dockerignore is ignored; the context must be small anyway."""
    stub = world.bin / "docker"
    stub.unlink()
    listing = world.root / "context.txt"
    stub.write_text("#!/usr/bin/env bash\n"
                    f'if [[ "$1" == build ]]; then (cd "${{@: -1}}" && find . -type f | sort) >"{listing}"; fi\n'
                    f'exec "{REPO_ROOT}/tests/k8s/stubs/docker" "$@"\n')
    stub.chmod(0o755)
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh*crictl*", 1)
    world.run_script("docker/build-and-push.sh")
    files = listing.read_text().split()
    assert "./docker/Dockerfile" in files and "./docker/requirements.txt" in files and "./.dockerignore" in files
    assert "./docker/requirements-laptop.txt" in files  # requirements.txt includes it
    assert all(f.startswith(("./training/", "./docker/", "./.dockerignore")) for f in files), files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc") or ".venv" in f]
    build = world.called_with("docker", "build")[0]
    assert build[-1] != str(REPO_ROOT)
