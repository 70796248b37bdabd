"""The denoising autoencoder: trained on pairs (x~, x), a corrupted input and its clean target (F3:12813)."""

from __future__ import annotations

import keras
import tensorflow as tf

from toolkit.models.autoencoders.autoencoder import _Autoencoder

CORRUPTIONS = ("gaussian", "masking")


@keras.saving.register_keras_serializable(package="toolkit")
class DenoisingAutoencoder(_Autoencoder):
    """Autoencoder trained to undo a corruption: loss `||x - g(f(x~))||^2` with `x~ = corrupt(x)` while training.

    At inference the input is used as it is (no noise), so its reconstruction error scores how far an input is
    from what the model learned to restore.

    Args:
        encoder, decoder, output_activation, pixel_scale: as for `UndercompleteAutoencoder`.
        corruption: `"gaussian"` (`x + noise_level * eps`, `eps ~ N(0, I)`, clipped to [0, 1] with a sigmoid
            output) or `"masking"` (each element set to 0 with probability `noise_level`).
        noise_level: the noise's standard deviation on the scaled axis, or the masked fraction.
        seed: seed of the corruption's generator.

    Examples:
    >>> from toolkit.models.autoencoders import build_autoencoder
    >>> dae = build_autoencoder("denoising", (8, 8, 1), latent_dim=4, architecture="dense", corruption="masking",
    ...                         noise_level=0.5, seed=0)
    >>> x = tf.ones((64, 8, 8, 1))
    >>> masked = float(tf.reduce_mean(tf.cast(dae.corrupt(x, training=True) == 0, tf.float32)))
    >>> 0.45 < masked < 0.55, bool(tf.reduce_all(dae.corrupt(x, training=False) == x))
    (True, True)
    """

    def __init__(self, encoder, decoder, output_activation="sigmoid", pixel_scale=255.0, corruption="gaussian",
                 noise_level=0.2, seed=None, **kwargs):
        super().__init__(encoder, decoder, output_activation=output_activation, pixel_scale=pixel_scale, **kwargs)
        if corruption not in CORRUPTIONS:
            raise ValueError(f"corruption must be one of {CORRUPTIONS}. Received: corruption={corruption!r}")
        if noise_level < 0 or (corruption == "masking" and noise_level >= 1):
            raise ValueError(f"noise_level must be >= 0 (a masked fraction < 1). Received: noise_level={noise_level}")
        self.corruption, self.noise_level, self.seed = corruption, float(noise_level), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def corrupt(self, x, training=False):
        """`x~`: the corrupted input while training, `x` itself otherwise."""
        if not training or self.noise_level == 0:
            return x
        if self.corruption == "masking":
            keep = keras.random.uniform(tf.shape(x), seed=self.seed_generator) >= self.noise_level
            return x * tf.cast(keep, x.dtype)
        noisy = x + self.noise_level * keras.random.normal(tf.shape(x), dtype=x.dtype, seed=self.seed_generator)
        return tf.clip_by_value(noisy, 0.0, 1.0) if self.output_activation == "sigmoid" else noisy

    def get_config(self):
        return {**super().get_config(), "corruption": self.corruption, "noise_level": self.noise_level,
                "seed": self.seed}
