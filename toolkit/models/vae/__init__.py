"""Variational autoencoder family: Sampling layer, encoder/decoder builders, VAE and plain autoencoder.

Examples:
>>> from toolkit.models.vae import build_vae
>>> vae = build_vae((28, 28, 1), latent_dim=16, architecture="conv")
>>> vae.latent_dim
16
"""

from __future__ import annotations

from toolkit.models.vae.builders import ARCHITECTURES, build_decoder, build_encoder
from toolkit.models.vae.layers import Sampling, bernoulli_nll, gaussian_nll, kl_divergence, standard_normal_log_prob
from toolkit.models.vae.model import LIKELIHOODS, VAE, Autoencoder


def build_vae(image_shape, latent_dim: int = 16, architecture: str = "conv", width: int = 32, hidden: int = 256,
              likelihood: str = "bernoulli", binarize: bool = True, beta: float = 1.0, kl_warmup_steps: int = 0,
              seed=None) -> VAE:
    """A `VAE` with matching `build_encoder` / `build_decoder` (see their docs for the layer sizes).

    Examples:
    >>> vae = build_vae((8, 8, 1), latent_dim=2, width=4, hidden=8, seed=0)
    >>> pixels = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 1)).astype("float32")
    >>> tuple(vae(pixels).shape)   # mean images in [0, 1]
    (2, 8, 8, 1)
    >>> parts = vae.loss_parts(pixels)   # nats per image
    >>> sorted(parts), bool(parts["neg_elbo"] >= parts["reconstruction"])
    (['beta', 'kl', 'loss', 'neg_elbo', 'reconstruction'], True)
    """
    return VAE(
        build_encoder(image_shape, latent_dim, architecture, width, hidden, variational=True),
        build_decoder(image_shape, latent_dim, architecture, width, hidden),
        likelihood=likelihood, binarize=binarize, beta=beta, kl_warmup_steps=kl_warmup_steps, seed=seed,
        name="vae",
    )


def build_autoencoder(image_shape, latent_dim: int = 16, architecture: str = "conv", width: int = 32,
                      hidden: int = 256, likelihood: str = "bernoulli", binarize: bool = True) -> Autoencoder:
    """A plain `Autoencoder` with the same encoder body and decoder as `build_vae` (for comparisons).

    Examples:
    >>> ae = build_autoencoder((8, 8, 1), latent_dim=2, width=4, hidden=8)
    >>> pixels = np.full((2, 8, 8, 1), 255.0, "float32")
    >>> tuple(ae.encode(pixels).shape), tuple(ae(pixels).shape)
    ((2, 2), (2, 8, 8, 1))
    >>> sorted(ae.loss_parts(pixels))
    ['loss', 'mse', 'reconstruction']
    """
    return Autoencoder(
        build_encoder(image_shape, latent_dim, architecture, width, hidden, variational=False),
        build_decoder(image_shape, latent_dim, architecture, width, hidden),
        likelihood=likelihood, binarize=binarize, name="autoencoder",
    )


__all__ = [
    "ARCHITECTURES",
    "LIKELIHOODS",
    "VAE",
    "Autoencoder",
    "Sampling",
    "bernoulli_nll",
    "build_autoencoder",
    "build_decoder",
    "build_encoder",
    "build_vae",
    "gaussian_nll",
    "kl_divergence",
    "standard_normal_log_prob",
]
