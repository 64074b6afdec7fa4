"""The kit's one model: the CIFAR-10 CNN that the baseline and every Ray worker train.

Three convolutional blocks of 64, 128 and 256 filters (two 3x3 convolutions each, batch normalization, max
pooling, dropout), a dense layer of 512 and a softmax over 10 classes: about 3.25M parameters and about
0.93 GFLOP per training image (forward and backward), so a 2-core laptop trains an epoch in minutes.
"""

from data import IMAGE_SHAPE, NUM_CLASSES

CONV_FILTERS = (64, 128, 256)
DENSE_UNITS = 512
CONV_DROPOUT = 0.25
DENSE_DROPOUT = 0.5
# Keras' default of 0.99 needs hundreds of steps before the moving statistics that validation and test use
# match the weights; quick runs take tens of steps per epoch, and with 0.99 scored near chance for it.
BN_MOMENTUM = 0.9


def build_model(learning_rate=1e-3, input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, seed=None):
    """Builds and compiles the CNN. Under a tf.distribute strategy, call it inside strategy.scope() so the
    variables are mirrored across workers."""
    import tensorflow as tf

    if seed is not None:
        tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    model = tf.keras.Sequential(name="cifar10_cnn")
    model.add(layers.Input(shape=input_shape))
    for filters in CONV_FILTERS:
        for _ in range(2):
            model.add(layers.Conv2D(filters, 3, padding="same", use_bias=False))
            model.add(layers.BatchNormalization(momentum=BN_MOMENTUM))
            model.add(layers.Activation("relu"))
        model.add(layers.MaxPooling2D())
        model.add(layers.Dropout(CONV_DROPOUT))
    model.add(layers.Flatten())
    model.add(layers.Dense(DENSE_UNITS, use_bias=False))
    model.add(layers.BatchNormalization(momentum=BN_MOMENTUM))
    model.add(layers.Activation("relu"))
    model.add(layers.Dropout(DENSE_DROPOUT))
    model.add(layers.Dense(num_classes, activation="softmax"))
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
