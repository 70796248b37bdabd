"""The VAE's maths as small, testable pieces: the reparameterisation layer, the closed-form KL, likelihoods.

Keras ships none of these for a VAE (keras.losses.KLDivergence compares two categorical distributions,
not a diagonal Gaussian with N(0, I)), so they are written here, each with the formula it implements.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

LOG_2PI = math.log(2.0 * math.pi)


@keras.saving.register_keras_serializable(package="toolkit")
class Sampling(keras.layers.Layer):
    """Reparameterisation: `z = mu + sigma * eps`, `sigma = exp(log_var / 2)`, `eps ~ N(0, I)`.

    The noise comes from a `keras.random.SeedGenerator`, so a seeded layer draws a reproducible stream
    and gradients flow to `mu` and `log_var` (not through the draw).

    Args:
        seed: int or None. seed of the layer's generator.

    Examples:
    >>> import numpy as np
    >>> z = Sampling(seed=0)([np.zeros((4, 2), "float32"), np.zeros((4, 2), "float32")])
    >>> tuple(z.shape)
    (4, 2)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mu, log_var = inputs
        eps = keras.random.normal(keras.ops.shape(mu), dtype=mu.dtype, seed=self.seed_generator)
        return mu + keras.ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def kl_divergence(mu, log_var):
    """KL(N(mu, diag(exp(log_var))) || N(0, I)) per example, in nats.

    Closed form: `-1/2 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)` over the last axis.

    Examples:
    >>> float(kl_divergence(tf.constant([[1.0, 0.0]]), tf.constant([[0.0, 0.0]]))[0])
    0.5
    """
    return -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mu) - tf.exp(log_var), axis=-1)


def bernoulli_nll(targets, logits):
    """-log p(x | z) for Bernoulli pixels, summed per example: `sum softplus(l) - x * l` (stable form of
    `-[x log p + (1 - x) log(1 - p)]` with `p = sigmoid(l)`)."""
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1]), axis=-1)


def gaussian_nll(targets, mean, log_sigma):
    """-log N(x; mean, sigma^2 I) summed per example, with one (scalar) `log_sigma` for every pixel."""
    per_pixel = 0.5 * tf.square((targets - mean) * tf.exp(-log_sigma)) + log_sigma + 0.5 * LOG_2PI
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1]), axis=-1)


def standard_normal_log_prob(z):
    """log N(z; 0, I) summed over the last axis."""
    return tf.reduce_sum(-0.5 * tf.square(z) - 0.5 * LOG_2PI, axis=-1)
