"""Standard image augmentation as Keras preprocessing layers (active in training only)."""

from __future__ import annotations

import keras


def build_augmentation(
    flip: str | None = "horizontal",
    translate: float = 0.1,
    brightness: float = 0.1,
    contrast: float = 0.1,
    seed: int | None = None,
    name: str = "augmentation",
) -> keras.Sequential:
    """Builds a flip / translate / brightness / contrast pipeline for images in [0, 255].

    The layers are identity at inference, so the pipeline can sit inside a model that is exported.

    Args:
        flip: `"horizontal"`, `"vertical"`, `"horizontal_and_vertical"` or None.
        translate: max shift as a fraction of height and width (0 disables).
        brightness: max brightness change as a fraction of the value range (0 disables).
        contrast: max contrast factor change (0 disables).
        seed: random seed.
        name: layer name.

    Examples:
    >>> aug = build_augmentation(flip=None, translate=0.0, brightness=0.0, contrast=0.0)
    >>> len(aug.layers)
    0
    """
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip(flip, seed=seed))
    if translate:
        layers.append(keras.layers.RandomTranslation(translate, translate, fill_mode="nearest", seed=seed))
    if brightness:
        layers.append(keras.layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0, 255), seed=seed))
    return keras.Sequential(layers, name=name)
