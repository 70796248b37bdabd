"""MixtureOfExperts: top-k routing against the notes' sum_i gate(x)_i expert_i(x), gradients, capacity, usage."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from toolkit.layers import MixtureOfExperts
from toolkit.layers.mixture_of_experts import capacity


def _x(shape=(3, 5, 6), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _dense_reference(moe, x):
    """The notes' form by hand: softmax gate over all N experts, every expert a 2-layer FFN."""
    tokens = x.reshape(-1, x.shape[-1])
    logits = tokens @ moe.gate_kernel.numpy()
    gate = np.exp(logits - logits.max(-1, keepdims=True))
    gate /= gate.sum(-1, keepdims=True)
    out = 0
    for i in range(moe.num_experts):
        hidden = keras.activations.gelu(tokens @ moe.expert_kernel_1.numpy()[i] + moe.expert_bias_1.numpy()[i])
        out = out + gate[:, i:i + 1] * (np.asarray(hidden) @ moe.expert_kernel_2.numpy()[i] + moe.expert_bias_2.numpy()[i])
    return out.reshape(x.shape[:-1] + (-1,)), gate


def test_k_equal_to_n_is_the_dense_softmax_weighted_sum():
    x = _x()
    moe = MixtureOfExperts(num_experts=4, hidden_dim=8, top_k=4)
    got = moe(x).numpy()
    want, _ = _dense_reference(moe, x)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_top_k_weights_are_the_renormalised_gate_and_zero_elsewhere():
    x = _x()
    moe = MixtureOfExperts(num_experts=5, hidden_dim=4, top_k=2)
    moe(x)
    weights = moe.routing(x)["weights"].numpy()
    _, gate = _dense_reference(moe, x)
    top = np.argsort(-gate, axis=-1)[:, :2]
    for row, chosen in zip(range(len(weights)), top):
        expected = np.zeros(5)
        expected[chosen] = gate[row, chosen] / gate[row, chosen].sum()
        np.testing.assert_allclose(weights[row], expected, atol=1e-6)
    raw = MixtureOfExperts(num_experts=5, hidden_dim=4, top_k=2, renormalize=False)
    raw(x)
    raw.set_weights(moe.get_weights())
    np.testing.assert_allclose(raw.routing(x)["weights"].numpy().sum(-1),
                               np.take_along_axis(gate, top, -1).sum(-1), atol=1e-6)


def test_experts_outside_the_top_k_get_zero_gradient():
    x = _x((1, 6))  # one token: exactly k experts are used
    moe = MixtureOfExperts(num_experts=4, hidden_dim=3, top_k=1)
    moe(x)
    chosen = int(np.argmax(moe.routing(x)["weights"].numpy()[0]))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(moe(x) ** 2)
    grads = dict(zip([w.name for w in moe.trainable_weights], tape.gradient(loss, moe.trainable_weights)))
    for name in ("expert_kernel_1", "expert_bias_1", "expert_kernel_2", "expert_bias_2"):
        per_expert = np.abs(grads[name].numpy()).reshape(4, -1).sum(-1)
        assert per_expert[chosen] > 0, name
        assert np.all(per_expert[np.arange(4) != chosen] == 0), (name, per_expert)
    assert np.abs(grads["gate_kernel"].numpy()).sum() >= 0  # the gate trains through the chosen weight


def test_capacity_factor_drops_assignments_over_capacity_and_reports_use():
    x = _x((64, 6), seed=1)
    assert capacity(64, 4, 1, 0.5) == 8
    moe = MixtureOfExperts(num_experts=4, hidden_dim=4, top_k=1, capacity_factor=0.5)
    moe(x)
    routing = {k: v.numpy() for k, v in moe.routing(x).items()}
    kept_per_expert = (routing["weights"] > 0).sum(axis=0)
    assert kept_per_expert.max() <= 8, kept_per_expert
    assert routing["dropped"] >= 0.5 - 1e-6  # 64 tokens, 4 x 8 places
    np.testing.assert_allclose(routing["expert_use"].sum(), 1.0, atol=1e-6)
    np.testing.assert_allclose(routing["expert_use"], kept_per_expert / kept_per_expert.sum(), atol=1e-6)


def test_load_balancing_loss_is_the_switch_form_in_training_only():
    x = _x((8, 6))
    moe = MixtureOfExperts(num_experts=4, hidden_dim=4, top_k=1, load_balance_weight=0.01)
    moe(x, training=False)
    assert not moe.losses
    moe(x, training=True)
    (loss,) = moe.losses
    _, gate = _dense_reference(moe, x)
    share = np.bincount(gate.argmax(-1), minlength=4) / 8
    np.testing.assert_allclose(float(loss), 0.01 * 4 * np.sum(share * gate.mean(0)), rtol=1e-5)


def test_bad_options_name_the_value():
    with pytest.raises(ValueError, match="top_k=5"):
        MixtureOfExperts(num_experts=4, hidden_dim=2, top_k=5)
    with pytest.raises(ValueError, match="capacity_factor=0"):
        MixtureOfExperts(num_experts=4, hidden_dim=2, capacity_factor=0)


def test_config_and_keras_round_trip(tmp_path):
    harness.run_layer_test(MixtureOfExperts, {"num_experts": 3, "hidden_dim": 4, "units": 2, "top_k": 2,
                                              "capacity_factor": 2.0},
                           _x((2, 3, 5)), expected_output_shape=(2, 3, 2), tmp_dir=str(tmp_path),
                           fresh_process=False)  # the fresh-process reload: tests/toolkit/layers/test_custom_objects.py
