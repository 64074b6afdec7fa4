"""The test scoring's weights come from what every rank already read together, not from a collective of its own
after model.fit: they must be exactly the weights model.fit ended with, with or without early stopping."""

import numpy as np
import pytest

from training.distributed.ray_worker import final_weights


class Recorder:
    """EpochEnd's part in this: the weights read at each epoch's end."""

    def __init__(self):
        self.weights = None


@pytest.mark.parametrize("early_stopping", [False, True])
def test_the_weights_for_scoring_are_those_model_fit_ended_with(early_stopping):
    from training.core.tf_env import configure_tensorflow

    tf, _ = configure_tensorflow(1)
    tf.keras.utils.set_random_seed(0)  # the same start whatever ran before in this process
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, size=64)
    model = tf.keras.Sequential([tf.keras.layers.Dense(2, activation="softmax", input_shape=(4,))])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    recorder = Recorder()
    read = tf.keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: setattr(recorder, "weights", model.get_weights()))
    # The last epoch's rate throws the weights far off, so an earlier epoch is the best one.
    blow_up = tf.keras.callbacks.LearningRateScheduler(lambda epoch, rate: 1e4 if epoch == 5 else 0.05)
    callbacks = [tf.keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)] if early_stopping else []
    callbacks += [blow_up, read]  # the kit's order: the standard callbacks first, EpochEnd last
    model.fit(x, y, validation_data=(x[:16], y[:16]), epochs=6, batch_size=16, callbacks=callbacks, verbose=0)

    chosen = final_weights(callbacks, recorder)
    assert all(np.array_equal(a, b) for a, b in zip(chosen, model.get_weights()))
    if early_stopping:
        assert callbacks[0].best_epoch < 5, "the last epoch must not be the best"
        assert not all(np.array_equal(a, b) for a, b in zip(recorder.weights, model.get_weights()))


def test_without_a_fitted_epoch_the_weights_are_read_after_all():
    assert final_weights([], Recorder()) is None  # score_test_shard then reads the model's weights itself
