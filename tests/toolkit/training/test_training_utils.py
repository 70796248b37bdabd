import keras
import numpy as np
import pytest

from toolkit.training import CyclicalLearningRate, SmoothedSparseCategoricalCrossentropy, apply_weight_regularization


def test_cyclical_lr_values_at_known_steps():
    schedule = CyclicalLearningRate(0.001, 0.006, step_size=4)
    values = [float(schedule(step)) for step in (0, 2, 4, 6, 8, 12, 16)]
    np.testing.assert_allclose(values, [0.001, 0.0035, 0.006, 0.0035, 0.001, 0.006, 0.001], rtol=1e-5)
    halved = CyclicalLearningRate(0.001, 0.006, step_size=4, mode="triangular2")
    np.testing.assert_allclose(float(halved(12)), 0.001 + 0.005 / 2, rtol=1e-5)


def test_cyclical_lr_serializes_and_validates():
    schedule = CyclicalLearningRate(1e-4, 1e-2, 10)
    optimizer = keras.optimizers.Adam(schedule)
    restored = keras.optimizers.Adam.from_config(optimizer.get_config())
    assert float(restored.learning_rate) == pytest.approx(1e-4)  # value at iteration 0
    with pytest.raises(ValueError, match="min_lr=0.1, max_lr=0.01"):
        CyclicalLearningRate(0.1, 0.01, 10)


def test_regularizer_penalises_kernels_not_biases():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(2, name="b")])
    for layer in model.layers:
        layer.bias.assign(np.full(layer.bias.shape, 10.0))
    touched = apply_weight_regularization(model, l2=0.5, per_layer={"b": (0.1, 0.0)})
    assert touched == ["a", "b"]
    model(np.zeros((1, 3), "float32"))
    kernel_a, kernel_b = model.get_layer("a").kernel.numpy(), model.get_layer("b").kernel.numpy()
    expected = 0.5 * np.sum(kernel_a**2) + 0.1 * np.sum(np.abs(kernel_b))
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_forms():
    y_true = np.array([2])
    y_pred = np.array([[0.1, 0.2, 0.7]], "float32")
    for form, target in (("keras", [0.1 / 3, 0.1 / 3, 0.9 + 0.1 / 3]), ("seed", [0.05, 0.05, 0.9])):
        loss = SmoothedSparseCategoricalCrossentropy(0.1, form=form)
        expected = -np.sum(np.array(target) * np.log(y_pred[0]))
        assert float(loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
    seed_example = SmoothedSparseCategoricalCrossentropy(0.1, form="seed")
    clone = SmoothedSparseCategoricalCrossentropy.from_config(seed_example.get_config())
    assert clone.form == "seed"
