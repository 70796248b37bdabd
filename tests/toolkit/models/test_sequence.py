"""Conv1D / Conv3D classifiers learn synthetic separable sequences and volumes; the float-sequence encoders."""

import keras
import numpy as np
import pytest

from toolkit.models.sequence import build_conv1d_classifier, build_conv3d_classifier, sequence_encoder


def sine_classes(n, length=64, channels=2, seed=0):
    """Class c: sines of frequency (c + 1) cycles per window, random phase and amplitude, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = np.linspace(0, 1, length, endpoint=False)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, channels))
    x = rng.uniform(0.5, 1.5, (n, 1, channels)) * np.sin(2 * np.pi * (y[:, None, None] + 1) * t[None, :, None] + phase)
    return (x + 0.3 * rng.normal(size=x.shape)).astype("float32"), y


def bar_volumes(n, size=8, seed=0):
    """Class = the axis (depth, height, width) a bright bar runs along, at a random position, in noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = 0.3 * rng.normal(size=(n, size, size, size, 1))
    for i, axis in enumerate(y):
        a, b = rng.integers(0, size, 2)
        index = [a, b]
        index.insert(int(axis), slice(None))
        x[(i, *index, 0)] += 2.0
    return x.astype("float32"), y


def fit_and_score(model, train, test, epochs):
    keras.utils.set_random_seed(0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(*train, epochs=epochs, batch_size=32, verbose=0)
    return model.evaluate(*test, verbose=0)[1]


def test_conv1d_learns_sine_frequencies_and_takes_any_length(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_conv1d_classifier((None, 2), 3, filters=(16, 32), kernel_size=5)
    assert fit_and_score(model, sine_classes(240), sine_classes(90, seed=1), epochs=8) >= 0.95
    longer, _ = sine_classes(4, length=100, seed=2)  # T = None: another length runs too
    assert model.predict(longer, verbose=0).shape == (4, 3)
    model.save(tmp_path / "c1.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "c1.keras").predict(longer, verbose=0),
                               model.predict(longer, verbose=0), atol=1e-5)


def test_conv3d_learns_bar_orientation():
    keras.utils.set_random_seed(0)
    model = build_conv3d_classifier((8, 8, 8, 1), 3, filters=(8, 16))
    assert fit_and_score(model, bar_volumes(192), bar_volumes(60, seed=1), epochs=10) >= 0.9


@pytest.mark.parametrize("kind", ["cnn", "tcn", "lstm", "gru"])
def test_sequence_encoders(kind):
    inputs = keras.Input((12, 3))
    model = keras.Model(inputs, sequence_encoder(inputs, kind, units=5, num_layers=2))
    assert model(np.zeros((2, 12, 3), "float32")).shape == (2, 5)


def test_tcn_is_causal_and_errors():
    inputs = keras.Input((16, 1))
    model = keras.Model(inputs, sequence_encoder(inputs, "tcn", units=4, num_layers=1, kernel_size=2))
    x = np.random.default_rng(0).normal(size=(1, 16, 1)).astype("float32")
    changed = x.copy()
    changed[0, :12] += 5.0  # receptive field 1 + (2 - 1) * (2^2 - 1) = 4: the first 12 steps cannot matter
    np.testing.assert_allclose(model(x), model(changed), atol=1e-5)
    changed[0, 12] += 5.0
    assert not np.allclose(model(x), model(changed), atol=1e-5)
    with pytest.raises(ValueError, match="sequence"):
        build_conv1d_classifier((8, 8, 1), 2)
    with pytest.raises(ValueError, match="kind"):
        sequence_encoder(inputs, "transformer")
