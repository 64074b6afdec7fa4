"""Stub worlds (tests/helpers/stub_tools.py) set up as the kit's Minikube cluster in the states its scripts meet:
reachable, running the RayCluster with an image install-ray.sh recorded, nodes holding the kit's image."""

from tests.helpers.canned_answers import canned_docker_image_id, canned_minikube_ssh_crictl_image_id

HEAD = "raybench-head-abcde"
WORKERS = ["raybench-workers-worker-aaaaa", "raybench-workers-worker-bbbbb"]
NODES = "raybench\t192.168.49.2\nraybench-m02\t192.168.49.3"
NODE_IMAGE_ID = canned_docker_image_id("overlay2")[1]


def reachable(world):
    return world.on("kubectl", "*get --raw=/readyz*", 0)


def image_ref(world, **settings):
    """The image reference the scripts compute in this world (the content hash of this checkout)."""
    out = world.run_bash("source scripts/lib/k8s.sh && k8s::image_ref", **settings)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def pods_run(world, image, image_id="", pods=None):
    """The running Ray pods (head and workers) report running `image` (and `image_id`)."""
    rows = [f"{pod}\t{image}\t{image_id}" for pod in (pods or [HEAD, *WORKERS])]
    world.on("kubectl", "*containerStatuses?0?.imageID*", 0, "\n".join(rows))
    return world


def applied_image(world, image, image_id=""):
    """The RayCluster records `image` as the one install-ray.sh applied."""
    world.on("kubectl", "*get raycluster raybench*kit/node-image-id}*", 0, image_id)
    world.on("kubectl", "*get raycluster raybench*kit/image}*", 0, image)
    return world


def ray_cluster_running(world, worker_cpus="2", versions="2.60.0 2.21.0 2.21.0", image=None):
    reachable(world)
    image = image or image_ref(world)
    applied_image(world, image)
    pods_run(world, image)
    world.on("kubectl", "*ray.io/node-type=head*", 0, HEAD)
    world.on("kubectl", "*ray.io/node-type=worker*", 0, "\n".join(WORKERS))
    world.on("kubectl", "*resources.limits.cpu*", 0, worker_cpus)
    world.on("kubectl", "*importlib.metadata*", 0, versions)
    world.on("kubectl", "*exec * import ray*", 0, "nodes=3 worker_nodes=2 worker_cpus=4")
    return world


def nodes_have_image(world, image_id=NODE_IMAGE_ID):
    """Both nodes of the profile report the kit's image (crictl through minikube ssh) with `image_id`."""
    world.on("minikube", "*node list", 0, NODES)
    world.on("minikube", "*ssh*crictl inspecti*", 0, canned_minikube_ssh_crictl_image_id(image_id), raw=True)
    return world
