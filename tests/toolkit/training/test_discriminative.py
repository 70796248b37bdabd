"""Discriminative learning rates: each variable's step is its multiplier times the wrapped optimiser's."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.models.transfer import build_image_classifier, get_backbone
from toolkit.training.discriminative import DiscriminativeOptimizer, backbone_multipliers, layer_groups
from toolkit.training.optimizers import build_optimizer


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh", name="early"),
                             keras.layers.Dense(2, name="head")], name="net")


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")


def _gradients(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)
    return tape.gradient(loss, model.trainable_variables)


def test_one_sgd_step_of_an_early_weight_is_the_multiplier_times_its_full_rate_step():
    model, (x, y), lr, m = _model(), _data(), 1.0, 0.1
    grads = _gradients(model, x, y)
    before = [v.numpy() for v in model.trainable_variables]
    optimizer = DiscriminativeOptimizer(keras.optimizers.SGD(lr), {"net/early/kernel": m, "net/early/bias": m})
    optimizer.apply(grads, model.trainable_variables)
    for variable, grad, old in zip(model.trainable_variables, grads, before):
        expected = (m if variable.path.startswith("net/early") else 1.0) * -lr * grad.numpy()
        # exact up to float32 round-off of w +- step (|w| <= ~1: an ulp is 1.2e-7)
        np.testing.assert_allclose(variable.numpy() - old, expected, rtol=1e-5, atol=2.5e-7)
    # relative to the head's rate: early step / (-lr g) = m exactly, head step / (-lr g) = 1
    early_kernel, head_kernel = model.trainable_variables[0], model.trainable_variables[2]
    ratio_early = (early_kernel.numpy() - before[0]) / (-lr * grads[0].numpy())
    ratio_head = (head_kernel.numpy() - before[2]) / (-lr * grads[2].numpy())
    assert np.allclose(ratio_early, m, rtol=2e-3) and np.allclose(ratio_head, 1.0, rtol=2e-3)


@pytest.mark.parametrize("name", ["adam", "sgd", "adamw"])
def test_several_steps_equal_the_optimiser_run_at_the_scaled_rate(name):
    """Adam (which divides out a gradient's scale), Nesterov momentum and AdamW's decay: 3 steps through the
    wrapper at lr match a plain optimiser at m * lr on the early layer, and at lr on the head."""
    x, y = _data()
    lr, m = 0.01, 0.3
    options = {"nesterov": True} if name == "sgd" else {}
    wrapped = _model()
    optimizer = DiscriminativeOptimizer(build_optimizer(name, lr, **options),
                                        {v.path: m for v in wrapped.get_layer("early").weights})
    slow, fast = _model(), _model()
    slow_opt, fast_opt = build_optimizer(name, lr * m, **options), build_optimizer(name, lr, **options)
    for _ in range(3):
        optimizer.apply(_gradients(wrapped, x, y), wrapped.trainable_variables)
        # the reference: the early layer moved by an optimiser at m*lr, the head by one at lr, same gradients
        grads = _gradients(slow, x, y)
        slow_opt.apply(grads[:2], slow.trainable_variables[:2])
        fast_opt.apply(grads[2:], slow.trainable_variables[2:])
    for got, want in zip(wrapped.trainable_variables, slow.trainable_variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-5, atol=1e-6)
    del fast


def test_saves_reloads_and_resumes_with_its_state(tmp_path):
    x, y = _data()
    model = _model()
    model.compile(optimizer=DiscriminativeOptimizer(keras.optimizers.Adam(0.01), {"net/early/kernel": 0.2}),
                  loss="mse")
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded.optimizer, DiscriminativeOptimizer)
    assert reloaded.optimizer.multipliers == {"net/early/kernel": 0.2}
    assert int(reloaded.optimizer.iterations) == 4
    for a, b in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    # a tf.train.Checkpoint (what the apps' per-epoch checkpoint uses) restores the moments: the next step
    # from the restored copy equals the next step of the original
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    other = _model(seed=5)
    other.compile(optimizer=DiscriminativeOptimizer(keras.optimizers.Adam(0.01), {"net/early/kernel": 0.2}),
                  loss="mse")
    other.optimizer.build(other.trainable_variables)
    tf.train.Checkpoint(model=other, optimizer=other.optimizer).restore(path).assert_existing_objects_matched()
    for net in (model, other):
        net.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_backbone_groups_first_to_last_and_the_head_at_one():
    model = build_image_classifier((12, 12, 1), 3, width=4, dense_units=8)
    backbone = get_backbone(model)
    groups = layer_groups(backbone, 3)
    assert len(groups) == 3 and [layer for group in groups for layer in group] == [
        layer for layer in backbone.layers if layer.weights]
    multipliers = backbone_multipliers(model, backbone, [0.1, 0.3, 1.0])
    first, second = {v.path for layer in groups[0] for v in layer.weights}, {v.path for layer in groups[1]
                                                                              for v in layer.weights}
    assert {multipliers[p] for p in first} == {0.1} and {multipliers[p] for p in second} == {0.3}
    head = {v.path for v in model.get_layer("predictions").weights}
    assert not head & set(multipliers) and len(multipliers) == len(first) + len(second)
    with pytest.raises(ValueError, match="must be > 0"):
        backbone_multipliers(model, backbone, [0.1, 0.0])
    with pytest.raises(ValueError, match="must be > 0"):
        DiscriminativeOptimizer(keras.optimizers.SGD(0.1), {"a": -1})
