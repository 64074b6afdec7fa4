"""The kit's one model: the CIFAR-10 CNN that the baseline and every Ray worker train.

Three convolutional blocks of 64, 128 and 256 filters (two 3x3 convolutions each, batch normalization, max
pooling, dropout), a dense layer of 512 and a softmax over 10 classes: about 3.25M parameters and about
0.93 GFLOP per training image (forward and backward), so a 2-core laptop trains an epoch in minutes.
"""

from training.core.data import IMAGE_SHAPE, NUM_CLASSES
from training.core.settings.table import ALLREDUCE_DTYPES, BY_NAME  # noqa: F401  (ALLREDUCE_DTYPES: interface)

CONV_FILTERS = (64, 128, 256)
DENSE_UNITS = 512
CONV_DROPOUT = 0.25
DENSE_DROPOUT = 0.5
# The BN_MOMENTUM row owns the default and says why (Keras' 0.99 lags the weights in runs of tens of steps).
BN_MOMENTUM = float(BY_NAME["BN_MOMENTUM"].default)


def _optimizer(tf, learning_rate, allreduce_dtype):
    """Adam; with a narrower `allreduce_dtype`, the gradients cross workers in it and are widened back before
    the update, so each step's all-reduce moves half the bytes (measured alone on loopback, 2 workers, the 13 MB
    of this model's gradients: 50 ms in float32, 20 ms in bfloat16; benchmarks/allreduce_probe.py). bfloat16
    keeps float32's range, so small gradients do not underflow as they can in float16."""
    if allreduce_dtype in (None, "float32"):
        return tf.keras.optimizers.Adam(learning_rate=learning_rate)
    wire = tf.as_dtype(allreduce_dtype)

    class NarrowAllReduceAdam(tf.keras.optimizers.Adam):
        def aggregate_gradients(self, grads_and_vars):
            pairs = [(tf.cast(g, wire), v) for g, v in grads_and_vars]
            return [(tf.cast(g, v.dtype), v) for g, v in super().aggregate_gradients(pairs)]

    return NarrowAllReduceAdam(learning_rate=learning_rate)


def build_model(learning_rate=1e-3, input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, seed=None,
                allreduce_dtype=None, bn_momentum=BN_MOMENTUM):
    """Builds and compiles the CNN. Under a tf.distribute strategy, call it inside strategy.scope() so the
    variables are mirrored across workers. `allreduce_dtype` (one of ALLREDUCE_DTYPES) is what gradients are
    all-reduced in across workers; only a multi-worker run has any all-reduce to narrow."""
    import tensorflow as tf

    if seed is not None:
        tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    model = tf.keras.Sequential(name="cifar10_cnn")
    model.add(layers.Input(shape=input_shape))
    for filters in CONV_FILTERS:
        for _ in range(2):
            model.add(layers.Conv2D(filters, 3, padding="same", use_bias=False))
            model.add(layers.BatchNormalization(momentum=bn_momentum))
            model.add(layers.Activation("relu"))
        model.add(layers.MaxPooling2D())
        model.add(layers.Dropout(CONV_DROPOUT))
    model.add(layers.Flatten())
    model.add(layers.Dense(DENSE_UNITS, use_bias=False))
    model.add(layers.BatchNormalization(momentum=bn_momentum))
    model.add(layers.Activation("relu"))
    model.add(layers.Dropout(DENSE_DROPOUT))
    model.add(layers.Dense(num_classes, activation="softmax"))
    model.compile(
        optimizer=_optimizer(tf, learning_rate, allreduce_dtype),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
