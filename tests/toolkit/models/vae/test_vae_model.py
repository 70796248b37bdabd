"""VAE maths and models: KL closed form, reparameterisation, loss parts, training, .keras round trip."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.data import samples
from toolkit.models.vae import (
    VAE,
    Autoencoder,
    Sampling,
    bernoulli_nll,
    build_autoencoder,
    build_decoder,
    build_encoder,
    build_vae,
    gaussian_nll,
    kl_divergence,
)


def test_kl_closed_form_matches_monte_carlo(rng):
    mu = np.array([[0.5, -1.0, 2.0]], "float32")
    log_var = np.array([[0.3, -1.2, 0.8]], "float32")
    closed = float(kl_divergence(tf.constant(mu), tf.constant(log_var))[0])
    sigma = np.exp(0.5 * log_var[0])
    z = mu[0] + sigma * rng.standard_normal((400_000, 3))
    log_q = np.sum(-0.5 * ((z - mu[0]) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2 * math.pi), axis=1)
    log_p = np.sum(-0.5 * z**2 - 0.5 * math.log(2 * math.pi), axis=1)
    monte_carlo = float(np.mean(log_q - log_p))
    # hand value: 0.5 * sum(var + mu^2 - 1 - log var)
    by_hand = 0.5 * float(np.sum(np.exp(log_var) + mu**2 - 1 - log_var))
    assert closed == pytest.approx(by_hand, rel=1e-5)
    assert closed == pytest.approx(monte_carlo, abs=0.02)
    assert float(kl_divergence(tf.zeros((1, 4)), tf.zeros((1, 4)))[0]) == 0.0


def test_sampling_mean_and_variance_over_many_draws():
    n = 200_000
    mu = np.tile(np.array([[1.0, -2.0]], "float32"), (n, 1))
    log_var = np.tile(np.log(np.array([[4.0, 0.25]], "float32")), (n, 1))
    z = Sampling(seed=3)([mu, log_var]).numpy()
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(z.var(axis=0), [4.0, 0.25], rtol=0.02)
    np.testing.assert_allclose(Sampling(seed=3)([mu[:5], log_var[:5]]), Sampling(seed=3)([mu[:5], log_var[:5]]))
    layer = Sampling.from_config(Sampling(seed=7, name="s").get_config())
    assert layer.seed == 7 and layer.name == "s"


def test_likelihoods_by_hand():
    targets = tf.constant([[1.0, 0.0, 1.0, 0.0]])
    # logits 0 -> p = 0.5 -> -log p = log 2 per pixel
    assert float(bernoulli_nll(targets, tf.zeros((1, 4)))[0]) == pytest.approx(4 * math.log(2), rel=1e-6)
    # logit 2 on a 1 pixel: -log sigmoid(2) = log(1 + e^-2)
    assert float(bernoulli_nll(tf.ones((1, 1)), tf.fill((1, 1), 2.0))[0]) == pytest.approx(math.log1p(math.exp(-2)))
    # Gaussian: x = 0.5, mean 0.3, sigma 0.1 -> 0.5 * 4 + log 0.1 + 0.5 log 2 pi
    got = float(gaussian_nll(tf.fill((1, 1), 0.5), tf.fill((1, 1), 0.3), tf.constant(math.log(0.1)))[0])
    assert got == pytest.approx(2.0 + math.log(0.1) + 0.5 * math.log(2 * math.pi), rel=1e-5)


def _digits(n=256):
    x, y, _ = samples.digits()
    return x[:n].astype("float32"), y[:n]


def test_loss_parts_add_up_and_warmup():
    x, _ = _digits(64)
    vae = build_vae((8, 8, 1), latent_dim=3, architecture="dense", hidden=16, beta=0.5, kl_warmup_steps=4, seed=0)
    parts = {k: float(v) for k, v in vae.loss_parts(x, training=False).items()}
    assert parts["loss"] == pytest.approx(parts["reconstruction"] + 0.5 * parts["kl"], rel=1e-5)
    assert parts["neg_elbo"] == pytest.approx(parts["reconstruction"] + parts["kl"], rel=1e-5)
    # reconstruction term by hand: same z as the layer draws, binarised targets
    targets = vae.targets(x)
    assert set(np.unique(targets.numpy())) <= {0.0, 1.0}
    mu, log_var = vae.encoder(targets)
    kl = float(tf.reduce_mean(kl_divergence(mu, log_var)))
    assert parts["kl"] == pytest.approx(kl, rel=1e-5)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = vae.fit(x, epochs=1, batch_size=16, verbose=0).history  # 4 steps: beta 0.125, .25, .375, .5
    assert history["beta"][0] == pytest.approx(0.5 * (1 + 2 + 3 + 4) / 16, rel=1e-5)
    assert float(vae.kl_weight(training=True)) == pytest.approx(0.5)


def test_importance_bound_is_tighter_than_elbo(rng):
    x, _ = _digits(8)
    vae = build_vae((8, 8, 1), latent_dim=2, architecture="dense", hidden=16, seed=0)
    lw = vae.log_weights(x, rng.standard_normal((8, 32, 2)).astype("float32")).numpy().astype("float64")
    assert lw.shape == (8, 32)
    iwae = np.logaddexp.reduce(lw, axis=1) - np.log(32)
    assert np.all(iwae >= lw.mean(axis=1) - 1e-9)
    # one sample with noise 0 is log p(x|mu) + log p(mu) - log q(mu|x)
    lw0 = vae.log_weights(x[:1], np.zeros((1, 1, 2), "float32")).numpy()[0, 0]
    mu, log_var = vae.encode(x[:1])
    log_p_x = -float(bernoulli_nll(vae.targets(x[:1]), vae.decoder(mu))[0])
    log_p_z = float(np.sum(-0.5 * mu.numpy() ** 2 - 0.5 * math.log(2 * math.pi)))
    log_q = float(np.sum(-0.5 * math.log(2 * math.pi) - 0.5 * log_var.numpy()))
    assert lw0 == pytest.approx(log_p_x + log_p_z - log_q, rel=1e-4)


def test_tiny_vae_elbo_improves():
    x, _ = _digits(512)
    keras.utils.set_random_seed(0)
    vae = build_vae((8, 8, 1), latent_dim=4, architecture="dense", hidden=32, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = vae.evaluate(x, batch_size=512, verbose=0, return_dict=True)["neg_elbo"]
    vae.fit(x, epochs=3, batch_size=32, verbose=0)
    after = vae.evaluate(x, batch_size=512, verbose=0, return_dict=True)["neg_elbo"]
    assert before > 40 and after < before - 8  # 64 pixels: ~44 nats at init (log 2 each)


@pytest.mark.parametrize("likelihood,architecture", [("bernoulli", "conv"), ("gaussian", "dense")])
def test_keras_save_load_round_trip(tmp_path, likelihood, architecture):
    x, _ = _digits(16)
    vae = build_vae((8, 8, 1), latent_dim=3, architecture=architecture, width=4, hidden=16, likelihood=likelihood,
                    beta=2.0, kl_warmup_steps=10, seed=5)
    vae.compile(optimizer="adam")
    vae.fit(x, epochs=1, batch_size=8, verbose=0)
    path = str(tmp_path / "vae.keras")
    vae.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert isinstance(loaded, VAE)
    assert (loaded.likelihood, loaded.beta, loaded.kl_warmup_steps, loaded.latent_dim) == (likelihood, 2.0, 10, 3)
    np.testing.assert_allclose(loaded(x), vae(x), atol=1e-6)
    noise = np.random.default_rng(0).standard_normal((16, 2, 3)).astype("float32")
    np.testing.assert_allclose(loaded.log_weights(x, noise), vae.log_weights(x, noise), rtol=1e-5)
    if likelihood == "gaussian":
        assert float(loaded.log_sigma) == pytest.approx(float(vae.log_sigma))


def test_autoencoder_trains_and_round_trips(tmp_path):
    x, _ = _digits(256)
    ae = build_autoencoder((8, 8, 1), latent_dim=4, architecture="dense", hidden=32)
    ae.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = ae.evaluate(x, verbose=0, return_dict=True)
    ae.fit(x, epochs=2, batch_size=32, verbose=0)
    after = ae.evaluate(x, verbose=0, return_dict=True)
    assert after["reconstruction"] < before["reconstruction"] and after["mse"] < before["mse"]
    ae.save(str(tmp_path / "ae.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "ae.keras"), compile=False)
    assert isinstance(loaded, Autoencoder)
    np.testing.assert_allclose(loaded(x[:4]), ae(x[:4]), atol=1e-6)


def test_builders_shapes_and_errors():
    assert build_decoder((30, 22, 3), 5).output.shape[1:] == (30, 22, 3)  # crops the x4 upsampling
    assert build_encoder((8, 8, 1), 2, variational=False).output.shape[1:] == (2,)
    with pytest.raises(ValueError, match="architecture must be one of"):
        build_encoder((8, 8, 1), 2, architecture="rnn")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        build_vae((8, 8, 1), 2, likelihood="poisson")
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        build_vae((8, 8, 1), 0)
