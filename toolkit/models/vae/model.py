"""The variational autoencoder and the plain autoencoder it is compared with.

Both take pixels in [0, 255] (`[B, H, W, C]`, as every toolkit image pipeline yields them) and share one
image likelihood:

- `"bernoulli"`: pixels are scaled to [0, 1] and, with `binarize=True` (the default), thresholded at 0.5,
  so `-log p(x | z)` is a true negative log-likelihood in nats of the binarised image and the negative
  ELBO is an upper bound on `-log p(x)`. With `binarize=False` the grey levels are used as soft targets
  (the common "binary cross-entropy on grey images" VAE); the numbers are then cross-entropies, not
  likelihoods.
- `"gaussian"`: `x in [0, 1]` ~ N(sigmoid(logits), sigma^2 I) with one learned `log_sigma`; a density,
  so its nats can be negative and do not compare with discrete likelihoods.

The VAE's loss per image (lecture notes, SEED_CATALOGUE section 8):
`reconstruction + beta_t * KL`, `KL = -1/2 sum(1 + log var - mu^2 - var)`, with
`beta_t = beta * min(1, step / kl_warmup_steps)` (KL warm-up). `neg_elbo = reconstruction + KL` is
reported beside the training objective, so beta and warm-up never hide the true bound.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from toolkit.models.loss_parts import LossPartsModel
from toolkit.models.vae.layers import (
    LOG_2PI,
    Sampling,
    bernoulli_nll,
    gaussian_nll,
    kl_divergence,
    standard_normal_log_prob,
)

LIKELIHOODS = ("bernoulli", "gaussian")


class _ImageModel(LossPartsModel):
    """Shared by VAE and Autoencoder: the likelihood, the targets and the decoder's mean image."""

    def __init__(self, encoder, decoder, likelihood="bernoulli", binarize=True, **kwargs):
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}. Received: {likelihood!r}")
        self.encoder, self.decoder = encoder, decoder
        self.likelihood, self.binarize = likelihood, bool(binarize)
        self.latent_dim = int(decoder.inputs[0].shape[-1])
        self.image_shape = tuple(int(d) for d in encoder.inputs[0].shape[1:])
        self.log_sigma = None
        if likelihood == "gaussian":
            self.log_sigma = self.add_weight(shape=(), initializer=keras.initializers.Constant(math.log(0.1)),
                                             name="log_sigma")
        self.built = True  # the encoder and decoder are functional models, built at construction

    def build(self, input_shape=None):
        self.built = True

    def targets(self, pixels):
        """Pixels in [0, 255] -> what the likelihood models: [0, 1] values (binarised for Bernoulli)."""
        x = tf.cast(pixels, tf.float32) / 255.0
        if self.likelihood == "bernoulli" and self.binarize:
            x = tf.cast(x >= 0.5, tf.float32)
        return x

    def nll(self, targets, logits):
        """-log p(x | z) per image in nats."""
        logits = tf.cast(logits, tf.float32)
        if self.likelihood == "bernoulli":
            return bernoulli_nll(targets, logits)
        return gaussian_nll(targets, tf.sigmoid(logits), tf.cast(self.log_sigma, tf.float32))

    def decode(self, z, training=False):
        """Latent codes -> mean images in [0, 1] (Bernoulli probabilities or Gaussian means)."""
        return tf.sigmoid(tf.cast(self.decoder(z, training=training), tf.float32))

    # Both models train on the dict of loss parts their `loss_parts` returns, one Mean tracker per part.
    def _base_config(self):
        return {**self._coder_config(), "likelihood": self.likelihood, "binarize": self.binarize}


@keras.saving.register_keras_serializable(package="toolkit")
class VAE(_ImageModel):
    """Variational autoencoder: `q(z|x) = N(mu(x), diag(exp(log_var(x))))`, `p(z) = N(0, I)`, `p(x|z)`.

    `fit` on batches of pixels (labels, if any, are ignored) reports `loss` (the objective,
    `reconstruction + beta_t * kl`), `reconstruction`, `kl`, `neg_elbo` (`reconstruction + kl`) and `beta`
    (the current KL weight), all in nats per image.

    Args:
        encoder: images in [0, 1] -> `[mu, log_var]` (see `build_encoder`).
        decoder: `z` -> per-pixel logits (see `build_decoder`).
        likelihood: `"bernoulli"` or `"gaussian"` (see the module docstring).
        binarize: threshold Bernoulli targets at 0.5.
        beta: weight of the KL term (beta-VAE; 1 is the ELBO).
        kl_warmup_steps: linearly raise the KL weight from 0 to `beta` over this many training steps.
        seed: seed of the sampling layer.

    Examples:
    >>> from toolkit.models.vae import build_encoder, build_decoder
    >>> vae = VAE(build_encoder((8, 8, 1), 2, "dense", hidden=8), build_decoder((8, 8, 1), 2, "dense", hidden=8),
    ...           beta=0.5, kl_warmup_steps=10, seed=0)
    >>> pixels = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1)).astype("float32")
    >>> vae.save("vae.keras")
    >>> reloaded = keras.saving.load_model("vae.keras")
    >>> (reloaded.beta, reloaded.kl_warmup_steps), np.allclose(reloaded(pixels), vae(pixels))
    ((0.5, 10), True)
    >>> vae.compile(optimizer="adam")
    >>> parts = vae.loss_parts(pixels, training=True)   # first step: the KL weight is 0.5 x 1 / 10
    >>> sorted(parts), round(float(parts["beta"]), 3)
    (['beta', 'kl', 'loss', 'neg_elbo', 'reconstruction'], 0.05)
    """

    def __init__(self, encoder, decoder, likelihood="bernoulli", binarize=True, beta=1.0, kl_warmup_steps=0,
                 seed=None, **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, binarize=binarize, **kwargs)
        if beta < 0 or kl_warmup_steps < 0:
            raise ValueError(f"beta and kl_warmup_steps must be >= 0. Received: {beta}, {kl_warmup_steps}")
        self.beta, self.kl_warmup_steps, self.seed = float(beta), int(kl_warmup_steps), seed
        self.sampling = Sampling(seed=seed, name="sampling")
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "reconstruction", "kl", "neg_elbo", "beta")}

    def encode(self, pixels, training=False):
        """Pixels in [0, 255] -> `(mu, log_var)`."""
        mu, log_var = self.encoder(self.targets(pixels), training=training)
        return tf.cast(mu, tf.float32), tf.cast(log_var, tf.float32)

    def call(self, pixels, training=False):
        """Reconstruction in [0, 1]: decoded from a sampled z when training, from mu otherwise."""
        mu, log_var = self.encode(pixels, training=training)
        z = self.sampling([mu, log_var]) if training else mu
        return self.decode(z, training=training)

    def kl_weight(self, training=True):
        if not training or self.kl_warmup_steps <= 0 or getattr(self, "optimizer", None) is None:
            return tf.constant(self.beta, tf.float32)
        step = tf.cast(self.optimizer.iterations, tf.float32) + 1.0
        return self.beta * tf.minimum(1.0, step / float(self.kl_warmup_steps))

    def loss_parts(self, pixels, training=False):
        """Batch means (nats per image) of `reconstruction`, `kl`, `neg_elbo` and the objective `loss`,
        each from one sampled z per image."""
        targets = self.targets(pixels)
        mu, log_var = self.encoder(targets, training=training)
        mu, log_var = tf.cast(mu, tf.float32), tf.cast(log_var, tf.float32)
        z = self.sampling([mu, log_var])
        reconstruction = tf.reduce_mean(self.nll(targets, self.decoder(z, training=training)))
        kl = tf.reduce_mean(kl_divergence(mu, log_var))
        beta = self.kl_weight(training)
        return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl,
                "neg_elbo": reconstruction + kl, "beta": beta}

    def log_weights(self, pixels, noise):
        """Importance log-weights `log p(x|z_i) + log p(z_i) - log q(z_i|x)`, `z_i = mu + sigma * noise_i`.

        Args:
            pixels: `[B, H, W, C]` in [0, 255].
            noise: `[B, K, latent_dim]` standard normal draws (given, so results are reproducible).

        Returns:
            `[B, K]` log-weights. `-mean_i` is a Monte-Carlo negative ELBO; `-(logsumexp_i - log K)` is the
            importance-weighted bound (Burda et al. 2016), tighter as K grows.
        """
        targets = self.targets(pixels)
        mu, log_var = self.encoder(targets, training=False)
        mu, log_var = tf.cast(mu, tf.float32), tf.cast(log_var, tf.float32)
        noise = tf.cast(noise, tf.float32)
        batch, k = tf.shape(noise)[0], tf.shape(noise)[1]
        z = mu[:, None, :] + tf.exp(0.5 * log_var)[:, None, :] * noise
        logits = self.decoder(tf.reshape(z, [-1, self.latent_dim]), training=False)
        log_px = -tf.reshape(self.nll(tf.repeat(targets, k, axis=0), logits), [batch, k])
        log_qz = tf.reduce_sum(-0.5 * tf.square(noise) - 0.5 * LOG_2PI - 0.5 * log_var[:, None, :], axis=-1)
        return log_px + standard_normal_log_prob(z) - log_qz

    def prior_latents(self, seeds):
        """One `z ~ N(0, I)` per int seed (stateless: the same seed always gives the same z)."""
        seeds = tf.cast(tf.reshape(seeds, [-1]), tf.int32)
        return tf.map_fn(
            lambda s: tf.random.stateless_normal([self.latent_dim], seed=tf.stack([s, tf.constant(0)])),
            seeds, fn_output_signature=tf.TensorSpec([self.latent_dim], tf.float32),
        )

    def get_config(self):
        return {**self._base_config(), "beta": self.beta, "kl_warmup_steps": self.kl_warmup_steps,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="toolkit")
class Autoencoder(_ImageModel):
    """Plain (deterministic) autoencoder `x -> z -> x_hat`, trained on the same likelihood as the VAE.

    Reports `reconstruction` (`-log p(x | z)`, nats per image; NOT a bound on `-log p(x)`: there is no
    prior, so the latent space cannot be sampled) and `mse` (per pixel, on the [0, 1] scale).

    Args:
        encoder: images in [0, 1] -> `z` (`build_encoder(..., variational=False)`).
        decoder: `z` -> per-pixel logits.
        likelihood, binarize: as for `VAE`.

    Examples:
    >>> from toolkit.models.vae import build_decoder, build_encoder
    >>> ae = Autoencoder(build_encoder((8, 8, 1), 2, "dense", hidden=8, variational=False),
    ...                  build_decoder((8, 8, 1), 2, "dense", hidden=8))
    >>> pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 1)).astype("float32")
    >>> ae.save("ae.keras")
    >>> reloaded = keras.saving.load_model("ae.keras")   # registered: a round trip without custom_objects
    >>> type(reloaded).__name__, np.allclose(reloaded(pixels), ae(pixels))
    ('Autoencoder', True)
    """

    def __init__(self, encoder, decoder, likelihood="bernoulli", binarize=True, **kwargs):
        super().__init__(encoder, decoder, likelihood=likelihood, binarize=binarize, **kwargs)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "reconstruction", "mse")}

    def encode(self, pixels, training=False):
        return tf.cast(self.encoder(self.targets(pixels), training=training), tf.float32)

    def call(self, pixels, training=False):
        return self.decode(self.encode(pixels, training=training), training=training)

    def loss_parts(self, pixels, training=False):
        targets = self.targets(pixels)
        logits = self.decoder(self.encoder(targets, training=training), training=training)
        reconstruction = tf.reduce_mean(self.nll(targets, logits))
        mse = tf.reduce_mean(tf.square(tf.sigmoid(tf.cast(logits, tf.float32)) - targets))
        return {"loss": reconstruction, "reconstruction": reconstruction, "mse": mse}

    def get_config(self):
        return self._base_config()
