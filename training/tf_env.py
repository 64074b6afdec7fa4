"""Process-wide TensorFlow setup. Call configure_tensorflow() before anything imports tensorflow.

Two things must be right in every process that trains, the driver's and each Ray worker's:
- Keras 2 (tf-keras). TensorFlow 2.21 defaults to Keras 3, whose model.fit under MultiWorkerMirroredStrategy
  fails with "Attempt to convert a value (PerReplica...)"; TF_USE_LEGACY_KERAS=1 selects tf-keras, and it is
  read once, at import.
- Threads. A Ray worker given one CPU that lets TensorFlow size its pools from the machine's cores fights the
  other workers for them (measured 14% slower), and the benchmark's numbers stop meaning "N workers of C CPUs".
  The pools are fixed before TensorFlow's runtime starts, which is the only time they can be set.
"""

import os

LEGACY_KERAS_ENV = {"TF_USE_LEGACY_KERAS": "1"}


def available_cpus():
    """CPUs this process may run on (affinity-aware, unlike os.cpu_count on a pinned container)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_tensorflow(threads=None):
    """Selects tf-keras, quiets TensorFlow's C++ logs and holds its thread pools to `threads` CPUs
    (all available CPUs when None). Returns the tensorflow module and the thread settings in force."""
    os.environ.update(LEGACY_KERAS_ENV)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    threads = threads or available_cpus()
    # oneDNN's OpenMP pool, where a build uses one, follows the same share.
    os.environ["OMP_NUM_THREADS"] = str(threads)
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
