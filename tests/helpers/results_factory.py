"""Valid results documents with chosen numbers, built with the kit's own make_result, for comparison tests."""

from training.core.results import environment_info, make_result


def fake_result(training_type="baseline", seconds=100.0, cpus=1, workers=1, accuracy=0.8, epochs=2,
                per_worker_batch=64, dataset="digits", wall=None, restarts=0, epoch_seconds=None,
                fixed_costs=None, learning_rate=0.001):
    """`epoch_seconds` (one per epoch) overrides the even split of `seconds`; `fixed_costs` is stored as is."""
    epoch_seconds = epoch_seconds or [seconds / epochs] * epochs
    history = [{"epoch": e + 1, "loss": 1.0 / (e + 1), "accuracy": 0.5 + 0.1 * e, "val_loss": 1.2 / (e + 1),
                "val_accuracy": 0.45 + 0.1 * e, "seconds": epoch_seconds[e]} for e in range(epochs)]
    config = {"epochs": epochs, "global_batch_size": per_worker_batch * workers,
              "per_worker_batch_size": per_worker_batch, "learning_rate": learning_rate, "seed": 42,
              "dataset": dataset, "steps_per_epoch": 1000 // (per_worker_batch * workers),
              "num_workers": workers, "cpus_per_worker": cpus if training_type == "baseline" else 1,
              "batch_size_semantics": "test", "learning_rate_rule": "none", "train_samples": 1000,
              "val_samples": 100, "test_samples": 100, "tf_threads": {"intra_op": cpus, "inter_op": 1}}
    evaluation = {"test_accuracy": accuracy, "test_loss": 0.5, "test_samples": 100,
                  "per_class_accuracy": {str(i): accuracy for i in range(10)}}
    extra = {"fault_tolerance": {"restarts": restarts}} if training_type == "ray_distributed" else {}
    if fixed_costs is not None:
        extra["fixed_costs"] = fixed_costs
    return make_result(training_type, f"{training_type}-test", config, history, seconds, evaluation, 3_252_426,
                       dataset != "synthetic", environment_info(cpus_used=cpus), images_trained=1000 * epochs,
                       wall_time_seconds=wall if wall is not None else seconds + 10, **extra)
