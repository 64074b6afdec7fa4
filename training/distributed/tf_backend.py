"""Ray Train's TensorFlow backend without TensorFlow in the driver and the controller.

`ray.train.tensorflow.TensorflowTrainer` is Ray Train's DataParallelTrainer with one backend step: before the
training function runs, each worker gets a TF_CONFIG naming every worker's address and a free port, which
MultiWorkerMirroredStrategy reads. Importing it (or its TensorflowConfig) runs `ray.train.tensorflow`'s package
init, which imports TensorFlow: 3.2 s of CPU measured here (4.3 s for `import ray.train.tensorflow` against 1.1 s
for `import ray.train`), paid twice on the path to the first step, in the driver and again in Ray Train's
controller actor, which unpickles the backend config, both on a machine whose cores the workers need.
TensorflowBackend does the same step (the same TF_CONFIG, set in the same place) from this module, which imports no
TensorFlow; only the workers import it, as they must, and they start to as soon as their TF_CONFIG is set.
"""

import json
import os
import socket
from dataclasses import dataclass

from ray.train.backend import Backend, BackendConfig


def _address_and_free_port():
    """This worker's node address and a port free on it now, for its TensorFlow collective server."""
    import ray

    address = ray.util.get_node_ip_address()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        port = probe.getsockname()[1]
    return f"{address}:{port}"


def _set_tf_config(addresses, index, threads):
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
    # Where the worker's process did not start the import as it started (runtime_env.train_worker_env), it starts
    # here: from now to the training function's start Ray Train still hands the function over.
    from training.core.tf_env import start_import

    start_import(threads, by="backend")


class _TensorflowBackend(Backend):
    def on_start(self, worker_group, backend_config):
        import ray

        addresses = worker_group.execute(_address_and_free_port)
        ray.get([worker_group.execute_single_async(rank, _set_tf_config, addresses=addresses, index=rank,
                                                   threads=backend_config.threads)
                 for rank in range(len(worker_group))])


@dataclass
class TensorflowBackend(BackendConfig):
    """The backend_config of the kit's DataParallelTrainer: TF_CONFIG for MultiWorkerMirroredStrategy, and
    TensorFlow imported early in each worker, held to `threads` CPUs (the worker's share)."""

    threads: int = 1

    @property
    def backend_cls(self):
        return _TensorflowBackend

    @property
    def framework(self):
        # What Ray's state export and dashboard call the run's framework, as for TensorflowTrainer.
        from ray.train.v2._internal.util import TrainingFramework

        return TrainingFramework.TENSORFLOW
