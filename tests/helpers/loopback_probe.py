"""A Ray Train job for the loopback test: `python -m tests.helpers.loopback_probe OUT.json` joins the cluster
in RAY_ADDRESS as the kit's driver does, runs 2 Ray Train workers that each start TensorFlow's collective server (as
MultiWorkerMirroredStrategy does in every run of the kit), and while the whole job is up (driver, Ray Train's
controller and helpers, the workers) rank 0 lists every listening socket on the machine. Writes the list, the
ports TensorFlow's servers were given (TF_CONFIG) and the driver's pid to OUT.json."""

import json
import os
import sys

from training.distributed import local_node


def train_loop(config):
    import ray.train

    from tests.helpers.listeners import listeners
    from training.core.tf_env import configure_tensorflow

    tf, _ = configure_tensorflow(1)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    # An all-reduce on each side of the look: every worker's server is up before it, and none has left yet.
    strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)
    found = listeners() if ray.train.get_context().get_world_rank() == 0 else None
    strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)
    workers = json.loads(os.environ["TF_CONFIG"])["cluster"]["worker"]
    return {"listeners": found, "tf_ports": [int(address.rsplit(":", 1)[1]) for address in workers]}


def main(out):
    local_node.hold_to_loopback()
    import ray
    from ray.train import ScalingConfig
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    from training.distributed.runtime_env import job_runtime_env
    from training.distributed.tf_backend import TensorflowBackend

    address = os.environ["RAY_ADDRESS"]
    ray.init(address=address, runtime_env=job_runtime_env(address), log_to_driver=False)
    result = DataParallelTrainer(train_loop, backend_config=TensorflowBackend(threads=1),
                                 scaling_config=ScalingConfig(num_workers=2)).fit()
    with open(out, "w") as handle:
        json.dump({**result.return_value, "driver_pid": os.getpid()}, handle)


if __name__ == "__main__":
    main(sys.argv[1])
