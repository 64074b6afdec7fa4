"""Ray Train's DataParallelTrainer with only the helpers a run of the kit uses, and the one helper every run waits
for started early. Where each second of Ray's start-up went, and what these saved, is in BENCHMARKS.md ("Ray's
start-up, process by process"; "What was tried"); `python -m benchmarks.startup_trace` measures it.

Ray Train 2.60 starts, besides the controller and the workers, one Python process per helper, each importing Ray
Train (about 1 s of CPU) on the cores the workers need at that moment:
- DatasetManager, made by DatasetsCallback for every run, with or without Ray Datasets. The kit passes none (each
  worker loads its own shard), so the callback is left out when there are none.
- PlacementGroupCleaner, a detached actor per run that asks Ray's state API every second whether the controller
  still lives, to remove the workers' placement group should the controller die without removing it. Ray does
  that itself: a placement group made without a lifetime, as Ray Train's is, fate-shares with its creator, the
  controller (ray.util.placement_group's `lifetime`), and the kit's driver ends with its controller. Without the
  cleaner, the Ray run's start to model.fit took about 1 s less (BENCHMARKS.md, "What was tried").
- The AutoscalingCoordinator, a detached actor made once per cluster, which the controller waits for before it
  asks for the workers (1.3 s on the first run of a fresh cluster). The driver starts it as soon as it joins
  the cluster, so it starts beside the controller instead of after it.
"""

from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer


class KitTrainer(DataParallelTrainer):
    """DataParallelTrainer without the placement group cleaner, and without the DatasetsCallback when the run has
    no Ray Datasets. Overrides a private method of Ray Train 2.60 (pinned in docker/requirements.txt);
    tests/distributed/test_trainer.py checks the callbacks it leaves against that version."""

    def _create_default_callbacks(self):
        from ray.train.v2._internal.callbacks import DatasetsCallback

        from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

        unused = (PlacementGroupCleanerCallback,) if self.datasets else (PlacementGroupCleanerCallback, DatasetsCallback)
        return [callback for callback in super()._create_default_callbacks() if not isinstance(callback, unused)]


def start_autoscaling_coordinator():
    """Starts the cluster's AutoscalingCoordinator now without waiting for it (Ray Train's own get-or-create,
    which the controller calls again and then finds it). True when it was asked for; False where this Ray has no
    such helper, and the controller makes it as before."""
    try:
        from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (
            get_or_create_autoscaling_coordinator,
        )
    except ImportError:
        return False
    get_or_create_autoscaling_coordinator()
    return True
