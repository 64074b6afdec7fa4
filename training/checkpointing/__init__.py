"""Checkpoints of a training run, the adaptive policy that decides when to take them, the one loop that drives
it (Ray workers, the walkthrough and the simulation alike) and the simulation that evaluates it."""
