"""Recipes over the table's defaults: what `--quick` sets, and the defaults of a program that differ from the
table's, each with its reason. default_of() is the one place a default is looked up."""

# What `run-benchmark.sh --quick` sets where the user did not: a run of about two and a half minutes on 2 cores
# in which both sides learn. Measured by benchmarks/quick_recipe_probe.py (digits, one CPU, seed 42): 32 steps of
# 64 at LEARNING_RATE 0.001 scored 0.39 on the test set, 40 steps at 0.001 0.90, 40 at 0.002 0.99. With fewer
# steps batch normalization's moving statistics lag the weights: the old quick recipe's 16 steps of a global
# batch of 128 scored 0.12 with them and 0.95 with statistics recomputed from the final weights. A global batch
# split over the workers gives the two sides the same steps at the same rate, so their accuracies compare.
QUICK = {
    "DATASET": "digits",  # offline and real: every one of its 1,294 training images (TRAIN_SAMPLES unset)
    "EPOCHS": "2",  # 2 x 20 steps; the second epoch is the steady-state one
    "BATCH_SIZE": "64",
    "BATCH_SIZE_MODE": "global",  # Ray's 2 workers take 32 each: the baseline's batch, split
    "LEARNING_RATE": "0.002",  # reaches 0.85+ in 40 steps where 0.001 is at the edge
}
# Defaults of one program that differ from the table's, each overlay with its reason.
PROGRAM_DEFAULTS = {
    # The demo shows a recovery: the actor dies in epoch 3, late enough to have a checkpoint to go back to.
    # A demo that injects a failure within a minute should tell the controller to expect one: with the
    # benchmark's 3600 s it would rightly save only the final epoch, and the recovery would start over.
    "patterns": {"DATASET": "digits", "TRAIN_SAMPLES": "320", "TEST_SAMPLES": "200", "EPOCHS": "4",
                 "BATCH_SIZE": "32", "MTBF_SECONDS": "60", "INJECT_FAILURE_EPOCH": "3"},
    # scripts/benchmark.sh --quick: under 10 minutes on 2 cores.
    "benchmark --quick": {"REPEATS": "2", "BENCH_TRAIN_SAMPLES": "768", "BENCH_ACCURACY_EPOCHS": "3"},
    # A run in a pod that hangs (a worker lost for good) must end, or it holds the cluster's CPUs forever.
    "cluster": {"RUN_TIMEOUT_S": "3600"},
    "sweep": {"RUN_TIMEOUT_S": "0"},
    # Without --num-workers the comparison takes the one ray_results_<N>workers.json there is.
    "compare": {"NUM_WORKERS": None},
}


def default_of(setting, program=None, overlay=None):
    """A setting's default for `program`: the caller's overlay first, then the program's, then the table's."""
    for layer in (overlay or {}, PROGRAM_DEFAULTS.get(program, {})):
        if setting.name in layer:
            return layer[setting.name]
    return setting.default
