"""Anomaly detection by reconstruction: a model trained on normal data scores how unlike it an input is.

The notes (F3:12824): "High reconstruction error indicates the input differs from training distribution". The
score is the autoencoder's per-image mean squared reconstruction error, or, for a VAE, the negative ELBO in
nats (`-log p(x)` bound: reconstruction likelihood + KL), estimated with fixed noise draws held in the model
(same image -> same score, whatever the batch). The decision threshold is a (non-trainable) weight of the
model, picked on held-out normal data at a chosen false-positive rate (`calibrate`), so a saved model and
its exports carry their own decision.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf


def threshold_at_fpr(normal_scores, target_fpr: float) -> float:
    """The smallest observed normal score `t` such that at most `target_fpr` of `normal_scores` lie above it.

    Flagging `score > t` then gives a false-positive rate on these scores of at most `target_fpr` (and within
    `1 / n` of it when the scores are distinct): `t` is the `ceil(n (1 - target_fpr))`-th smallest score.

    Examples:
    >>> threshold_at_fpr(np.arange(1, 21), 0.05)    # 20 scores: one may lie above -> t = 19
    19.0
    >>> threshold_at_fpr([3.0, 1.0, 2.0], 0.0)       # no false positive allowed: the largest score
    3.0
    """
    scores = np.sort(np.asarray(normal_scores, "float64").ravel())
    if scores.size == 0:
        raise ValueError("the threshold needs at least one normal score. Received: 0 scores")
    if not 0.0 <= target_fpr < 1.0:
        raise ValueError(f"target_fpr must be in [0, 1). Received: target_fpr={target_fpr}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"normal scores must be finite; {int(np.sum(~np.isfinite(scores)))} are not")
    rank = max(1, math.ceil(scores.size * (1.0 - target_fpr) - 1e-9))
    return float(scores[rank - 1])


def _is_variational(autoencoder) -> bool:
    return hasattr(autoencoder, "log_weights") and hasattr(autoencoder, "latent_dim")


@keras.saving.register_keras_serializable(package="toolkit")
class AnomalyDetector(keras.Model):
    """Scores inputs with an autoencoder trained on normal data; flags `score > threshold`.

    `call(pixels)` returns `{"score": [B] float32, "is_anomaly": [B] int32 (1 = anomalous)}`.

    Args:
        autoencoder: any autoencoder of this family (score: `reconstruction_error`, per-image MSE on [0, 1]) or a
            `toolkit.models.vae.VAE` (score: the negative ELBO in nats per image).
        elbo_samples: VAE only: noise draws K of the negative-ELBO estimate `-mean_k log w_k`.
        seed: seed of those draws (fixed at construction, stored as a weight: scoring is deterministic).
        threshold: the initial threshold (default inf: nothing is flagged until `calibrate`).

    Examples:
    >>> from toolkit.models.autoencoders import build_autoencoder
    >>> detector = AnomalyDetector(build_autoencoder("undercomplete", (8, 8, 1), 4, architecture="dense"))
    >>> normal = np.random.default_rng(0).integers(0, 128, (40, 8, 8, 1)).astype("float32")
    >>> t = detector.calibrate(normal, target_fpr=0.1)
    >>> out = detector(normal)
    >>> sorted(out), float(np.mean(out["is_anomaly"]))    # at most 10% of the calibration data flagged
    (['is_anomaly', 'score'], 0.1)
    """

    def __init__(self, autoencoder, elbo_samples: int = 8, seed: int = 0, threshold: float = float("inf"),
                 **kwargs):
        super().__init__(**kwargs)
        if int(elbo_samples) < 1:
            raise ValueError(f"elbo_samples must be >= 1. Received: elbo_samples={elbo_samples}")
        self.autoencoder = autoencoder
        self.elbo_samples, self.seed, self.initial_threshold = int(elbo_samples), int(seed), float(threshold)
        self.variational = _is_variational(autoencoder)
        self.image_shape = tuple(int(d) for d in autoencoder.image_shape)
        self.threshold = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial_threshold),
                                         trainable=False, name="threshold")
        self.noise = None
        if self.variational:
            draws = np.random.default_rng(self.seed).standard_normal((self.elbo_samples, autoencoder.latent_dim))
            self.noise = self.add_weight(shape=draws.shape, initializer=keras.initializers.Constant(draws),
                                         trainable=False, name="elbo_noise")
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    @property
    def score_name(self) -> str:
        return "neg_elbo" if self.variational else "reconstruction_mse"

    def score(self, pixels):
        """Per-image anomaly score `[B]`: the negative ELBO (VAE, nats) or the reconstruction MSE on [0, 1]."""
        pixels = tf.cast(pixels, tf.float32)
        if not self.variational:
            return tf.cast(self.autoencoder.reconstruction_error(pixels), tf.float32)
        noise = tf.cast(self.noise, tf.float32)[None]  # one set of draws for every row: batch-independent
        noise = tf.broadcast_to(noise, [tf.shape(pixels)[0], self.elbo_samples, self.autoencoder.latent_dim])
        return -tf.reduce_mean(tf.cast(self.autoencoder.log_weights(pixels, noise), tf.float32), axis=-1)

    def call(self, pixels, training=False):
        score = self.score(pixels)
        return {"score": score, "is_anomaly": tf.cast(score > tf.cast(self.threshold, tf.float32), tf.int32)}

    def calibrate(self, normal, target_fpr: float = 0.05, batch_size: int = 512) -> float:
        """Sets the threshold at `target_fpr` on normal data (pixels `[N, ...]` or a dataset of batches); returns it."""
        scores = self.scores_of(normal, batch_size)
        threshold = threshold_at_fpr(scores, target_fpr)
        self.threshold.assign(threshold)
        return threshold

    def scores_of(self, data, batch_size: int = 512) -> np.ndarray:
        """Scores of an array of pixels or a `tf.data` dataset of batches (images, or `(images, ...)`)."""
        score = tf.function(self.score, reduce_retracing=True)
        if isinstance(data, tf.data.Dataset):
            batches = (b[0] if isinstance(b, (tuple, list)) else b for b in data)
        else:
            data = np.asarray(data, "float32")
            batches = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
        parts = [score(tf.convert_to_tensor(b, tf.float32)).numpy() for b in batches]
        return np.concatenate(parts) if parts else np.zeros((0,), "float32")

    def get_config(self):
        return {"name": self.name, "autoencoder": keras.saving.serialize_keras_object(self.autoencoder),
                "elbo_samples": self.elbo_samples, "seed": self.seed, "threshold": self.initial_threshold}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["autoencoder"] = keras.saving.deserialize_keras_object(config["autoencoder"])
        return cls(**config)
