"""Holds a Ray cluster the kit starts on this machine to 127.0.0.1: nothing it runs listens on another interface.

What decides where Ray 2.60 listens: its C++ servers (GCS, raylets, every core worker, the agents) bind
127.0.0.1 when their node's IP address is the loopback address and every interface otherwise
(src/ray/rpc/grpc_server.cc: `listen_to_localhost_only`). `ray start --node-ip-address=127.0.0.1` does not get
there: the CLI passes the address through `services.resolve_ip_for_localhost`, which on Linux replaces a
loopback address with the machine's routable one (its "reach me from other hosts" rule), so the nodes ran as
192.0.2.2 and bound `*`. The environment variable RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (ray_constants) turns that
rule off in every process that has it (it is macOS's and Windows' default), but the same switch makes the CLI
refuse to start a worker node ("Multi-node Ray clusters are not supported on Windows and OSX").

So: every process of the local cluster gets LOOPBACK_ENV (the nodes, the agents and workers they start, the
driver), and a worker node is started through main() below, which lets `ray start` add a node while keeping
its loopback address as given. The Kubernetes path uses none of this: a pod must bind its pod IP.
"""

import os
import sys

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def is_local_address(address):
    """True for no address (a private cluster) and for a cluster at a loopback address (the kit's local one)."""
    host = (address or "127.0.0.1").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def hold_to_loopback():
    """For a process about to import Ray and start or join a local cluster (must run before `import ray`)."""
    os.environ.update(LOOPBACK_ENV)


def main(argv=None):
    """`python -m training.distributed.loopback start ...`: Ray's own CLI, allowed to add worker nodes while
    the loopback rule stays off (LOOPBACK_ENV, which every process this node starts inherits)."""
    hold_to_loopback()
    from ray._private import ray_constants, services
    from ray._common.network_utils import is_localhost

    resolve = services.resolve_ip_for_localhost
    # Both the node's own address and the head's address it joins stay loopback addresses.
    services.resolve_ip_for_localhost = lambda host: host if is_localhost(host) else resolve(host)
    # Only the CLI's multi-node check reads this in this process; the address rule above no longer depends on it.
    ray_constants.ENABLE_RAY_CLUSTER = True
    from ray.scripts.scripts import main as ray_cli

    sys.argv = ["ray", *(sys.argv[1:] if argv is None else argv)]
    return ray_cli()


if __name__ == "__main__":
    sys.exit(main())
