"""The Ray run's settings: the resolved run of program `ray` (training/core/settings/resolved.py), with what only
a Ray run derives from it. The driver builds it once from the parsed flags (RayRunConfig.from_args), the results
come from it (run_report.py), and each Ray Train worker gets it as a plain dict inside the train_loop_config
(to_dict) and reads it back (from_dict). Every setting of the table's `ray` rows is an attribute by its lower-case
name: a new Ray setting needs no field here. Imports nothing beyond the standard library and the storage paths:
every worker reads it before TensorFlow starts."""

from training.core import storage
from training.core.settings.resolved import ResolvedRun


class RayRunConfig(ResolvedRun):
    @classmethod
    def from_args(cls, args):
        """From ray_training.parse_args' namespace (already validated there)."""
        return super().from_args("ray", args)

    @property
    def allreduce_dtype_used(self):
        """One worker has nothing to all-reduce: narrowing its gradients would only lose precision."""
        return self.allreduce_dtype if self.num_workers > 1 else "float32"

    @property
    def controller_args(self):
        """What the checkpoint controller is told before training (its measured checkpoint cost aside)."""
        return {"mtbf_seconds": self.mtbf_seconds, "budget_fraction": self.checkpoint_budget}

    @property
    def storage_dir(self):
        """This run's folder in STORAGE_PATH: Ray Train's checkpoints and the kit's own files of the run."""
        return storage.join(self.storage_path, self.run_id)
