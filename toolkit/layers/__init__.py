"""Custom, serializable Keras layers shared by the model families."""

from toolkit.layers.bahdanau import BahdanauAttention
from toolkit.layers.image_preprocessing import ImageNormalization
from toolkit.layers.scalar_mix import ScalarMix

__all__ = ["BahdanauAttention", "ImageNormalization", "ScalarMix"]
