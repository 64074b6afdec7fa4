"""How a node of the kit's Ray cluster on this machine starts: held to 127.0.0.1, with the code and the
environment its workers need already in place.

Loopback. Ray 2.60's C++ servers (GCS, raylets, every core worker, the agents) bind 127.0.0.1 when their node's IP
address is the loopback address and every interface otherwise (src/ray/rpc/grpc_server.cc:
`listen_to_localhost_only`). `ray start --node-ip-address=127.0.0.1` does not get there: the CLI passes the
address through `services.resolve_ip_for_localhost`, which on Linux replaces a loopback address with the machine's
routable one, so the nodes ran as 192.0.2.2 and bound `*`. RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (ray_constants)
turns that rule off in every process that has it (it is macOS's and Windows' default), but the same switch makes
the CLI refuse a worker node ("Multi-node Ray clusters are not supported on Windows and OSX"). So every process
of the cluster gets LOOPBACK_ENV (the nodes, what they start, the driver), and every node starts through main()
below: Ray's own `ray start`, allowed to add a worker node while a loopback address stays as given.

Code and environment. The nodes run from this checkout (PYTHONPATH, exported by scripts/lib/common.sh) and main()
puts JOB_ENV (runtime_env.py: the workers' environment and Ray Train's switches) in each node's environment,
which every Ray worker it starts inherits. A job on this cluster then needs no runtime_env (runtime_env.job_runtime_env): no package to upload and unpack, no
per-job environment for the agents to set up. The Kubernetes path uses none of this: a pod binds its pod IP,
and its jobs ship the driver's code.
"""

import os
import sys

from training.core.tf_env import WORKER_ENV
from training.distributed.runtime_env import TRAIN_ENV

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def hold_to_loopback():
    """For a process about to import Ray and start or join a cluster on this machine (before `import ray`)."""
    os.environ.update(LOOPBACK_ENV)


def main(argv=None):
    """`python -m training.distributed.local_node start ...`: Ray's CLI for one node of the local cluster."""
    hold_to_loopback()
    os.environ.update(WORKER_ENV)
    for name, value in TRAIN_ENV.items():  # Ray Train's own switches: the user's value, where one is set, wins
        os.environ.setdefault(name, value)
    from ray._common.network_utils import is_localhost
    from ray._private import ray_constants, services

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
