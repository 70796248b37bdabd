"""InfoNCE against the notes' formula term by term (numpy); SimCLR pretraining lowers the loss on real digits;
the views differ per image and per call and stay in [0, 1]; the time budget; the transfer classifier."""

import keras
import numpy as np
import pytest

from toolkit.models.contrastive import (build_transfer_classifier, default_augmentation, info_nce,
                                        pretrain_simclr)


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


def test_views_differ_per_image_and_per_call_and_stay_in_range():
    images = np.tile(np.linspace(0, 1, 64, dtype="float32").reshape(1, 8, 8, 1), (4, 1, 1, 1))
    augmentation = default_augmentation(seed=1)
    a, b = (np.asarray(augmentation(images, training=True)) for _ in range(2))
    assert not np.allclose(a, b)  # two views of the same batch
    assert not np.allclose(a[0], a[1])  # drawn per image, not per batch
    assert a.min() >= 0.0 and a.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(augmentation(images, training=False), images)


def _encoder():
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D()])


def test_time_budget_stops_pretraining():
    images = np.random.default_rng(0).random((64, 8, 8, 1), dtype="float32")
    out = pretrain_simclr(_encoder(), images, epochs=50, batch_size=8, projection_dim=4, max_seconds=1e-6)
    assert out["steps"] == 2 and len(out["loss"]) == 1 and np.isfinite(out["loss"][0])
    with pytest.raises(ValueError, match="max_seconds"):
        pretrain_simclr(_encoder(), images, max_seconds=0)


def test_transfer_classifier_probe_and_fine_tune(tmp_path):
    encoder = _encoder()
    probe = build_transfer_classifier(encoder, 3, freeze=True)
    assert [w.name for w in probe.trainable_weights] == ["kernel", "bias"]  # only the Dense head
    tuned = build_transfer_classifier(_encoder(), 3)
    assert len(tuned.trainable_weights) == 2 + 4  # conv kernel/bias, BN gamma/beta, head
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype="float32")
    np.testing.assert_allclose(probe.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)
    probe.save(tmp_path / "probe.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "probe.keras").predict(x, verbose=0),
                               probe.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="num_classes"):
        build_transfer_classifier(encoder, 1)
