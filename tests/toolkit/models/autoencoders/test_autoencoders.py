"""The autoencoder family against the notes: PCA's subspace, penalties by hand, (x~, x) pairs, thresholds, saving."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from tests import harness
from toolkit.models.autoencoders import (
    AnomalyDetector,
    ContractiveAutoencoder,
    SparseAutoencoder,
    UndercompleteAutoencoder,
    build_autoencoder,
    build_dense_decoder,
    build_dense_encoder,
    jacobian_norm,
    kl_sparsity,
    threshold_at_fpr,
)
from toolkit.models.vae import build_vae


def test_linear_autoencoder_recovers_the_pca_subspace():
    """F3:12806: a linear encoder/decoder trained on ||x - g(f(x))||^2 spans PCA's principal subspace."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((8, 3)))[0]  # an orthonormal 3-D subspace of R^8
    x = (rng.standard_normal((512, 3)) * [3.0, 2.0, 1.5]) @ basis.T + 0.05 * rng.standard_normal((512, 8))
    x = x.astype("float32")  # centred, as PCA centres (the biases can absorb an offset, but converge slowly)
    keras.utils.set_random_seed(0)
    ae = build_autoencoder("undercomplete", (8,), latent_dim=3, architecture="dense", hidden=(),
                           output_activation="linear", pixel_scale=1.0)
    ae.compile(optimizer=keras.optimizers.Adam(0.02))
    step = tf.function(ae.train_step)  # full-batch steps without fit's per-epoch overhead
    data = tf.constant(x)
    for _ in range(600):
        step(data)
    decoder_kernel = ae.decoder.get_layer("outputs").kernel.numpy()  # [k, d]: its rows span the decoder's range
    pca = PCA(3).fit(x)
    angles = subspace_angles(decoder_kernel.T, pca.components_.T)
    assert np.degrees(angles).max() < 0.5, np.degrees(angles)
    # and not some other 3-D subspace: against the 4th-6th principal directions the angles are ~90 degrees
    rest = PCA(6).fit(x).components_[3:]
    assert np.degrees(subspace_angles(decoder_kernel.T, rest.T)).min() > 85


def _set_linear_encoder(model, kernel, bias):
    dense = model.encoder.get_layer("z")
    dense.kernel.assign(np.asarray(kernel, "float32"))
    dense.bias.assign(np.asarray(bias, "float32"))


def test_l1_activity_penalty_by_hand():
    ae = build_autoencoder("sparse", (2,), latent_dim=2, architecture="dense", hidden=(), pixel_scale=1.0,
                           output_activation="linear", sparsity_weight=0.1)
    _set_linear_encoder(ae, [[1.0, -1.0], [2.0, 0.5]], [0.0, 1.0])
    x = np.array([[1.0, 2.0], [0.0, -2.0]], "float32")
    # z = x W + b: [5, 1] and [-4, 0]  ->  sum |z| = 6 and 4
    np.testing.assert_allclose(ae.encode(x), [[5.0, 1.0], [-4.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(ae.penalty(x, ae.encode(x)), [0.6, 0.4], rtol=1e-6)
    parts = ae.loss_parts(x)
    assert float(parts["penalty"]) == pytest.approx(0.5)
    assert float(parts["loss"]) == pytest.approx(float(parts["reconstruction"]) + 0.5, rel=1e-6)


def test_kl_sparsity_penalty_by_hand():
    z = tf.constant([[0.1, 0.5], [0.3, 0.7]])  # unit means 0.2 and 0.6
    rho = 0.2

    def kl(q):
        return rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q))

    assert float(kl_sparsity(z, rho)) == pytest.approx(kl(0.2) + kl(0.6), rel=1e-5)
    assert kl(0.6) > 0.3  # a unit active 60% of the time against a 20% target costs
    ae = build_autoencoder("sparse", (2,), latent_dim=2, architecture="dense", hidden=(), penalty="kl",
                           sparsity_target=rho, sparsity_weight=2.0, latent_activation="sigmoid", pixel_scale=1.0)
    penalty = ae.penalty(tf.zeros((2, 2)), z).numpy()
    np.testing.assert_allclose(penalty, [2.0 * (kl(0.2) + kl(0.6))] * 2, rtol=1e-5)


def test_contractive_penalty_closed_form_by_hand_and_autodiff():
    cae = build_autoencoder("contractive", (2,), latent_dim=2, architecture="dense", hidden=(),
                            latent_activation="sigmoid", pixel_scale=1.0, contractive_weight=0.5)
    assert cae.jacobian_method == "closed_form"
    kernel = [[1.0, -1.0], [2.0, 0.5]]
    _set_linear_encoder(cae, kernel, [0.0, 0.0])
    x = tf.zeros((1, 2))
    # x = 0: z = sigmoid(0) = 1/2, dz/dx = 1/4 W, ||J||_F^2 = (1/16) (1 + 1 + 4 + 0.25) = 0.390625
    assert float(cae.penalty(x, cae.encode(x))[0]) == pytest.approx(0.5 * 0.390625, rel=1e-6)
    x = tf.constant([[0.3, -0.7], [1.0, 2.0]])
    z = tf.sigmoid(x @ tf.constant(kernel))
    by_hand = tf.reduce_sum(tf.square(z * (1 - z)) * tf.constant([5.0, 1.25]), axis=-1)
    np.testing.assert_allclose(cae.penalty(x, cae.encode(x)), 0.5 * by_hand, rtol=1e-5)
    np.testing.assert_allclose(jacobian_norm(cae.encoder, x), by_hand, rtol=1e-5)
    # autodiff on a deeper (tanh) encoder equals the chain rule J = diag(1 - z^2) W2^T diag(1 - h^2) W1^T
    deep = build_dense_encoder((3,), 2, hidden=(4,), activation="tanh", latent_activation="tanh")
    w1, b1, w2, b2 = [w.numpy().astype("float64") for w in deep.weights]
    point = np.array([[0.2, -0.4, 0.9]])
    h = np.tanh(point @ w1 + b1)
    out = np.tanh(h @ w2 + b2)
    jac = (np.diag(1 - out[0] ** 2) @ w2.T) @ (np.diag(1 - h[0] ** 2) @ w1.T)
    assert float(jacobian_norm(deep, point.astype("float32"))[0]) == pytest.approx(np.sum(jac**2), rel=1e-4)
    with pytest.raises(ValueError, match="closed_form.*needs an encoder that is Flatten -> one sigmoid Dense"):
        ContractiveAutoencoder(deep, build_dense_decoder((3,), 2, hidden=(4,)), jacobian="closed_form")


def test_contractive_training_step_runs_with_autodiff_and_shrinks_the_jacobian():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (64, 6, 6, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    cae = build_autoencoder("contractive", (6, 6, 1), latent_dim=2, architecture="conv", width=2, hidden=4,
                            contractive_weight=10.0)
    assert cae.jacobian_method == "autodiff"
    before = float(tf.reduce_mean(jacobian_norm(cae.encoder, cae.scale(x))))
    cae.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = cae.fit(x, epochs=3, batch_size=32, verbose=0).history
    after = float(tf.reduce_mean(jacobian_norm(cae.encoder, cae.scale(x))))
    assert sorted(history) == ["loss", "mse", "penalty", "reconstruction"]
    assert after < before


def test_denoising_trains_on_corrupted_input_and_clean_target():
    dae = build_autoencoder("denoising", (4,), latent_dim=2, architecture="dense", hidden=(), pixel_scale=1.0,
                            output_activation="linear", noise_level=0.3, seed=0)
    x = tf.constant([[0.2, 0.4, 0.6, 0.8]])
    x_tilde = tf.constant([[0.0, 0.4, 0.0, 0.8]])
    dae.corrupt = lambda inputs, training=False: x_tilde if training else inputs  # a known corruption
    target_clean = float(tf.reduce_sum(tf.square(x - dae.decode(dae.encoder(x_tilde)))))
    target_noisy = float(tf.reduce_sum(tf.square(x_tilde - dae.decode(dae.encoder(x_tilde)))))
    assert float(dae.loss_parts(x, training=True)["reconstruction"]) == pytest.approx(target_clean, rel=1e-6)
    assert target_clean != pytest.approx(target_noisy)
    # at inference the input is not corrupted
    clean = float(tf.reduce_sum(tf.square(x - dae(x))))
    assert float(dae.loss_parts(x, training=False)["reconstruction"]) == pytest.approx(clean, rel=1e-6)
    gaussian = build_autoencoder("denoising", (8, 8, 1), latent_dim=2, architecture="dense", noise_level=0.1, seed=3)
    noisy = gaussian.corrupt(tf.fill((256, 8, 8, 1), 0.5), training=True)
    assert float(tf.math.reduce_std(noisy)) == pytest.approx(0.1, rel=0.05)


def test_builders_and_errors():
    ae = build_autoencoder("undercomplete", (12, 10, 3), latent_dim=5, architecture="conv", width=4, hidden=8)
    assert isinstance(ae, UndercompleteAutoencoder) and tuple(ae(np.zeros((1, 12, 10, 3))).shape) == (1, 12, 10, 3)
    over = build_autoencoder("sparse", (4, 4, 1), latent_dim=64, architecture="dense")  # overcomplete: fine
    assert isinstance(over, SparseAutoencoder) and over.latent_dim == 64
    with pytest.raises(ValueError, match=r"latent_dim < the input size \(16\).*Received: latent_dim=16"):
        build_autoencoder("undercomplete", (4, 4, 1), latent_dim=16, architecture="dense")
    with pytest.raises(ValueError, match="kind must be one of"):
        build_autoencoder("overcomplete", (4, 4, 1))
    with pytest.raises(ValueError, match="corruption must be one of"):
        build_autoencoder("denoising", (4, 4, 1), latent_dim=2, architecture="dense", corruption="salt")
    with pytest.raises(ValueError, match="penalty must be one of"):
        build_autoencoder("sparse", (4, 4, 1), latent_dim=2, architecture="dense", penalty="l2")
    with pytest.raises(ValueError, match="latent_activation applies to the dense architecture only"):
        build_autoencoder("sparse", (4, 4, 1), latent_dim=2, latent_activation="sigmoid")


def test_threshold_at_fpr_meets_the_target_on_the_calibration_scores():
    rng = np.random.default_rng(2)
    scores = rng.gamma(2.0, 1.0, 999)
    for fpr in (0.01, 0.05, 0.2):
        t = threshold_at_fpr(scores, fpr)
        observed = np.mean(scores > t)
        assert fpr - 1 / len(scores) <= observed <= fpr, (fpr, observed)
    assert threshold_at_fpr(scores, 0.0) == scores.max()
    with pytest.raises(ValueError, match=r"target_fpr must be in \[0, 1\). Received: target_fpr=1.5"):
        threshold_at_fpr(scores, 1.5)
    with pytest.raises(ValueError, match="at least one normal score"):
        threshold_at_fpr([], 0.05)


def test_anomaly_detector_scores_vae_neg_elbo_batch_independently():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (6, 8, 8, 1)).astype("float32")
    vae = build_vae((8, 8, 1), latent_dim=2, architecture="dense", hidden=8, seed=0)
    detector = AnomalyDetector(vae, elbo_samples=4, seed=5)
    assert detector.variational and detector.score_name == "neg_elbo"
    scores = detector.score(x).numpy()
    np.testing.assert_allclose(detector.score(x[2:4]), scores[2:4], rtol=1e-5)  # batch-independent
    noise = np.broadcast_to(detector.noise.numpy()[None], (6, 4, 2)).astype("float32")
    np.testing.assert_allclose(scores, -vae.log_weights(x, noise).numpy().mean(axis=1), rtol=1e-5)
    t = detector.calibrate(x, target_fpr=0.2)
    assert float(detector.threshold) == pytest.approx(t)
    assert int(detector(x)["is_anomaly"].numpy().sum()) == 1  # 6 scores at 20%: one above


def test_anomaly_detector_round_trips_with_its_threshold(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (5, 8, 8, 1)).astype("float32")
    detector = AnomalyDetector(build_autoencoder("denoising", (8, 8, 1), 3, architecture="dense", hidden=(8,)))
    detector.calibrate(x, 0.4)
    path = harness.run_model_saving_test(detector, x, tmp_dir=str(tmp_path), fresh_process=False)
    reloaded = keras.saving.load_model(path)
    assert float(reloaded.threshold) == pytest.approx(float(detector.threshold))
    assert isinstance(reloaded.autoencoder, type(detector.autoencoder))
