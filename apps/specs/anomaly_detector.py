"""The anomaly-detector task's options and CLI facts, importable without TensorFlow (`toolkit anomaly-detector --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

# model -> toolkit.models.autoencoders kind ("vae": toolkit.models.vae.VAE); a test checks they agree
MODELS = ("autoencoder", "denoising", "sparse", "contractive", "vae")
ARCHITECTURES = ("conv", "dense")  # toolkit.models.autoencoders.ARCHITECTURES
CORRUPTIONS = ("gaussian", "masking")  # toolkit.models.autoencoders.CORRUPTIONS
SPARSITY_PENALTIES = ("l1", "kl")  # toolkit.models.autoencoders.SPARSITY_PENALTIES


@dataclasses.dataclass
class Config(BaseConfig):
    """Anomaly-detector options (every field is also a `--flag` of `toolkit anomaly-detector train`)."""

    model: str = option("autoencoder", "what scores the images: autoencoder (undercomplete; reconstruction MSE), "
                        "denoising (trained on noisy inputs, clean targets), sparse (activity penalty on the code), "
                        "contractive (encoder-Jacobian penalty), vae (score: the negative ELBO in nats, Gaussian decoder with one "
                        "learned sigma on [0, 1] pixels)",
                        choices=MODELS)
    normal_classes: str = option("", "comma list of the class folders (or Fashion-MNIST class names / ids) that are "
                                 "normal; the other classes of --data are never trained on and become held-out "
                                 "anomalies; empty: every image of --data is normal (see --anomaly-classes)")
    anomaly_classes: str = option("", "comma list of the classes held out as anomalous (the rest are normal); the "
                                  "complement of --normal-classes, e.g. --data fashion-mnist --anomaly-classes sandal")
    target_fpr: float = option(0.05, "false-positive rate the threshold is picked at, on the validation split's "
                               "normal images: score > threshold flags an anomaly")
    architecture: str = option("conv", "encoder/decoder: conv (two stride-2 3x3 convs, mirrored; the VAE's) or "
                               "dense (MLP)", choices=ARCHITECTURES)
    latent_dim: int = option(16, "size of the code z (sparse: may exceed the input size)")
    width: int = option(32, "filters of the first conv layer (the second has twice as many)")
    hidden: int = option(256, "units of the hidden Dense layer next to the code")
    batch_size: int = option(128, "examples per batch")
    noise: str = option("gaussian", "denoising: the corruption, gaussian (additive, clipped to [0, 1]) or masking "
                        "(pixels set to 0)", choices=CORRUPTIONS)
    noise_level: float = option(0.2, "denoising: the noise's standard deviation on [0, 1] pixels, or the masked "
                                "fraction")
    sparsity_penalty: str = option("l1", "sparse: l1 (lambda * sum |z_j|) or kl (KL of each unit's mean sigmoid "
                                   "activation from --sparsity-target)", choices=SPARSITY_PENALTIES)
    sparsity_weight: float = option(1e-3, "sparse: lambda, the weight of the activity penalty")
    sparsity_target: float = option(0.05, "sparse with kl: the target mean activation rho")
    contractive_weight: float = option(0.1, "contractive: lambda, the weight of ||d z / d x||_F^2 (closed form for "
                                       "a one-layer sigmoid dense encoder, else tf.GradientTape.batch_jacobian)")
    elbo_samples: int = option(8, "vae: noise draws of the -ELBO score (fixed at training: the same image always "
                               "gets the same score)")
    image_size: str = option("", "resize images to HxW (e.g. 32x32); empty keeps the data's size")
    channels: int = option(0, "force 1 (grey) or 3 (RGB) channels; 0 keeps the data's")
    strict: bool = option(False, "fail on an unreadable image instead of skipping it with a warning")


class AnomalyDetectorSpec(TaskSpec):
    name = "anomaly-detector"
    description = ("Anomaly detection on images by reconstruction: fit an autoencoder (or VAE) on normal images, "
                   "score by reconstruction error (or -ELBO), threshold at a target false-positive rate, report "
                   "ROC-AUC / PR-AUC; export returns score, flag and threshold from image bytes.")
    config_cls = Config


SPEC = AnomalyDetectorSpec()
