"""Custom, serializable Keras layers shared by the model families."""

from toolkit.layers.image_preprocessing import ImageNormalization

__all__ = ["ImageNormalization"]
