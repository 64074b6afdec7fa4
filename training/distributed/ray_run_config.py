"""The Ray run's configuration, typed: what ray_training.parse_args decided, read once into a frozen dataclass.

The driver builds it from the parsed flags (RayRunConfig.from_args), the results come from it (run_report.py), and
each Ray Train worker gets it as a plain dict inside the train_loop_config (to_dict) and reads it back
(from_dict), so a setting has one name and one type from the command line to the worker. Imports nothing
beyond the standard library and storage.py's path joining: every worker reads it before TensorFlow starts.
"""

from dataclasses import asdict, dataclass, fields

from training.distributed import storage

# Fields whose flag has another name (the flag's rate is the single-worker one; the workers train at the scaled one).
_ARG_NAMES = {"base_learning_rate": "learning_rate"}


@dataclass(frozen=True)
class RayRunConfig:
    run_id: str | None  # None until the driver names the run (results.default_run_id)
    output: str
    # The data and the model's training
    dataset: str
    data_dir: str | None
    train_samples: int | None  # None: all
    test_samples: int | None
    val_fraction: float
    seed: int
    epochs: int
    early_stopping_patience: int
    # Batches and the learning rate
    batch_size: int  # as given: per worker or global, by batch_size_mode
    batch_size_mode: str
    per_worker_batch: int
    global_batch: int
    base_learning_rate: float  # LEARNING_RATE, for one worker
    lr_scaling: str
    lr_factor: float  # what lr_scaling makes of the global batch
    # The workers and the cluster
    num_workers: int
    cpus_per_worker: int
    use_gpu: bool
    ray_address: str | None  # None or empty: a private local Ray
    collective: str
    allreduce_dtype: str
    # Checkpoints and failures
    checkpoint_policy: str
    checkpoint_budget: float
    mtbf_seconds: float
    max_failures: int
    inject_failure_epoch: int
    storage_path: str
    resume: bool
    record_shards: bool
    progress_interval: float  # seconds between rank 0's in-epoch progress messages; 0: none
    # The model's hyper-parameters from the settings table (settings.model_options), passed to build_model as is.
    model_options: dict


    @classmethod
    def from_args(cls, args):
        """From ray_training.parse_args' namespace (already validated there)."""
        from training.core import settings

        given = {f.name: getattr(args, _ARG_NAMES.get(f.name, f.name)) for f in fields(cls) if f.name != "model_options"}
        return cls(**given, model_options=settings.model_options(args))

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        return cls(**values)

    @property
    def learning_rate(self):
        """The rate every worker trains at: LEARNING_RATE scaled for the global batch."""
        return self.base_learning_rate * self.lr_factor

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
