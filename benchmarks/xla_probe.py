"""Does XLA pay for the kit's CNN on this CPU? The same model and batch, trained with Keras' jit_compile off and
on, each in a fresh process held to the given threads; prints one JSON line per case with the median step.

    .venv/bin/python -m benchmarks.xla_probe [--threads 1] [--batch 64] [--steps 12]   (about 2 minutes)
"""

import argparse
import json
import statistics
import subprocess
import sys
import time



def child(threads, batch, steps, jit):
    from training.core.tf_env import configure_tensorflow

    tf, _ = configure_tensorflow(threads)
    import numpy as np

    from training.core.model import build_model

    model = build_model(seed=0)
    model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + model.input_shape[1:], dtype=np.float32)
    y = rng.integers(0, 10, size=batch)
    model.train_on_batch(x, y)  # traces (and with XLA compiles) the step
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - started)
    return {"jit_compile": jit, "threads": threads, "batch": batch, "median_step_seconds": statistics.median(times),
            "min": min(times), "max": max(times), "n": steps}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--child", choices=("off", "on"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.threads, args.batch, args.steps, args.child == "on")), flush=True)
        return
    for case in ("off", "on"):
        out = subprocess.run([sys.executable, "-m", "benchmarks.xla_probe", "--child", case, "--threads", str(args.threads),
                              "--batch", str(args.batch), "--steps", str(args.steps)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"error: the XLA probe failed with jit_compile {case}: {out.stderr[-400:]}")
        print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
