"""MC dropout: T stochastic passes -> mean and variance (the notes' formula), dropout on, BatchNorm off."""

import keras
import numpy as np
import pytest

from toolkit.training.mc_dropout import dropout_layers, mc_dropout_predict


def _bn_model(rate):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dropout(rate)(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    bn = model.layers[2]
    bn.moving_mean.assign(np.full(16, 0.3, "float32"))  # statistics far from any batch's: training=True would differ
    bn.moving_variance.assign(np.full(16, 4.0, "float32"))
    return model


def test_rate_zero_gives_zero_variance_and_the_plain_inference_prediction():
    model = _bn_model(0.0)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    out = mc_dropout_predict(model, x, samples=7, seed=3)
    assert float(np.max(out["variance"])) == 0.0
    np.testing.assert_allclose(out["mean"].numpy(), model(x, training=False).numpy(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(model(x, training=True).numpy(), model(x, training=False).numpy(), atol=1e-3)


def test_a_linear_readout_matches_the_analytic_mean_and_variance():
    """y = w . dropout(h) + b with inverted dropout (keep 1-p, scale 1/(1-p)): E[y] = w . h + b (the
    deterministic prediction) and Var[y] = p/(1-p) sum_j w_j^2 h_j^2."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="readout")(keras.layers.Dropout(0.3)(hidden))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")
    out = mc_dropout_predict(model, x, samples=4000, seed=0)
    h = model.get_layer("hidden")(x).numpy()
    w = model.get_layer("readout").kernel.numpy()[:, 0]
    variance = 0.3 / 0.7 * np.sum((w * h) ** 2, axis=1)
    deterministic = model(x, training=False).numpy()[:, 0]
    # 4000 passes: the mean is within 4 standard errors, the variance within 10%
    assert np.all(np.abs(out["mean"].numpy()[:, 0] - deterministic) < 4 * np.sqrt(variance / 4000))
    np.testing.assert_allclose(out["variance"].numpy()[:, 0], variance, rtol=0.1)
    assert np.all(variance > 0)


def test_seeded_passes_repeat_and_nested_dropout_is_found():
    model = _bn_model(0.5)
    outer = keras.Sequential([keras.Input((6,)), model, keras.layers.Dropout(0.1)])
    assert len(dropout_layers(outer)) == 2
    x = np.ones((2, 6), "float32")
    first, again = mc_dropout_predict(outer, x, 5, seed=4), mc_dropout_predict(outer, x, 5, seed=4)
    np.testing.assert_array_equal(first["mean"].numpy(), again["mean"].numpy())
    assert float(np.max(first["variance"])) > 0
    # the layers are restored: a plain call is deterministic again
    np.testing.assert_array_equal(outer(x).numpy(), outer(x).numpy())
    with pytest.raises(ValueError, match="samples must be >= 1"):
        mc_dropout_predict(outer, x, 0)
