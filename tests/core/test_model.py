"""The one model: the CNN's shape and size."""

import numpy as np

from tests.helpers.common import configured_tf

tf = configured_tf()

from training.core.model import build_model  # noqa: E402  (TensorFlow must be configured first)


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


def test_a_narrow_all_reduce_rounds_the_gradients_and_hands_back_float32():
    from training.core.model import ALLREDUCE_DTYPES

    assert ALLREDUCE_DTYPES[0] == "float32"
    exact = build_model(seed=0)
    assert type(exact.optimizer) is tf.keras.optimizers.Adam
    narrow = build_model(seed=0, allreduce_dtype="bfloat16")
    variable = narrow.trainable_variables[0]
    grad = tf.random.stateless_normal(variable.shape, seed=(1, 2))
    (reduced, same_variable), = narrow.optimizer.aggregate_gradients([(grad, variable)])
    assert same_variable is variable and reduced.dtype == tf.float32
    # One replica sums to itself, so what comes back is the gradient as bfloat16 carried it: rounded, not lost.
    expected = tf.cast(tf.cast(grad, tf.bfloat16), tf.float32)
    assert np.array_equal(reduced.numpy(), expected.numpy())
    assert not np.array_equal(reduced.numpy(), grad.numpy())
    assert np.allclose(reduced.numpy(), grad.numpy(), rtol=1e-2, atol=1e-6)


def test_bn_momentum_is_a_setting_that_reaches_every_batch_normalization_layer(monkeypatch):
    """The model's hyper-parameters are settings: BN_MOMENTUM from the environment, through the trainer's parser
    and settings.model_options, into each BatchNormalization layer (the Ray worker passes the same options)."""
    from training import baseline_training
    from training.core import settings

    monkeypatch.setenv("BN_MOMENTUM", "0.5")
    options = settings.model_options(baseline_training.parse_args([]))
    assert options == {"bn_momentum": 0.5}
    model = build_model(seed=1, **options)
    momenta = {layer.momentum for layer in model.layers if "batch_normalization" in layer.name}
    assert momenta == {0.5}
    assert {layer.momentum for layer in build_model(seed=1).layers if "batch_normalization" in layer.name} == {0.9}
