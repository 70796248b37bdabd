"""The vae task's options and CLI facts, importable without TensorFlow (`toolkit vae --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

ARCHITECTURES = ("conv", "dense")  # toolkit.models.vae.ARCHITECTURES (a test checks)
LIKELIHOODS = ("bernoulli", "gaussian")  # toolkit.models.vae.LIKELIHOODS


@dataclasses.dataclass
class Config(BaseConfig):
    """VAE options (every field is also a `--flag` of `toolkit vae train`)."""

    batch_size: int = option(128, "examples per batch")
    architecture: str = option("conv", "encoder/decoder: conv (2 stride-2 convs) or dense (MLP)", choices=ARCHITECTURES)
    latent_dim: int = option(16, "size of the latent z")
    width: int = option(32, "filters of the first conv layer (the second has twice as many)")
    hidden: int = option(256, "units of the hidden Dense layer next to the latent")
    likelihood: str = option("bernoulli", "p(x|z): bernoulli (pixels binarised at 0.5 -> true nats) or gaussian "
                             "(learned scalar sigma on [0, 1] pixels; a density)", choices=LIKELIHOODS)
    binarize: bool = option(True, "bernoulli only: threshold pixels at 0.5 (off: grey levels as soft targets, "
                            "then the nats are a cross-entropy, not a likelihood)")
    beta: float = option(1.0, "weight of the KL term (beta-VAE); 1 optimises the ELBO")
    kl_warmup_epochs: float = option(0.0, "raise the KL weight linearly from 0 to beta over this many epochs")
    image_size: str = option("", "resize images to HxW (e.g. 32x32); empty keeps the data's size")
    channels: int = option(0, "force 1 (grey) or 3 (RGB) channels; 0 keeps the data's")
    iw_samples: int = option(100, "k of the importance-weighted bound on -log p(x) at evaluation")
    iw_images: int = option(1000, "held-out images the k-sample bound is computed on (0: all)")
    semi_supervised: str = option("10,100", "labels per class for the few-label classifier on mu vs raw pixels "
                                  "(comma list; empty disables; needs labels)")
    semi_supervised_repeats: int = option(3, "random draws of the labelled subset (mean and std reported)")
    strict: bool = option(False, "fail on an unreadable image instead of skipping it with a warning")


class VaeSpec(TaskSpec):
    name = "vae"
    description = ("Variational autoencoder on images (Fashion-MNIST by default: --data fashion-mnist): "
                   "nats per image, samples, interpolation, few-label classification, encode/decode/sample export.")
    config_cls = Config


SPEC = VaeSpec()
