"""Small measurements the benchmark's ratios are read against: the machine's float32 peak as TensorFlow reaches
it, the model's FLOPs per training image, and the input pipeline's rate on its own."""

import os
import time


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def vector_flags():
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next(line for line in handle if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))


def peak_gflops(tf, size=2048, seconds=4.0):
    """A large float32 matmul, TensorFlow's best case on this CPU: the ceiling the CNN's rate is compared to."""
    a = tf.random.uniform((size, size))
    b = tf.random.uniform((size, size))
    step = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    step().numpy()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step().numpy()
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - started) / 1e9


def flops_per_training_image(model):
    """Multiply-adds of the convolutions and dense layers, x2 for FLOPs, x3 for a training step (the forward
    pass, then gradients with respect to inputs and to weights, each about as costly). Batch normalization,
    activations and pooling are left out: under 1% of the total."""
    import tensorflow as tf

    forward = 0
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.Conv2D):
            _, h, w, c_out = layer.output_shape
            k_h, k_w = layer.kernel_size
            forward += 2 * h * w * k_h * k_w * layer.input_shape[-1] * c_out
        elif isinstance(layer, tf.keras.layers.Dense):
            forward += 2 * layer.input_shape[-1] * layer.units
    return 3 * forward


def input_pipeline_rate(data, images=8192, batch=64):
    """Images per second the kit's tf.data pipeline delivers with no model attached."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(images,) + data.IMAGE_SHAPE, dtype=np.uint8)
    y = rng.integers(0, 10, size=images)
    ds = data.make_tf_dataset(x, y, batch, shuffle_seed=1, drop_remainder=True)
    for _ in ds.take(2):
        pass
    started = time.perf_counter()
    seen = sum(int(b[1].shape[0]) for b in ds)
    return seen / (time.perf_counter() - started)


def run_all(threads):
    from training.core.tf_env import configure_tensorflow

    tf, _ = configure_tensorflow(threads)
    from training.core import data
    from training.core.model import build_model

    return {
        "peak_gflops": peak_gflops(tf),
        "peak_threads": threads,
        "flops_per_training_image": flops_per_training_image(build_model(seed=0)),
        "flops_counting": "conv and dense multiply-adds x2, x3 for forward + two backward passes",
        "input_pipeline_images_per_second": input_pipeline_rate(data),
        "pid": os.getpid(),
    }
