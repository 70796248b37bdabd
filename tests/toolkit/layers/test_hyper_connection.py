"""mHC: Sinkhorn-Knopp keeps the mixing doubly stochastic, gradients flow, deep stacks stay bounded."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from toolkit.layers import HyperConnection, sinkhorn_knopp


def test_sinkhorn_rows_and_columns_sum_to_one_within_tolerance():
    logits = np.random.default_rng(0).normal(scale=3.0, size=(5, 5))
    for tolerance in (1e-3, 1e-6):
        w = sinkhorn_knopp(logits, iterations=200, tolerance=tolerance).numpy()
        assert np.all(w > 0)
        np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-5)        # exact after each column step
        assert np.abs(w.sum(axis=1) - 1.0).max() <= tolerance + 1e-6
    # stable in log space: logits whose exp overflows float32
    w = sinkhorn_knopp(np.array([[200.0, 0.0], [0.0, 200.0]], "float32")).numpy()
    np.testing.assert_allclose(w, np.eye(2), atol=1e-6)


def test_one_iteration_is_one_row_then_column_normalisation():
    logits = np.log(np.array([[1.0, 3.0], [2.0, 2.0]]))
    rows = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    want = rows / rows.sum(0, keepdims=True)
    np.testing.assert_allclose(sinkhorn_knopp(logits, iterations=1).numpy(), want, atol=1e-6)


def test_gradients_flow_to_the_mixing_logits_and_the_branch():
    block = HyperConnection(keras.layers.Dense(4), num_streams=3)
    streams = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    block(streams)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(block(streams) * np.arange(3, dtype="float32")[:, None])
    grads = tape.gradient(loss, block.trainable_weights)
    for weight, grad in zip(block.trainable_weights, grads):
        assert grad is not None and np.abs(grad.numpy()).sum() > 0, weight.name


def _deep_stack(constrained, depth=60, streams=4, dim=8):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((streams, dim))
    x = inputs
    for i in range(depth):
        # a zero branch isolates the mixing: x_{l+1} = W_l x_l
        branch = keras.layers.Dense(dim, kernel_initializer="zeros", name=f"f{i}")
        x = HyperConnection(branch, streams, constrained=constrained, identity_init=1.0, name=f"mix{i}")(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(2)
    for layer in model.layers:  # exp(logits) rows sum to ~1.7: the unconstrained product grows ~1.7^depth
        if isinstance(layer, HyperConnection):
            layer.mixing_logits.assign(rng.normal(-1.0, 0.5, size=(streams, streams)).astype("float32"))
    return model


def test_50_plus_blocks_stay_bounded_where_unconstrained_mixing_grows():
    x = np.random.default_rng(3).normal(size=(2, 4, 8)).astype("float32")
    bounded = np.abs(_deep_stack(True)(x).numpy()).max()
    grown = np.abs(_deep_stack(False)(x).numpy()).max()
    assert bounded <= np.abs(x).max() + 1e-4   # convex combinations never leave the inputs' range
    assert np.isfinite(grown) and grown > 1e6 * np.abs(x).max(), grown


def test_bad_options_name_the_value():
    with pytest.raises(ValueError, match="num_streams=0"):
        HyperConnection(keras.layers.Dense(2), num_streams=0)
    with pytest.raises(ValueError, match="expects 3 streams"):
        HyperConnection(keras.layers.Dense(2), num_streams=3)(np.zeros((1, 2, 2), "float32"))


def test_config_and_keras_round_trip(tmp_path):
    branch = keras.Sequential([keras.layers.LayerNormalization(), keras.layers.Dense(5, activation="gelu")])
    harness.run_layer_test(HyperConnection, {"branch": branch, "num_streams": 2, "iterations": 5},
                           np.random.default_rng(4).normal(size=(2, 3, 2, 5)).astype("float32"),
                           expected_output_shape=(2, 3, 2, 5), tmp_dir=str(tmp_path),
                           fresh_process=False)  # the fresh-process reload: tests/toolkit/layers/test_custom_objects.py
