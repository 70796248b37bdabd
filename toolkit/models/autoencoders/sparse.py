"""The sparse autoencoder: an activity penalty on the code, so an overcomplete code (k >= d) still compresses.

Two penalties (the notes name the idea, F3:12812; neither gives a formula, so these are the standard two):
- `"l1"`: `lambda * sum_j |z_j|` per example (Keras' `activity_regularizer=L1(lambda)` on the code layer);
- `"kl"`: `lambda * sum_j KL(rho || rho_hat_j)`, `rho_hat_j` = the batch mean of `z_j` (a sigmoid code in (0, 1)),
  `KL(rho || q) = rho log(rho / q) + (1 - rho) log((1 - rho) / (1 - q))` (Ng's sparse autoencoder).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from toolkit.models.autoencoders.autoencoder import _Autoencoder

SPARSITY_PENALTIES = ("l1", "kl")


def l1_activity(z):
    """`sum_j |z_j|` per example.

    Examples:
    >>> float(l1_activity(tf.constant([[1.0, -2.0, 0.5]]))[0])
    3.5
    """
    return tf.reduce_sum(tf.abs(tf.cast(z, tf.float32)), axis=-1)


def kl_sparsity(z, target: float, epsilon: float = 1e-7):
    """`sum_j KL(target || rho_hat_j)` with `rho_hat_j` the mean of `z_j` over the batch (one value per batch).

    Examples:
    >>> round(float(kl_sparsity(tf.constant([[0.1], [0.3]]), 0.2)), 6)   # rho_hat = 0.2: no penalty
    0.0
    """
    rho_hat = tf.clip_by_value(tf.reduce_mean(tf.cast(z, tf.float32), axis=0), epsilon, 1.0 - epsilon)
    rho = tf.constant(target, tf.float32)
    return tf.reduce_sum(rho * tf.math.log(rho / rho_hat) + (1 - rho) * tf.math.log((1 - rho) / (1 - rho_hat)))


@keras.saving.register_keras_serializable(package="toolkit")
class SparseAutoencoder(_Autoencoder):
    """Autoencoder with an activity penalty on the code: loss `||x - g(f(x))||^2 + sparsity_weight * Omega(z)`.

    The code may be larger than the input (overcomplete): the penalty, not the bottleneck, forces it to compress.

    Args:
        encoder, decoder, output_activation, pixel_scale: as for `UndercompleteAutoencoder`.
        sparsity_weight: lambda, the weight of the penalty.
        penalty: `"l1"` (`sum_j |z_j|` per example) or `"kl"` (KL of each unit's mean activation from
            `sparsity_target`; needs a code in (0, 1): a sigmoid `latent_activation`).
        sparsity_target: rho of the `"kl"` penalty.

    Examples:
    >>> from toolkit.models.autoencoders import build_autoencoder
    >>> ae = build_autoencoder("sparse", (4, 4, 1), latent_dim=32, architecture="dense", sparsity_weight=0.1)
    >>> x = np.ones((2, 4, 4, 1), "float32") * 255
    >>> parts = ae.loss_parts(x)
    >>> bool(abs(float(parts["penalty"]) - 0.1 * float(tf.reduce_mean(l1_activity(ae.encode(x))))) < 1e-6)
    True
    """

    def __init__(self, encoder, decoder, output_activation="sigmoid", pixel_scale=255.0, sparsity_weight=1e-3,
                 penalty="l1", sparsity_target=0.05, **kwargs):
        super().__init__(encoder, decoder, output_activation=output_activation, pixel_scale=pixel_scale, **kwargs)
        if penalty not in SPARSITY_PENALTIES:
            raise ValueError(f"penalty must be one of {SPARSITY_PENALTIES}. Received: penalty={penalty!r}")
        if sparsity_weight < 0:
            raise ValueError(f"sparsity_weight must be >= 0. Received: sparsity_weight={sparsity_weight}")
        if not 0.0 < sparsity_target < 1.0:
            raise ValueError(f"sparsity_target must be in (0, 1). Received: sparsity_target={sparsity_target}")
        self.sparsity_weight, self.sparsity_penalty = float(sparsity_weight), penalty
        self.sparsity_target = float(sparsity_target)

    def penalty(self, x, z, training=False):
        if self.sparsity_penalty == "l1":
            return self.sparsity_weight * l1_activity(z)
        return tf.fill([tf.shape(z)[0]], self.sparsity_weight * kl_sparsity(z, self.sparsity_target))

    def get_config(self):
        return {**super().get_config(), "sparsity_weight": self.sparsity_weight, "penalty": self.sparsity_penalty,
                "sparsity_target": self.sparsity_target}
