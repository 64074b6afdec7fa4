"""Baseline: the kit's CNN trained with plain Keras model.fit in one process, no Ray.

    python -m training.baseline_training --epochs 5 --threads 1 --output results/baseline_results.json
    DATASET=digits EPOCHS=3 python -m training.baseline_training

--threads sets TensorFlow's thread pools. The benchmark runs it twice: with one Ray worker's CPU share (the
scale-out speedup's reference) and with all the CPUs the Ray workers have together (the equal-resources one).
"""

import os
import time

from training.core import settings
from training.core.settings import fail

TRAINING_TYPE = "baseline"


def parse_args(argv=None):
    args = settings.parse("baseline", "Train the CIFAR-10 CNN with plain Keras in one process (the baseline).", argv)
    if args.output is None:
        args.output = os.path.join(args.results_dir, "baseline_results.json")
    return args


def main(argv=None):
    from training.core.fitting import process_start_time

    process_start = process_start_time(time.time())
    args = parse_args(argv)
    from training.core.tf_env import available_cpus, configure_tensorflow

    threads = args.threads or available_cpus()
    tf, tf_threads = configure_tensorflow(threads)

    from training.core import data
    from training.core.evaluation import evaluate_counts, summarize_counts
    from training.core.fitting import epoch_recorder, first_epoch_excess, format_progress, run_fit, standard_callbacks
    from training.core.model import build_model
    from training.core.results import environment_info, make_result, write_results
    from training.core.step_progress import StepTicker, format_step_progress, print_line

    try:
        ds = data.load_dataset(args.dataset, args.data_dir, args.train_samples, args.test_samples,
                               args.val_fraction, args.seed)
    except data.DataError as err:
        fail(str(err))
    steps = len(ds.y_train) // args.batch_size
    if steps == 0:
        fail(f"BATCH_SIZE must be at most the {len(ds.y_train)} training images, got {args.batch_size}")
    sizes = ds.sizes()
    print(f"[baseline] {args.dataset}: {sizes['train']} train / {sizes['val']} val / {sizes['test']} test images; "
          f"batch {args.batch_size}; {threads} TensorFlow thread(s); {args.epochs} epoch(s)", flush=True)

    model = build_model(learning_rate=args.learning_rate, seed=args.seed, **settings.model_options(args))
    train_ds = data.make_tf_dataset(ds.x_train, ds.y_train, args.batch_size, shuffle_seed=args.seed,
                                    drop_remainder=True)
    val_ds = data.make_tf_dataset(ds.x_val, ds.y_val, args.batch_size)
    ticker = None
    if args.progress_interval:
        ticker = StepTicker(lambda state: print_line(format_step_progress("baseline", state)), args.progress_interval,
                            steps, args.batch_size)
    recorder = epoch_recorder(
        args.epochs, on_epoch=lambda rec, elapsed: print_line(format_progress("baseline", rec, args.epochs, elapsed)),
        ticker=ticker)
    fit_called = time.time()
    training_time = run_fit(model, train_ds, val_ds, args.epochs,
                            [recorder] + standard_callbacks(args.early_stopping_patience))
    fit_ended = fit_called + training_time

    # Scoring 10,000 CIFAR-10 images takes a laptop CPU tens of seconds: say so, or the console falls silent.
    print_line(f"[baseline] scoring the test set: {sizes['test']} images")
    evaluation = summarize_counts(evaluate_counts(model, ds.x_test, ds.y_test, data.NUM_CLASSES), ds.class_names)
    # Every recorded setting comes from the resolved run; what follows is what this process made of them.
    config = {
        **settings.ResolvedRun.from_args("baseline", args).record(),
        "batch_size_semantics": "one process: the batch is both global and per worker",
        "learning_rate_rule": "none: one process trains at LEARNING_RATE",
        "data_source": ds.source,
        "train_samples": sizes["train"],
        "val_samples": sizes["val"],
        "test_samples": sizes["test"],
        "num_workers": 1,
        "cpus_per_worker": threads,
        "tf_threads": tf_threads,
        "steps_per_epoch": steps,
    }
    result = make_result(
        TRAINING_TYPE, args.run_id, config, recorder.history, training_time, evaluation, model.count_params(),
        ds.accuracy_meaningful, environment_info(cpus_used=threads, tf_threads=tf_threads),
        images_trained=steps * args.batch_size * len(recorder.history),
        wall_time_seconds=time.time() - process_start,
        # The spans the Ray results also carry, so the comparison can set fixed costs side by side.
        fixed_costs={
            "command_start_to_fit_seconds": fit_called - process_start,
            "first_epoch_excess_seconds": first_epoch_excess(recorder.history),
            "after_fit_seconds": time.time() - fit_ended,
        },
    )
    write_results(args.output, result)
    note = "" if ds.accuracy_meaningful else " (synthetic data: accuracy is chance)"
    print(f"[baseline] done: {training_time:.1f}s training, test accuracy {evaluation['test_accuracy']:.4f}{note}, "
          f"{result['images_per_second']:.1f} images/s -> {args.output}", flush=True)


if __name__ == "__main__":
    settings.run_program(main)
