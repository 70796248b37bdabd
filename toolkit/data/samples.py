"""Offline sample datasets (see shared/OFFLINE.md): real images that reach machines with no internet.

One import for both kinds: the image datasets themselves (`fashion_mnist`, `digits`; defined in
`toolkit.data.image_samples`) and the detection / segmentation scenes pasted together from them
(`digit_scenes`, `Scenes`; defined in `toolkit.data.scenes`).
"""

from toolkit.data.image_samples import DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES, digits, fashion_mnist
from toolkit.data.scenes import Scenes, digit_scenes

__all__ = ["DEBIAN_FASHION_MNIST", "FASHION_MNIST_CLASSES", "Scenes", "digit_scenes", "digits", "fashion_mnist"]
