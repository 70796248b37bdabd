"""Custom, serializable Keras layers shared by the model families."""

from toolkit.layers.bahdanau import BahdanauAttention
from toolkit.layers.class_token import ClassToken
from toolkit.layers.graph import GCNConv, MessagePassing
from toolkit.layers.hyper_connection import HyperConnection, sinkhorn_knopp
from toolkit.layers.image_preprocessing import ImageNormalization
from toolkit.layers.lora import LoRAEinsumDense
from toolkit.layers.mixture_of_experts import MixtureOfExperts
from toolkit.layers.ode_block import EulerODEBlock
from toolkit.layers.positions import PositionalSelfAttention
from toolkit.layers.scalar_mix import ScalarMix

__all__ = ["BahdanauAttention", "ClassToken", "EulerODEBlock", "GCNConv", "HyperConnection", "ImageNormalization",
           "LoRAEinsumDense", "MessagePassing", "MixtureOfExperts", "PositionalSelfAttention", "ScalarMix",
           "sinkhorn_knopp"]
