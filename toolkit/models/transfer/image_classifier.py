"""The transfer-learning image classifier: normalise -> backbone -> GAP -> Dense -> Dropout -> softmax.

The head is the lecture notes' (SEED_CATALOGUE.md section 1): GlobalAveragePooling2D, Dense(256, relu),
Dropout(0.5), Dense(num_classes, softmax). Fine-tuning is two-phase: head only with the backbone frozen,
then the top N backbone layers unfrozen (BatchNorm layers stay frozen) at a small learning rate.
"""

from __future__ import annotations

import math

import keras

from toolkit.layers import ImageNormalization, MixtureOfExperts
from toolkit.models.transfer.backbones import BUILTIN_BACKBONES, build_backbone


def build_image_classifier(
    input_shape,
    num_classes: int,
    backbone: str | keras.Model = "small_cnn",
    weights: str | None = None,
    dense_units: int = 256,
    dropout: float = 0.5,
    augmentation: keras.Layer | None = None,
    head_l2: float = 0.0,
    width: int = 32,
    head_experts: int = 0,
    head_top_k: int = 2,
    backbone_side: int | None = None,
    norm: str = "",
    activation: str = "",
    name: str = "image_classifier",
) -> keras.Model:
    """Builds a classifier that takes raw pixels in [0, 255] and returns class probabilities.

    Args:
        input_shape: `(H, W, C)` of the raw images.
        num_classes: number of classes (>= 2).
        backbone: a spec for `build_backbone` (`"small_cnn"`, `"small_resnet"`, a keras.applications
            name, a `.keras` path) or a Keras model mapping images to a feature map.
        weights: backbone weights for keras.applications (`"imagenet"`, a local file, or None).
        dense_units: units of the head's hidden Dense layer (0 for none).
        dropout: dropout rate before the output layer.
        augmentation: optional layer applied to the raw images in training (identity at inference).
        head_l2: L2 weight on the head's kernels (biases are never regularised).
        width: base width of the built-in backbones.
        head_experts: 0 for the Dense hidden layer; N > 0 replaces it with a `MixtureOfExperts` of N experts
            (`dense_units` hidden and output units each) routing each image to its `head_top_k`.
        head_top_k: experts per image of the MoE head.
        backbone_side: side the backbone sees (e.g. 96 or 224 for an ImageNet net fed 28x28 images): the raw
            input is resized to it inside the graph; None: the input's size, raised to the backbone's minimum.
        norm, activation: the built-in CNN backbones' normalisation / activation (see `build_backbone`);
            "" keeps each backbone's own.
        name: model name.

    A backbone that returns a vector (a ViT's [CLS] token z0) feeds the head directly; a feature map is
    average-pooled first.

    Examples:
    >>> model = build_image_classifier((28, 28, 1), 10, width=4)
    >>> model.output_shape
    (None, 10)
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2. Received: num_classes={num_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    height, width_px, channels = input_shape
    if isinstance(backbone, keras.Model):
        base, mode, min_side = backbone, "unit", 8
    else:
        min_side = 32 if backbone not in BUILTIN_BACKBONES else 8
        size = (max(height, min_side), max(width_px, min_side))
        if backbone_side:
            size = (max(backbone_side, min_side),) * 2
        wants_rgb = backbone not in BUILTIN_BACKBONES and not backbone.endswith(".keras")
        base, mode, min_side = build_backbone(
            backbone, size + (3 if wants_rgb else channels,), weights=weights, width=width, pooled=True,
            norm=norm, activation=activation,
        )
    base_h, base_w, base_c = base.input_shape[1:]
    regularizer = keras.regularizers.L2(head_l2) if head_l2 else None

    inputs = keras.Input(input_shape, name="images")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = ImageNormalization(mode, to_rgb=(channels == 1 and base_c == 3), name="normalization")(x)
    if (base_h, base_w) != (height, width_px) and base_h is not None:
        x = keras.layers.Resizing(base_h, base_w, name="resize")(x)
    x = base(x)
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dense_units and head_experts:
        x = MixtureOfExperts(head_experts, dense_units, units=dense_units, top_k=min(head_top_k, head_experts),
                             activation="relu", name="head_experts")(x)
    elif dense_units:
        x = keras.layers.Dense(dense_units, activation="relu", kernel_regularizer=regularizer, name="head_dense")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", kernel_regularizer=regularizer, dtype="float32", name="predictions"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def get_backbone(model: keras.Model) -> keras.Model:
    """The classifier's backbone sub-model (the layer named `backbone`)."""
    try:
        return model.get_layer("backbone")
    except ValueError:
        raise ValueError(f"model {model.name!r} has no sub-model named 'backbone'") from None


def freeze_backbone(model: keras.Model) -> None:
    """Phase 1: freeze the whole backbone (its BatchNorm layers then run in inference mode)."""
    get_backbone(model).trainable = False


def unfreeze_top_layers(model: keras.Model, num_layers: int | None = 20) -> int:
    """Phase 2: unfreeze the backbone's top `num_layers` layers (None or <0: all); BatchNorm stays frozen.

    Returns:
        the number of backbone layers left trainable.
    """
    backbone = get_backbone(model)
    backbone.trainable = True
    layers = backbone.layers
    cut = 0 if num_layers is None or num_layers < 0 else max(len(layers) - num_layers, 0)
    trainable = 0
    for index, layer in enumerate(layers):
        layer.trainable = index >= cut and not isinstance(layer, keras.layers.BatchNormalization)
        trainable += int(layer.trainable and bool(layer.weights))
    return trainable


def count_params(model: keras.Model) -> dict:
    """Trainable and frozen parameter counts."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}
