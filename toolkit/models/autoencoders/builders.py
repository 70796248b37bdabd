"""Encoder / decoder builders and `build_autoencoder`, the one factory of the family.

Encoders take inputs already scaled (`pixels / pixel_scale`) and return the code `z`; decoders return
pre-activation reconstructions (the model applies its `output_activation`). The conv pair is the VAE's
(`toolkit.models.vae.build_encoder(variational=False)` / `build_decoder`: two stride-2 3x3 convs, mirrored),
so the autoencoders and the VAE compared in the anomaly benchmark differ only in their objective.
"""

from __future__ import annotations

import keras

from toolkit.models.autoencoders.autoencoder import UndercompleteAutoencoder
from toolkit.models.autoencoders.contractive import ContractiveAutoencoder
from toolkit.models.autoencoders.denoising import DenoisingAutoencoder
from toolkit.models.autoencoders.sparse import SparseAutoencoder
from toolkit.models.vae.builders import build_decoder as build_conv_decoder_body
from toolkit.models.vae.builders import build_encoder as build_conv_encoder_body

KINDS = ("undercomplete", "sparse", "denoising", "contractive")
ARCHITECTURES = ("conv", "dense")
_CLASSES = {"undercomplete": UndercompleteAutoencoder, "sparse": SparseAutoencoder,
            "denoising": DenoisingAutoencoder, "contractive": ContractiveAutoencoder}


def _shape(input_shape, latent_dim):
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"input_shape must be positive sizes, e.g. (H, W, C) or (d,). Received: {input_shape}")
    if int(latent_dim) < 1:
        raise ValueError(f"latent_dim must be >= 1. Received: latent_dim={latent_dim}")
    return shape, int(latent_dim)


def build_dense_encoder(input_shape, latent_dim: int, hidden=(256,), activation: str = "relu",
                        latent_activation: str = "linear", name: str = "encoder") -> keras.Model:
    """Flatten -> Dense(h) for each h in `hidden` -> Dense(latent_dim, latent_activation) named `z`.

    `hidden=()` with a linear code is a linear encoder (PCA's subspace); with a sigmoid code it is the one-layer
    encoder whose Jacobian penalty has a closed form.

    Examples:
    >>> tuple(build_dense_encoder((28, 28, 1), 8).output.shape)
    (None, 8)
    """
    shape, latent_dim = _shape(input_shape, latent_dim)
    inputs = keras.Input(shape, name="inputs")
    x = keras.layers.Flatten()(inputs)
    for units in hidden:
        x = keras.layers.Dense(int(units), activation=activation)(x)
    return keras.Model(inputs, keras.layers.Dense(latent_dim, activation=latent_activation, name="z")(x), name=name)


def build_dense_decoder(input_shape, latent_dim: int, hidden=(256,), activation: str = "relu",
                        name: str = "decoder") -> keras.Model:
    """`z` -> Dense(h) for each h in reversed `hidden` -> Dense(prod(input_shape)) -> Reshape (pre-activation).

    Examples:
    >>> tuple(build_dense_decoder((28, 28, 1), 8).output.shape)
    (None, 28, 28, 1)
    """
    shape, latent_dim = _shape(input_shape, latent_dim)
    size = 1
    for d in shape:
        size *= d
    inputs = keras.Input((latent_dim,), name="z")
    x = inputs
    for units in reversed(tuple(hidden)):
        x = keras.layers.Dense(int(units), activation=activation)(x)
    x = keras.layers.Dense(size, name="outputs")(x)
    return keras.Model(inputs, keras.layers.Reshape(shape)(x), name=name)


def build_conv_encoder(image_shape, latent_dim: int, width: int = 32, hidden: int = 256,
                       name: str = "encoder") -> keras.Model:
    """Two stride-2 3x3 convs (`width`, `2 * width` filters) -> Dense(hidden) -> Dense(latent_dim): the VAE's body.

    Examples:
    >>> tuple(build_conv_encoder((28, 28, 1), 8, width=4, hidden=16).output.shape)
    (None, 8)
    """
    return build_conv_encoder_body(image_shape, latent_dim, "conv", width, hidden, variational=False, name=name)


def build_conv_decoder(image_shape, latent_dim: int, width: int = 32, hidden: int = 256,
                       name: str = "decoder") -> keras.Model:
    """The conv encoder's mirror (transposed convs, cropped to any H x W): pre-activation images."""
    return build_conv_decoder_body(image_shape, latent_dim, "conv", width, hidden, name=name)


def build_autoencoder(kind: str, input_shape, latent_dim: int = 16, architecture: str = "conv", width: int = 32,
                      hidden=256, latent_activation: str = "linear", output_activation: str = "sigmoid",
                      pixel_scale: float = 255.0, **options):
    """One autoencoder of the family with matching encoder and decoder.

    Args:
        kind: `"undercomplete"`, `"sparse"` (options `sparsity_weight`, `penalty`, `sparsity_target`),
            `"denoising"` (`corruption`, `noise_level`, `seed`) or `"contractive"` (`contractive_weight`,
            `jacobian`).
        input_shape: `(H, W, C)` (conv or dense) or `(d,)` (dense).
        latent_dim: size of the code.
        architecture: `"conv"` (the VAE's conv body) or `"dense"`.
        width: filters of the first conv (conv only).
        hidden: conv: units of the Dense next to the code (int); dense: an int or a tuple of hidden widths
            (`()`: linear maps, one layer each way).
        latent_activation: the code's activation (dense only; `"sigmoid"` for the KL sparsity penalty and the
            contractive closed form).
        output_activation: `"sigmoid"` (images in [0, 1]) or `"linear"`.
        pixel_scale: inputs are divided by this before encoding (255 for pixels).

    Examples:
    >>> ae = build_autoencoder("contractive", (8, 8, 1), latent_dim=2, architecture="conv", width=4, hidden=8)
    >>> type(ae).__name__, ae.jacobian_method
    ('ContractiveAutoencoder', 'autodiff')
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}. Received: architecture={architecture!r}")
    if architecture == "conv":
        if latent_activation != "linear":
            raise ValueError(f"latent_activation applies to the dense architecture only. "
                             f"Received: latent_activation={latent_activation!r}")
        encoder = build_conv_encoder(input_shape, latent_dim, width, int(hidden))
        decoder = build_conv_decoder(input_shape, latent_dim, width, int(hidden))
    else:
        widths = (int(hidden),) if isinstance(hidden, int) else tuple(hidden)
        encoder = build_dense_encoder(input_shape, latent_dim, widths, latent_activation=latent_activation)
        decoder = build_dense_decoder(input_shape, latent_dim, widths)
    return _CLASSES[kind](encoder, decoder, output_activation=output_activation, pixel_scale=pixel_scale,
                          name=f"{kind}_autoencoder", **options)
