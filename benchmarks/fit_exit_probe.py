"""How long model.fit takes to return after Keras' end of training under MultiWorkerMirroredStrategy, outside Ray:
2 processes on loopback (TF_CONFIG, one CPU each, as the kit's workers), the kit's model on digits shards, FITS
fits of 2 epochs each per process.

    .venv/bin/python -m benchmarks.fit_exit_probe [--fits 6] [--keep] [--buffer N]

--keep holds the training iterator past fit (as ray_worker.keep_iterators does) and then times deleting it;
--buffer sets tf.distribute.InputOptions(experimental_per_replica_buffer_size=N). Prints, per process, each fit's
"exit/delete" seconds: fit's return after on_train_end, and deleting the kept iterator afterwards.
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time

from benchmarks.allreduce_probe import free_ports

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 32


def child(fits, keep, buffer):
    from training.core.tf_env import configure_tensorflow

    tf, _ = configure_tensorflow(1)
    from training.core import data
    from training.core.model import build_model

    rank, world = json.loads(os.environ["TF_CONFIG"])["task"]["index"], 2
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    ds = data.load_dataset("digits", None, None, None, 0.1, 42)
    train = data.shard_indices(len(ds.y_train), rank, world, BATCH)
    val = data.even_shard(len(ds.y_val), rank, world)
    options = None if buffer is None else tf.distribute.InputOptions(experimental_per_replica_buffer_size=buffer)
    with strategy.scope():
        model = build_model(learning_rate=0.002, seed=1)
    results = []
    for _ in range(fits):
        train_ds = strategy.distribute_datasets_from_function(lambda _: data.make_tf_dataset(
            ds.x_train[train], ds.y_train[train], BATCH, shuffle_seed=rank, drop_remainder=True, repeat=True),
            options=options)
        val_ds = strategy.distribute_datasets_from_function(
            lambda _: data.make_tf_dataset(ds.x_val[val], ds.y_val[val], BATCH, repeat=True), options=options)
        kept, ended = [], {}

        def on_train_end(logs=None):
            ended["at"] = time.time()
            if keep:  # fit's own local, which it drops as it returns
                frame = sys._getframe()
                while frame is not None and not (frame.f_code.co_name == "fit" and "iterator" in frame.f_locals):
                    frame = frame.f_back
                kept.append(frame.f_locals["iterator"])

        model.fit(train_ds, validation_data=val_ds, epochs=2, steps_per_epoch=len(train) // BATCH,
                  validation_steps=-(-len(val) // BATCH), verbose=0,
                  callbacks=[tf.keras.callbacks.LambdaCallback(on_train_end=on_train_end)])
        exit_seconds = time.time() - ended["at"]
        started = time.time()
        kept.clear()
        gc.collect()
        results.append({"exit": exit_seconds, "delete": time.time() - started})
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="hold the training iterator past fit, then delete it")
    parser.add_argument("--buffer", type=int, default=None, help="InputOptions' experimental_per_replica_buffer_size")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.fits, args.keep, args.buffer)), flush=True)
        return
    ports = free_ports(2)
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
        argv = [sys.executable, "-m", "benchmarks.fit_exit_probe", "--child", "--fits", str(args.fits)]
        argv += ["--keep"] if args.keep else []
        argv += ["--buffer", str(args.buffer)] if args.buffer is not None else []
        procs.append(subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                      env=dict(os.environ, TF_CONFIG=json.dumps(tf_config), PYTHONPATH=REPO,
                                               TF_CPP_MIN_LOG_LEVEL="3", MALLOC_ARENA_MAX="1",
                                               TF_CPU_ALLOCATOR_USE_BFC="true")))
    for index, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"error: probe process {index} failed (exit {proc.returncode})")
        fits = json.loads(out.strip().splitlines()[-1])
        print(f"process {index}: " + " ".join(f"{f['exit']:.2f}/{f['delete']:.2f}" for f in fits), flush=True)


if __name__ == "__main__":
    main()
