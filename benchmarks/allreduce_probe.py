"""The per-step gradient all-reduce on its own: N processes under MultiWorkerMirroredStrategy (TF_CONFIG on
loopback, one CPU each, as the kit's Ray workers), all-reducing tensors shaped like the model's gradients the
way Keras' optimizer does (one batch_reduce_to over every gradient), with no training around it.

    .venv/bin/python -m benchmarks.allreduce_probe [--workers 2] [--steps 20] [--bytes-per-pack 0] [--dtype float32]

Prints one JSON line: the median and min-max seconds per all-reduce, and the bytes each worker contributes.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = ("float32", "float16", "bfloat16")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def child(steps, bytes_per_pack, dtype_name):
    from training.core.tf_env import configure_tensorflow

    tf, _ = configure_tensorflow(1)
    from training.core.model import build_model

    options = tf.distribute.experimental.CommunicationOptions(bytes_per_pack=bytes_per_pack)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    with strategy.scope():
        variables = build_model(seed=0).trainable_variables
    dtype = tf.as_dtype(dtype_name)
    grads = [tf.random.uniform(v.shape, dtype=dtype) for v in variables]

    @tf.function
    def reduce_all():
        def replica_fn():
            ctx = tf.distribute.get_replica_context()
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads, options=options)
        return strategy.run(replica_fn)

    reduce_all()  # builds the collective group and traces
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        out = reduce_all()
        _ = [strategy.experimental_local_results(t)[0].numpy() for t in out[:1]]
        times.append(time.perf_counter() - started)
    nbytes = sum(int(g.shape.num_elements()) * dtype.size for g in grads)
    return {"seconds": times, "bytes": nbytes, "tensors": len(grads)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--bytes-per-pack", type=int, default=0, help="0: one pack (TensorFlow's default)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="what the gradients are all-reduced as")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tf-config", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        os.environ["TF_CONFIG"] = args.tf_config
        print(json.dumps(child(args.steps, args.bytes_per_pack, args.dtype)), flush=True)
        return
    ports = free_ports(args.workers)
    cpus = sorted(os.sched_getaffinity(0))
    procs = []
    for i in range(args.workers):
        tf_config = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                "task": {"type": "worker", "index": i}})
        cmd = [sys.executable, "-m", "benchmarks.allreduce_probe", "--child", str(i), "--tf-config", tf_config, "--steps", str(args.steps),
               "--bytes-per-pack", str(args.bytes_per_pack), "--dtype", args.dtype]
        pin = ["taskset", "-c", str(cpus[i % len(cpus)])] if len(cpus) >= args.workers else []
        procs.append(subprocess.Popen(pin + cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                      env=dict(os.environ, PYTHONPATH=REPO)))
    outs = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"error: all-reduce probe worker failed (exit {proc.returncode})")
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    # A step's all-reduce ends when the slowest worker has the result.
    per_step = [max(o["seconds"][k] for o in outs) for k in range(args.steps)]
    print(json.dumps({"workers": args.workers, "bytes_per_worker": outs[0]["bytes"], "tensors": outs[0]["tensors"],
                      "bytes_per_pack": args.bytes_per_pack, "dtype": args.dtype,
                      "median_seconds": statistics.median(per_step), "min_seconds": min(per_step),
                      "max_seconds": max(per_step), "n": len(per_step)}))


if __name__ == "__main__":
    main()
