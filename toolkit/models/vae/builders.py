"""Encoder and decoder builders (dense and convolutional) for the VAE and the plain autoencoder.

Encoders take images scaled to [0, 1] (`[B, H, W, C]`); a VAE encoder returns `(mu, log_var)`, an
autoencoder encoder returns `z`. Decoders take `z` and return per-pixel logits `[B, H, W, C]`
(the Bernoulli logits, or the pre-sigmoid Gaussian mean).
"""

from __future__ import annotations

import math

import keras

ARCHITECTURES = ("conv", "dense")


def _check(image_shape, latent_dim):
    if len(image_shape) != 3 or any(int(d) <= 0 for d in image_shape):
        raise ValueError(f"image_shape must be (height, width, channels). Received: {image_shape}")
    if int(latent_dim) < 1:
        raise ValueError(f"latent_dim must be >= 1. Received: latent_dim={latent_dim}")
    return tuple(int(d) for d in image_shape), int(latent_dim)


def build_encoder(image_shape, latent_dim: int, architecture: str = "conv", width: int = 32,
                  hidden: int = 256, variational: bool = True, name: str = "encoder") -> keras.Model:
    """Images in [0, 1] -> `[mu, log_var]` (variational) or `z` (plain autoencoder).

    Args:
        image_shape: `(H, W, C)`.
        latent_dim: size of z.
        architecture: `"conv"` (two stride-2 3x3 convolutions, `width` and `2 * width` filters, then a
            Dense(hidden)) or `"dense"` (Dense(2 * hidden) -> Dense(hidden)).
        width: filters of the first convolution.
        hidden: units of the last hidden Dense layer.
        variational: output `(mu, log_var)` heads; else a single `z` head.
        name: model name.

    Examples:
    >>> enc = build_encoder((28, 28, 1), 2)
    >>> [tuple(t.shape) for t in enc.outputs]
    [(None, 2), (None, 2)]
    """
    image_shape, latent_dim = _check(image_shape, latent_dim)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}. Received: {architecture!r}")
    inputs = keras.Input(image_shape, name="images")
    x = inputs
    if architecture == "conv":
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu")(x)
        x = keras.layers.Flatten()(x)
    else:
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(2 * hidden, activation="relu")(x)
    x = keras.layers.Dense(hidden, activation="relu")(x)
    if not variational:
        return keras.Model(inputs, keras.layers.Dense(latent_dim, name="z")(x), name=name)
    mu = keras.layers.Dense(latent_dim, name="mu")(x)
    log_var = keras.layers.Dense(latent_dim, name="log_var")(x)
    return keras.Model(inputs, [mu, log_var], name=name)


def build_decoder(image_shape, latent_dim: int, architecture: str = "conv", width: int = 32,
                  hidden: int = 256, name: str = "decoder") -> keras.Model:
    """`z` -> per-pixel logits `[B, H, W, C]`, the mirror image of `build_encoder`.

    The conv decoder starts at `ceil(H / 4) x ceil(W / 4)`, upsamples x4 with two stride-2 transposed
    convolutions and crops to `H x W`, so any image size works.

    Examples:
    >>> tuple(build_decoder((28, 28, 1), 2).output.shape)
    (None, 28, 28, 1)
    """
    image_shape, latent_dim = _check(image_shape, latent_dim)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}. Received: {architecture!r}")
    height, width_px, channels = image_shape
    inputs = keras.Input((latent_dim,), name="z")
    x = keras.layers.Dense(hidden, activation="relu")(inputs)
    if architecture == "conv":
        h4, w4 = math.ceil(height / 4), math.ceil(width_px / 4)
        x = keras.layers.Dense(h4 * w4 * 2 * width, activation="relu")(x)
        x = keras.layers.Reshape((h4, w4, 2 * width))(x)
        x = keras.layers.Conv2DTranspose(2 * width, 3, strides=2, padding="same", activation="relu")(x)
        x = keras.layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(channels, 3, padding="same", name="logits")(x)
        crop_h, crop_w = 4 * h4 - height, 4 * w4 - width_px
        if crop_h or crop_w:
            x = keras.layers.Cropping2D(((0, crop_h), (0, crop_w)))(x)
    else:
        x = keras.layers.Dense(2 * hidden, activation="relu")(x)
        x = keras.layers.Dense(height * width_px * channels, name="logits")(x)
        x = keras.layers.Reshape(image_shape)(x)
    return keras.Model(inputs, x, name=name)
