"""Why the quick run's recipe is what it is (training/core/settings/recipes.py QUICK): the kit's model on digits in one
process, one CPU thread, seed 42, test accuracy after a given number of optimizer steps.

    .venv/bin/python -m benchmarks.quick_recipe_probe            # about 3 minutes on 2 cores

For each recipe it prints the test accuracy with batch normalization's moving statistics (what evaluation uses)
and with the statistics recomputed from the final weights on the training images. A recipe whose two figures
differ widely did not take enough steps for the moving statistics to follow the weights: the old quick recipe
(16 steps of a global batch of 128, the Ray side's) is the case in point.
"""

import argparse


# (label, train samples or None for all, epochs, batch, learning rate)
RECIPES = [
    ("old quick, Ray's global batch", 1024, 2, 128, 0.001 * 2 ** 0.5),
    ("old quick, baseline's batch", 1024, 2, 64, 0.001),
    ("all digits, batch 64, rate 0.001", None, 2, 64, 0.001),
    ("all digits, batch 64, rate 0.002 (QUICK)", None, 2, 64, 0.002),
]


def recomputed_statistics_accuracy(tf, model, x_train, x_test, y_test):
    """Test accuracy after each batch normalization layer's statistics are set to those of the training images
    under the final weights (momentum 0: one pass replaces them)."""
    import numpy as np

    layers = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]
    for layer in layers:
        layer.momentum = 0.0
    model(x_train, training=True)
    return float((np.argmax(model(x_test, training=False), axis=1) == y_test).mean())


def probe(tf, label, samples, epochs, batch, rate, seed):
    import numpy as np

    from training.core import data
    from training.core.model import build_model

    ds = data.load_dataset("digits", None, samples, None, 0.1, seed)
    model = build_model(learning_rate=rate, seed=seed)
    train = data.make_tf_dataset(ds.x_train, ds.y_train, batch, shuffle_seed=seed, drop_remainder=True)
    model.fit(train, epochs=epochs, verbose=0)
    x_test = data.normalize_batch(ds.x_test)
    moving = float((np.argmax(model(x_test, training=False), axis=1) == ds.y_test).mean())
    steps = epochs * (len(ds.y_train) // batch)
    recomputed = recomputed_statistics_accuracy(tf, model, data.normalize_batch(ds.x_train), x_test, ds.y_test)
    print(f"{label:44} {steps:>5} steps  test accuracy {moving:.4f} (moving statistics), "
          f"{recomputed:.4f} (recomputed)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    from training.core.tf_env import configure_tensorflow

    tf, _ = configure_tensorflow(1)
    for recipe in RECIPES:
        probe(tf, *recipe, seed=args.seed)


if __name__ == "__main__":
    main()
