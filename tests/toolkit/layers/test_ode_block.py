"""EulerODEBlock: N weight-tied Euler steps converge to the exact solution exp(A) y0 with error ~ 1/N."""

import keras
import numpy as np
import pytest
from scipy.linalg import expm

from tests import harness
from toolkit.layers import ClassToken, EulerODEBlock


def _linear(a):
    layer = keras.layers.Dense(a.shape[0], use_bias=False)
    layer.build((None, a.shape[0]))
    layer.kernel.assign(a.T.astype("float32"))  # row vectors: F(y) = y A^T, i.e. dy/dt = A y per column
    return layer


def test_linear_f_converges_to_exp_a_with_first_order_error():
    a = np.array([[-0.5, 1.0, 0.0], [-1.0, -0.2, 0.3], [0.1, 0.0, -0.4]])
    y0 = np.array([[1.0, -2.0, 0.5]], "float32")
    exact = (expm(a) @ y0[0].astype("float64"))
    errors = []
    for steps in (4, 8, 16, 32, 64):
        block = EulerODEBlock(_linear(a), steps=steps)
        errors.append(np.abs(block(y0).numpy()[0] - exact).max())
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(np.diff(errors) < 0), errors
    np.testing.assert_allclose(ratios, 2.0, rtol=0.15)  # halving h halves the error: first order
    assert errors[-1] < 0.02


def test_one_step_with_unit_interval_is_a_residual_block():
    f = _linear(np.array([[0.3, -0.1], [0.2, 0.5]]))
    y = np.array([[1.0, 2.0]], "float32")
    np.testing.assert_allclose(EulerODEBlock(f, steps=1)(y).numpy(), y + f(y).numpy(), atol=1e-6)
    assert EulerODEBlock(f, steps=4, t_end=2.0).step_size == 0.5


def test_weights_are_tied_across_steps():
    block = EulerODEBlock(keras.layers.Dense(4), steps=10)
    block(np.zeros((1, 4), "float32"))
    assert len(block.trainable_weights) == 2  # one kernel, one bias for all 10 steps


def test_bad_options_name_the_value():
    with pytest.raises(ValueError, match="steps=0"):
        EulerODEBlock(keras.layers.Dense(2), steps=0)


def test_config_and_keras_round_trip(tmp_path):
    harness.run_layer_test(EulerODEBlock, {"branch": keras.layers.Dense(3, activation="tanh"), "steps": 3},
                           np.random.default_rng(0).normal(size=(2, 3)).astype("float32"),
                           expected_output_shape=(2, 3), tmp_dir=str(tmp_path),
                           fresh_process=False)  # the fresh-process reload: tests/toolkit/layers/test_custom_objects.py


def test_class_token_saves_and_reloads(tmp_path):
    harness.run_layer_test(ClassToken, {"initializer": "random_normal"},
                           np.ones((2, 4, 3), "float32"), expected_output_shape=(2, 5, 3), tmp_dir=str(tmp_path),
                           fresh_process=False)  # the fresh-process reload: tests/toolkit/layers/test_custom_objects.py
