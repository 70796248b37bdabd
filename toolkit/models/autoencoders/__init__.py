"""Autoencoder family: undercomplete, sparse, denoising and contractive autoencoders, and anomaly detection.

Beside the VAE (`toolkit.models.vae`), per the lecture notes (F3:12794-12828). All take pixels, reconstruct
them through a code `z`, and train on `||x - g(f(x))||^2` plus their variant's term; `AnomalyDetector` wraps any
of them (or a VAE) into a scorer with a calibrated threshold.

Examples:
>>> from toolkit.models.autoencoders import KINDS, build_autoencoder
>>> KINDS
('undercomplete', 'sparse', 'denoising', 'contractive')
>>> build_autoencoder("sparse", (8, 8, 1), latent_dim=4, architecture="dense").sparsity_penalty
'l1'
"""

from __future__ import annotations

from toolkit.models.autoencoders.anomaly_detector import AnomalyDetector, threshold_at_fpr
from toolkit.models.autoencoders.autoencoder import OUTPUT_ACTIVATIONS, UndercompleteAutoencoder, squared_error
from toolkit.models.autoencoders.builders import (
    ARCHITECTURES,
    KINDS,
    build_autoencoder,
    build_conv_decoder,
    build_conv_encoder,
    build_dense_decoder,
    build_dense_encoder,
)
from toolkit.models.autoencoders.contractive import (
    JACOBIANS,
    ContractiveAutoencoder,
    jacobian_norm,
    sigmoid_dense_layer,
    sigmoid_jacobian_norm,
)
from toolkit.models.autoencoders.denoising import CORRUPTIONS, DenoisingAutoencoder
from toolkit.models.autoencoders.sparse import SPARSITY_PENALTIES, SparseAutoencoder, kl_sparsity, l1_activity

__all__ = [
    "ARCHITECTURES",
    "CORRUPTIONS",
    "JACOBIANS",
    "KINDS",
    "OUTPUT_ACTIVATIONS",
    "SPARSITY_PENALTIES",
    "AnomalyDetector",
    "ContractiveAutoencoder",
    "DenoisingAutoencoder",
    "SparseAutoencoder",
    "UndercompleteAutoencoder",
    "build_autoencoder",
    "build_conv_decoder",
    "build_conv_encoder",
    "build_dense_decoder",
    "build_dense_encoder",
    "jacobian_norm",
    "kl_sparsity",
    "l1_activity",
    "sigmoid_dense_layer",
    "sigmoid_jacobian_norm",
    "squared_error",
    "threshold_at_fpr",
]
