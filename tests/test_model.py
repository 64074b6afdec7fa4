"""The one model: the CNN's shape and size."""

import numpy as np

from conftest import configured_tf

tf = configured_tf()

from model import build_model  # noqa: E402  (TensorFlow must be configured first)


def test_model_shape_and_parameter_count():
    model = build_model(seed=0)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    # 3 conv blocks (64, 128, 256), dense 512, softmax 10: counted layer by layer in the module docstring.
    assert model.count_params() == 3_252_426
    convs = [layer.filters for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    assert convs == [64, 64, 128, 128, 256, 256]


def test_outputs_are_probabilities_and_seed_fixes_weights():
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    a, b = build_model(seed=7), build_model(seed=7)
    pa = a(x, training=False).numpy()
    assert np.allclose(pa.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(pa, b(x, training=False).numpy())
