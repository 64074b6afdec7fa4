"""Why the kit sets allocator variables (training/core/tf_env.py): one training step of the kit's model at one thread,
with and without a tf.distribute strategy, with and without the settings. Each case runs in a fresh process
(the settings are given in its environment from the start) and reports the median step and the minor page
faults per step.

    .venv/bin/python -m benchmarks.allocator_probe [--steps 8] [--batch 64] [--repeats 3]   (about 5 minutes)

A step under a strategy takes its batch from the strategy's multi-device iterator, as model.fit does in every
Ray worker; without the settings that is where the page faults come from.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from training.core.tf_env import ALLOCATOR_ENV

CASES = [("no strategy", "plain", False), ("no strategy", "plain", True),
         ("OneDeviceStrategy", "strategy", False), ("OneDeviceStrategy", "strategy", True)]


def child(mode, allocator, steps, batch):
    from training.core.tf_env import configure_tensorflow

    tf, _ = configure_tensorflow(1, allocator=allocator)
    import numpy as np

    from training.core import data
    from training.core.model import build_model

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(batch * 16,) + data.IMAGE_SHAPE, dtype=np.uint8)
    y = rng.integers(0, 10, size=batch * 16)
    make = lambda _=None: data.make_tf_dataset(x, y, batch, shuffle_seed=1, drop_remainder=True,  # noqa: E731
                                               repeat=True)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0") if mode == "strategy" else tf.distribute.get_strategy()
    with strategy.scope():
        model = build_model(seed=0)
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(reduction="sum")

    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True)) / batch
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    if mode == "strategy":
        batches = iter(strategy.distribute_datasets_from_function(make))
        run = tf.function(lambda it: strategy.run(step, args=next(it)))
    else:
        batches = iter(make())
        run = tf.function(lambda it: step(*next(it)))
    for _ in range(3):  # tracing and warm-up
        float(run(batches))
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        float(run(batches))
        seconds.append(time.perf_counter() - started)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    print(json.dumps({"step_seconds": statistics.median(seconds), "min": min(seconds), "max": max(seconds),
                      "faults_per_step": faults / steps}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1] == "1", args.steps, args.batch)
    print(f"one training step, batch {args.batch}, 1 thread: median over {args.repeats} fresh processes of each "
          f"process's median of {args.steps} steps (min-max of those medians); cases interleaved")
    seen = {case: [] for case in CASES}
    for _ in range(args.repeats):
        for case in CASES:
            label, mode, allocator = case
            env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV}
            if allocator:
                env.update(ALLOCATOR_ENV)  # from the start, as a Ray worker gets them through the runtime_env
            proc = subprocess.run([sys.executable, "-m", "benchmarks.allocator_probe", "--steps", str(args.steps), "--batch", str(args.batch),
                                   "--child", mode, "1" if allocator else "0"], capture_output=True, text=True,
                                  env=env)
            if proc.returncode != 0:
                sys.exit(f"error: probe '{label}' failed: {proc.stderr.strip().splitlines()[-1:]}")
            seen[case].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{'input':<20} {'allocator settings':<20} {'step s':>22} {'page faults/step':>17}")
    for (label, _, allocator), runs in seen.items():
        steps = [r["step_seconds"] for r in runs]
        faults = statistics.median(r["faults_per_step"] for r in runs)
        print(f"{label:<20} {'kit' if allocator else 'defaults':<20} "
              f"{statistics.median(steps):>8.3f} ({min(steps):.3f}-{max(steps):.3f}) {faults:>17.0f}")

if __name__ == "__main__":
    sys.exit(main())
