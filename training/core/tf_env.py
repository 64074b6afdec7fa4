"""Process-wide TensorFlow setup. Call configure_tensorflow() before anything imports tensorflow.

Two things must be right in every process that trains, the driver's and each Ray worker's:
- Keras 2 (tf-keras). TensorFlow 2.21 defaults to Keras 3, whose model.fit under MultiWorkerMirroredStrategy
  fails with "Attempt to convert a value (PerReplica...)"; TF_USE_LEGACY_KERAS=1 selects tf-keras, and it is
  read once, at import.
- Threads. A Ray worker given one CPU that lets TensorFlow size its pools from the machine's cores fights the
  other workers for them (measured 14% slower), and the benchmark's numbers stop meaning "N workers of C CPUs".
  The pools are fixed before TensorFlow's runtime starts, which is the only time they can be set.
- Memory. Under any tf.distribute strategy the input batches come through a multi-device iterator on tf.data's
  own threads. With glibc's per-thread malloc arenas, the step's large tensors were then handed back to the
  kernel and faulted in again every step: 18 times the page faults and a step about 30% slower than the same
  model without a strategy (benchmarks/allocator_probe.py measures it). TensorFlow's BFC allocator keeps freed
  tensor memory for reuse, and a single malloc arena keeps the rest from bouncing between threads; together
  they bring the strategy's step back to that of the plain model. The arena limit is reliable only from the
  environment a process starts with, so every Ray worker gets both through the job's runtime_env (and the
  image's ENV); mallopt() here is the fallback for a process started by hand, such as the baseline, which uses
  no strategy and measured the same with or without the settings.
"""

import ctypes
import ctypes.util
import os

LEGACY_KERAS_ENV = {"TF_USE_LEGACY_KERAS": "1"}
ALLOCATOR_ENV = {"TF_CPU_ALLOCATOR_USE_BFC": "true", "MALLOC_ARENA_MAX": "1"}
# What every Ray worker process needs in its environment from the moment it starts.
WORKER_ENV = {**LEGACY_KERAS_ENV, **ALLOCATOR_ENV}
_M_ARENA_MAX = -8  # glibc's mallopt parameter number
WORKER_CPUS_VAR = "KIT_WORKER_CPUS"
# A Ray Train worker's CPU share, for the TensorFlow import its process starts with (import_at_process_start).
TF_THREADS_VAR = "KIT_TF_THREADS"
COMPUTE_THREAD_PREFIX = "tf_Compute"


def limit_malloc_arenas():
    """One glibc malloc arena for the threads this process creates from now on. True when it took effect;
    False off glibc (where the environment variable does nothing either)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        return bool(ctypes.CDLL(libc_name).mallopt(_M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        return False


def available_cpus_set():
    """The CPU ids this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def available_cpus():
    """CPUs this process may run on (affinity-aware, unlike os.cpu_count on a pinned container)."""
    return len(available_cpus_set())


def worker_cpus(environ=None):
    """The CPUs in KIT_WORKER_CPUS ("0" or "2,3"), which the kit's local cluster gives each worker node, or None
    when it is unset (a Kubernetes pod: its CPU limit does the holding)."""
    value = (os.environ if environ is None else environ).get(WORKER_CPUS_VAR, "").strip()
    if not value:
        return None
    try:
        cpus = sorted({int(part) for part in value.split(",")})
    except ValueError:
        raise RuntimeError(f"{WORKER_CPUS_VAR}='{value}' is not a CPU list (allowed: comma-separated CPU ids, "
                           f"e.g. 0 or 2,3)") from None
    allowed = available_cpus_set()
    if not set(cpus) <= allowed:
        raise RuntimeError(f"{WORKER_CPUS_VAR}='{value}' names CPUs this process may not use (allowed: "
                           f"{','.join(map(str, sorted(allowed)))})")
    return cpus


def pin_compute_threads(cpus, prefix=COMPUTE_THREAD_PREFIX):
    """Holds TensorFlow's op-running threads (the pool it names tf_Compute) to `cpus`, and only those. Two
    workers on one machine otherwise share both cores with each other and with Ray's processes: measured on 2
    cores, each worker's compute thread then waited 3-4 s per 17 s epoch for a CPU. Only those threads: with
    every thread of the worker held to its core (tf.data's, gRPC's), model.fit's exit stalled for up to 17 s
    tearing down its input iterators. Call it once TensorFlow has started (after the model is built); returns
    how many threads it pinned."""
    pinned = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/comm") as handle:
                if not handle.read().startswith(prefix):
                    continue
            os.sched_setaffinity(int(tid), cpus)
            pinned += 1
        except OSError:
            continue  # a thread that ended in between
    return pinned


def prepare_environment(threads=None, allocator=True):
    """What must be in the environment before TensorFlow is imported; returns the thread count in force."""
    os.environ.update(LEGACY_KERAS_ENV)
    if allocator:
        os.environ.update(ALLOCATOR_ENV)
        limit_malloc_arenas()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    threads = threads or available_cpus()
    # oneDNN's OpenMP pool, where a build uses one, follows the same share.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    return threads


_import_thread = None
# Who started this process's TensorFlow import (start_import's `by`), recorded in each Ray worker's facts.
import_started_by = None


def start_import(threads, by="caller"):
    """Imports TensorFlow and tf-keras on a thread from now on, so that a process with something else to wait for
    (a Ray Train worker, while its group is set up) has them ready when configure_tensorflow() asks: importing is
    a few seconds of CPU, and no thread pool is fixed by it (only running an op starts the runtime).
    configure_tensorflow(threads) waits for it, through Python's import lock, if it has not finished. Once per
    process: a second call returns the first call's thread."""
    import importlib
    import threading

    global _import_thread, import_started_by
    if _import_thread is not None:
        return _import_thread
    prepare_environment(threads)
    import_started_by = by

    def load():
        for name in ("tensorflow", "tf_keras"):
            importlib.import_module(name)

    _import_thread = threading.Thread(target=load, name="kit-tf-import", daemon=True)
    _import_thread.start()
    return _import_thread


def import_at_process_start():
    """Ray's worker_process_setup_hook for the kit's Ray Train workers (runtime_env.train_worker_env): the import
    starts as the worker process starts, before Ray Train has made it a worker, so it runs beside Ray Train's own
    imports and set-up of the group instead of after them. TF_THREADS_VAR holds the worker's CPU share. Never
    raises: a hook that fails would fail the worker, and configure_tensorflow() imports TensorFlow all the same."""
    try:
        start_import(int(os.environ.get(TF_THREADS_VAR) or 0) or None, by="process start")
    except Exception:  # noqa: BLE001 - an early import is an optimization; the worker's own import reports errors
        pass


def configure_tensorflow(threads=None, allocator=True):
    """Selects tf-keras, quiets TensorFlow's C++ logs and holds its thread pools to `threads` CPUs
    (all available CPUs when None). allocator=False leaves glibc's and TensorFlow's allocator defaults (for the
    benchmark's before-and-after only). Returns the tensorflow module and the thread settings in force."""
    threads = prepare_environment(threads, allocator)
    import tensorflow as tf

    # MultiWorkerMirroredStrategy logs every all-reduce it builds at INFO; progress lines drown in them.
    tf.get_logger().setLevel("ERROR")

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        # One inter-op thread: the CNN is a chain of big ops, so running ops side by side only oversubscribes.
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as err:  # the runtime already started: the pools can no longer change
        raise RuntimeError(f"TensorFlow started before its threads were set: {err}") from err
    return tf, {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }
