"""The deterministic autoencoder the family shares: x -> z = f(x) -> x_hat = g(z), loss ||x - x_hat||^2.

Lecture notes (SEED_CATALOGUE section 8, F3:12794-12828): `L = sum_i ||x_i - g(f(x_i))||^2`; with `k < d` the
bottleneck forces compression (undercomplete); a linear encoder and decoder learn PCA's subspace. The variants
(sparse, denoising, contractive) subclass `_Autoencoder` and change one thing each: a penalty on the code, or
the input the encoder sees while training.

Every model takes pixels (`[B, H, W, C]`, in [0, `pixel_scale`]; 255 for images as every toolkit pipeline yields
them) and works on `x = pixels / pixel_scale`. The decoder returns pre-activation outputs; `output_activation`
(`"sigmoid"` for images in [0, 1], `"linear"` for real-valued data) turns them into the reconstruction.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from toolkit.models.loss_parts import LossPartsModel

OUTPUT_ACTIVATIONS = ("sigmoid", "linear")


def squared_error(x, reconstruction):
    """`||x - x_hat||^2` per example (summed over every non-batch axis): the notes' reconstruction loss.

    Examples:
    >>> float(squared_error(tf.constant([[1.0, 2.0]]), tf.constant([[0.0, 4.0]]))[0])
    5.0
    """
    diff = tf.reshape(tf.cast(x, tf.float32) - tf.cast(reconstruction, tf.float32), [tf.shape(x)[0], -1])
    return tf.reduce_sum(tf.square(diff), axis=-1)


class _Autoencoder(LossPartsModel):
    """Shared by every autoencoder of the family: scaling, encode / decode, the loss parts and the training step.

    `fit` on batches of pixels (labels, if any, are ignored) reports `loss` (reconstruction + penalty),
    `reconstruction` (`||x - x_hat||^2` per example, batch mean), `penalty` and `mse` (per element).
    """

    penalty_name = ""  # what `penalty` computes, for the docs and the history

    def __init__(self, encoder, decoder, output_activation="sigmoid", pixel_scale=255.0, **kwargs):
        super().__init__(**kwargs)
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}. "
                             f"Received: output_activation={output_activation!r}")
        if not pixel_scale or float(pixel_scale) <= 0:
            raise ValueError(f"pixel_scale must be > 0. Received: pixel_scale={pixel_scale}")
        self.encoder, self.decoder = encoder, decoder
        self.output_activation, self.pixel_scale = output_activation, float(pixel_scale)
        self.latent_dim = int(decoder.inputs[0].shape[-1])
        self.image_shape = tuple(int(d) for d in encoder.inputs[0].shape[1:])
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "reconstruction", "penalty", "mse")}
        self.built = True  # the encoder and decoder are functional models, built at construction

    def build(self, input_shape=None):
        self.built = True

    # ---- the maps -----------------------------------------------------------------------------------
    def scale(self, pixels):
        """Pixels -> what the encoder sees and the decoder reconstructs: `pixels / pixel_scale`."""
        return tf.cast(pixels, tf.float32) / self.pixel_scale

    def encode(self, pixels, training=False):
        """Pixels -> the code `z = f(x)`."""
        return tf.cast(self.encoder(self.scale(pixels), training=training), tf.float32)

    def decode(self, z, training=False):
        """Codes -> reconstructions on the scaled axis (`[0, 1]` for images with a sigmoid output)."""
        out = tf.cast(self.decoder(z, training=training), tf.float32)
        return tf.sigmoid(out) if self.output_activation == "sigmoid" else out

    def call(self, pixels, training=False):
        """The reconstruction `g(f(x))` on the scaled axis (multiply by `pixel_scale` for pixels)."""
        return self.decode(self.encode(pixels, training=training), training=training)

    def reconstruction_error(self, pixels):
        """Per-example mean squared error on the scaled axis: the anomaly score (higher: less like the data)."""
        x = self.scale(pixels)
        size = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
        return squared_error(x, self(pixels, training=False)) / size

    # ---- the objective ---------------------------------------------------------------------------------
    def corrupt(self, x, training=False):
        """What the encoder sees while training (the denoising autoencoder corrupts it); `x` itself here."""
        return x

    def penalty(self, x, z, training=False):
        """The regularizer on the code, per example (`[B]`); none for the plain autoencoder."""
        return tf.zeros([tf.shape(x)[0]], tf.float32)

    def loss_parts(self, pixels, training=False):
        """Batch means of `reconstruction` (`||x - g(f(x~))||^2`), `penalty`, their sum `loss`, and `mse`."""
        x = self.scale(pixels)
        z = tf.cast(self.encoder(self.corrupt(x, training), training=training), tf.float32)
        reconstruction = self.decode(z, training=training)
        per_example = squared_error(x, reconstruction)
        penalty = self.penalty(x, z, training)
        size = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
        return {"loss": tf.reduce_mean(per_example + penalty), "reconstruction": tf.reduce_mean(per_example),
                "penalty": tf.reduce_mean(penalty), "mse": tf.reduce_mean(per_example) / size}

    # ---- config ----------------------------------------------------------------------------------------
    def get_config(self):
        return {**self._coder_config(), "output_activation": self.output_activation, "pixel_scale": self.pixel_scale}


@keras.saving.register_keras_serializable(package="toolkit")
class UndercompleteAutoencoder(_Autoencoder):
    """The plain autoencoder with a bottleneck: `k = latent_dim < d` (input size), loss `||x - g(f(x))||^2`.

    Args:
        encoder: scaled inputs `[B, H, W, C]` -> `z [B, k]` (see `build_dense_encoder`, `build_conv_encoder`).
        decoder: `z` -> pre-activation reconstructions `[B, H, W, C]`.
        output_activation: `"sigmoid"` (images in [0, 1]) or `"linear"` (real values; with linear layers, PCA).
        pixel_scale: inputs are divided by this (255 for pixels, 1 for data already scaled).

    Examples:
    >>> from toolkit.models.autoencoders import build_autoencoder
    >>> ae = build_autoencoder("undercomplete", (8, 8, 1), latent_dim=3, architecture="dense", hidden=(16,))
    >>> pixels = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1)).astype("float32")
    >>> tuple(ae.encode(pixels).shape), tuple(ae(pixels).shape), tuple(ae.reconstruction_error(pixels).shape)
    ((4, 3), (4, 8, 8, 1), (4,))
    >>> sorted(ae.loss_parts(pixels))
    ['loss', 'mse', 'penalty', 'reconstruction']
    """

    def __init__(self, encoder, decoder, output_activation="sigmoid", pixel_scale=255.0, **kwargs):
        super().__init__(encoder, decoder, output_activation=output_activation, pixel_scale=pixel_scale, **kwargs)
        size = 1
        for d in self.image_shape:
            size *= d
        if self.latent_dim >= size:
            raise ValueError(f"an undercomplete autoencoder needs latent_dim < the input size ({size}); use "
                             f"SparseAutoencoder for an overcomplete code. Received: latent_dim={self.latent_dim}")
