"""InfoNCE against the notes' formula term by term (numpy); SimCLR pretraining lowers the loss on real digits."""

import keras
import numpy as np
import pytest

from toolkit.models.contrastive import info_nce, pretrain_simclr


def oracle(z_a, z_b, tau):
    z = np.concatenate([z_a, z_b]).astype("float64")
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n, losses = len(z_a), []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(np.exp(z[i] @ z[k] / tau) for k in range(2 * n) if k != i)
        losses.append(-np.log(np.exp(z[i] @ z[j] / tau) / denominator))
    return np.mean(losses)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_info_nce_matches_formula(tau):
    rng = np.random.default_rng(0)
    z_a, z_b = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    assert float(info_nce(z_a, z_b, tau)) == pytest.approx(oracle(z_a, z_b, tau), rel=1e-5)
    # aligned views score lower than shuffled ones
    assert float(info_nce(z_a, z_a + 0.01, tau)) < float(info_nce(z_a, z_b, tau))
    with pytest.raises(ValueError, match="temperature"):
        info_nce(z_a, z_b, 0.0)


def test_simclr_pretraining_lowers_the_loss():
    from sklearn.datasets import load_digits

    images = (load_digits().images[:96, :, :, None] / 16.0).astype("float32")
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                                keras.layers.GlobalAveragePooling2D()])
    before = [w.copy() for w in encoder.get_weights()]
    history = pretrain_simclr(encoder, images, epochs=4, batch_size=32, projection_dim=8)
    assert len(history["loss"]) == 4 and np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    assert any(not np.allclose(a, b) for a, b in zip(before, encoder.get_weights()))
    with pytest.raises(ValueError, match="at least 2"):
        pretrain_simclr(encoder, images[:1])
