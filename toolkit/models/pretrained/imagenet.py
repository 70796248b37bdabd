"""ImageNet pieces that work offline: the 1000 class names, foolbox's 20 labelled samples, and a
raw-pixel ImageNet classifier (normalisation inside, ImageNet head kept) for any keras.applications family.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import re

import keras

from toolkit.models.pretrained.sources import SAMPLE_SOURCES, read_members


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> list:
    """The 1000 ImageNet class names in Keras' class order (read from keras-hub's table, without importing it).

    >>> names = imagenet_class_names()
    >>> len(names), names[0], names[243]
    (1000, 'tench', 'bull_mastiff')
    """
    spec = importlib.util.find_spec("keras_hub")
    path = os.path.join(os.path.dirname(spec.origin), "src", "utils", "imagenet", "imagenet_utils.py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "IMAGENET_NAMES" for t in node.targets):
            table = ast.literal_eval(node.value)
            return [table[i][1] for i in range(1000)]
    raise LookupError(f"{path} has no IMAGENET_NAMES table")


def foolbox_samples(dataset: str = "imagenet") -> list:
    """`[(file name, encoded bytes, label)]` of foolbox 3.3.4's 20 samples of `dataset` (label from the name).

    `dataset`: imagenet (224x224 JPEG, labels 0-999 in Keras' order), cifar10, cifar100, mnist, fashionMNIST.
    """
    pattern = re.compile(rf"^{re.escape(dataset)}_(\d+)_(\d+)\.(jpg|png)$")
    rows = []
    for path, data in read_members(SAMPLE_SOURCES["foolbox"]).items():
        match = pattern.match(os.path.basename(path))
        if match:
            rows.append((int(match.group(1)), os.path.basename(path), data, int(match.group(2))))
    if not rows:
        raise LookupError(f"foolbox has no samples of {dataset!r}")
    return [row[1:] for row in sorted(rows)]


def imagenet_classifier(backbone: str = "MobileNet", input_side: int = 224, weights: str = "imagenet",
                        name: str | None = None) -> keras.Model:
    """`[B, side, side, 3]` raw RGB pixels in [0, 255] -> 1000 ImageNet probabilities, normalisation in-graph.

    The `keras.applications` model with its ImageNet top, behind the `ImageNormalization` mode its family's
    `preprocess_input` applies (so an export of it takes raw image bytes). With `weights="imagenet"` offline,
    install the weights first (`toolkit weights install`).
    """
    from toolkit.layers import ImageNormalization
    from toolkit.models.transfer.backbones import application_preprocessing

    mode, _ = application_preprocessing(backbone)
    net = getattr(keras.applications, backbone)(include_top=True, weights=weights,
                                                  input_shape=(input_side, input_side, 3))
    inputs = keras.Input((input_side, input_side, 3), name="images")
    outputs = net(ImageNormalization(mode, name="normalization")(inputs))
    return keras.Model(inputs, outputs, name=name or f"{backbone.lower()}_imagenet")
