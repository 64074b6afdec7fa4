"""The kit's training code, run from the repository root as `python -m training.<program>`.

The programs sit here: baseline_training (plain Keras in one process), ray_training (the Ray Train driver) and
compare (the report from both results files). Below them:
    core/           what both trainers share: the settings table, model, data, fitting, evaluation, results
    distributed/    the Ray side: each worker's loop, the typed run, its report, the runtime environment
    checkpointing/  checkpoints, the adaptive checkpoint policy, the loop that drives it, its simulation
    sweep/          scaling sweeps that survive crashes (python -m training.sweep)
    walkthrough/    Ray tasks and actors, for the workshop

Nothing here imports an installed package at import time: bash runs training.core.settings with the system
Python before the virtualenv exists.
"""
