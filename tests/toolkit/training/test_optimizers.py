"""Each optimiser's first updates against the lecture notes' formulas (F3:5164-5299) on a tiny problem."""

import numpy as np
import pytest

from toolkit.training.optimizers import OPTIMIZERS, build_optimizer, optimizer_of

THETA0 = np.array([1.0, -2.0, 0.5], "float32")


def _steps(optimizer, grads):
    """Applies the given gradients in turn; returns theta after each step."""
    import keras

    theta = keras.Variable(THETA0.copy())
    seen = []
    for g in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.asarray(g, "float32")), theta)])
        seen.append(np.asarray(theta.numpy(), "float64"))
    return seen


G0, G1 = np.array([0.5, -1.0, 2.0]), np.array([0.25, 0.5, -1.0])
ETA = 0.1


def test_sgd_with_momentum_is_the_notes_velocity_form():
    theta1, theta2 = _steps(build_optimizer("sgd", ETA), [G0, G1])
    v1 = G0
    v2 = 0.9 * v1 + G1  # v <- beta v + g; theta <- theta - eta v
    np.testing.assert_allclose(theta1, THETA0 - ETA * v1, rtol=1e-6)
    np.testing.assert_allclose(theta2, THETA0 - ETA * v1 - ETA * v2, rtol=1e-6)
    [plain] = _steps(build_optimizer("sgd", ETA, momentum=0.0), [G0])
    np.testing.assert_allclose(plain, THETA0 - ETA * G0, rtol=1e-6)


def test_nesterov_takes_the_look_ahead_step():
    # Keras keeps Sutskever's reformulation (the look-ahead point as the variable): step 1 = -eta (1 + beta) g
    [theta1] = _steps(build_optimizer("sgd", ETA, nesterov=True), [G0])
    np.testing.assert_allclose(theta1, THETA0 - ETA * (1 + 0.9) * G0, rtol=1e-6)


def test_adagrad_accumulates_squared_gradients_from_zero():
    theta1, theta2 = _steps(build_optimizer("adagrad", ETA), [G0, G1])
    big_g1, big_g2 = G0 ** 2, G0 ** 2 + G1 ** 2
    np.testing.assert_allclose(theta1, THETA0 - ETA * G0 / (np.sqrt(big_g1) + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(theta2, theta1 - ETA * G1 / (np.sqrt(big_g2) + 1e-8), rtol=1e-5)


def test_rmsprop_keeps_a_moving_average_of_squares():
    theta1, theta2 = _steps(build_optimizer("rmsprop", ETA), [G0, G1])
    s1 = 0.1 * G0 ** 2
    s2 = 0.9 * s1 + 0.1 * G1 ** 2
    np.testing.assert_allclose(theta1, THETA0 - ETA * G0 / np.sqrt(s1), rtol=1e-5)
    np.testing.assert_allclose(theta2, theta1 - ETA * G1 / np.sqrt(s2), rtol=1e-5)


def _adam_reference(grads, eta, decay=0.0):
    theta, m, v, out = THETA0.astype("float64"), 0.0, 0.0, []
    for t, g in enumerate(grads):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g ** 2
        m_hat, v_hat = m / (1 - 0.9 ** (t + 1)), v / (1 - 0.999 ** (t + 1))
        theta = theta - eta * m_hat / (np.sqrt(v_hat) + 1e-8) - eta * decay * theta
        out.append(theta)
    return out


def test_adam_matches_the_bias_corrected_update_with_the_notes_epsilon():
    optimizer = build_optimizer("adam", 1e-3)
    assert (float(optimizer.beta_1), float(optimizer.beta_2), optimizer.epsilon) == (0.9, 0.999, 1e-8)
    for got, want in zip(_steps(optimizer, [G0, G1]), _adam_reference([G0, G1], 1e-3)):
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_adamw_decays_the_weights_apart_from_the_gradient_step():
    for got, want in zip(_steps(build_optimizer("adamw", 1e-2, weight_decay=0.1), [G0, G1]),
                         _adam_reference([G0, G1], 1e-2, decay=0.1)):
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_clipnorm_clips_the_global_norm():
    [theta1] = _steps(build_optimizer("sgd", 1.0, momentum=0.0, clipnorm=1.0), [[3.0, 4.0, 0.0]])
    np.testing.assert_allclose(theta1, THETA0 - np.array([0.6, 0.8, 0.0]), rtol=1e-6)


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="momentum must be >= 0. Received: momentum=-0.5"):
        build_optimizer("sgd", 0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        build_optimizer("adam", 0.0)


def test_every_app_config_reaches_its_optimizer():
    from apps.config import make_config
    from apps.specs.image_classifier import Config

    config = make_config(Config, optimizer="sgd", learning_rate=0.05, nesterov=True, weight_decay=1e-4)
    optimizer = optimizer_of(config)
    assert type(optimizer).__name__ == "SGD" and optimizer.nesterov and optimizer.weight_decay == 1e-4
    assert float(optimizer.learning_rate) == pytest.approx(0.05)
    assert sorted(OPTIMIZERS) == ["adagrad", "adam", "adamw", "rmsprop", "sgd"]
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_config(Config, optimizer="lion")


def test_schedules_follow_the_notes_formulas():
    import math

    from toolkit.training.lr_schedules import SCHEDULES, build_schedule

    exponential = build_schedule("exponential", 0.1, steps_per_epoch=10, epochs=10, gamma=0.1)
    assert float(exponential(50)) == pytest.approx(0.1 * 0.1 ** 0.5, rel=1e-5)  # eta0 * gamma ** (t / T)
    cosine = build_schedule("cosine", 0.1, steps_per_epoch=10, epochs=10)
    assert float(cosine(25)) == pytest.approx(0.5 * 0.1 * (1 + math.cos(math.pi * 25 / 100)), rel=1e-5)
    cyclical = build_schedule("cyclical", 0.1, steps_per_epoch=10, epochs=4)  # half cycle = 40 / 4 steps
    assert [round(float(cyclical(t)), 6) for t in (0, 10, 20)] == [0.01, 0.1, 0.01]
    assert build_schedule("plateau", 0.1, 10, 10) == 0.1
    with pytest.raises(ValueError, match="lr_warmup_epochs=20 must be >= 0 and shorter than the run"):
        build_schedule("warmup-cosine", 0.1, 10, 10, warmup_epochs=20)
    with pytest.raises(ValueError, match="unknown lr_schedule 'linear'"):
        build_schedule("linear", 0.1, 10, 10)
    assert "warmup-cosine" in SCHEDULES


def test_an_app_config_schedule_reaches_the_optimizer_and_plateau_adds_its_callback():
    import keras

    from apps.config import make_config
    from apps.specs.vae import Config

    config = make_config(Config, lr_schedule="step", lr_gamma=0.5, lr_step_epochs=1, epochs=3, learning_rate=0.2)
    optimizer = optimizer_of(config, steps_per_epoch=4)
    assert [round(float(optimizer._learning_rate(t)), 6) for t in (0, 4, 8)] == [0.2, 0.1, 0.05]
    assert isinstance(optimizer_of(config)._learning_rate, keras.Variable)  # no steps known: the constant rate

    import types

    from apps import vae

    ctx = types.SimpleNamespace(config=make_config(Config, lr_schedule="plateau"), run_dir=None,
                                data=types.SimpleNamespace(validation=None, train=None))
    kinds = [type(c).__name__ for c in vae.APP.callbacks(ctx)]
    assert "ReduceLROnPlateau" in kinds
