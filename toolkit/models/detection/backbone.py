"""Feature maps for the detectors: a built-in multi-scale CNN, or any transfer backbone plus extra layers."""

from __future__ import annotations

import keras

from toolkit.layers import ImageNormalization
from toolkit.models.transfer import build_backbone


def _conv(x, filters, name, strides=1, kernel=3):
    x = keras.layers.Conv2D(filters, kernel, strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9 (not 0.99): detectors train for few steps here and inference uses the moving statistics
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.LeakyReLU(0.1, name=f"{name}_act")(x)


def detection_cnn(input_shape, width: int = 16, levels: int = 3, name: str = "backbone") -> keras.Model:
    """A VGG-style CNN returning feature maps at strides 8, 16 and 32 (for 128x128: 16x16, 8x8, 4x4).

    Args:
        input_shape: `(H, W, C)`, normalised pixels.
        width: filters of the first stage (doubling to 16 x width at stride 16).
        levels: 2 (strides 8, 16) or 3 (strides 8, 16, 32).
        name: model name.
    """
    inputs = keras.Input(input_shape, name="images")
    x = _conv(inputs, width, "s1")
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = _conv(x, width * 2, "s2")
    x = keras.layers.MaxPooling2D(2, name="p2")(x)
    x = _conv(x, width * 4, "s3a")
    x = _conv(x, width * 4, "s3b")
    x = keras.layers.MaxPooling2D(2, name="p3")(x)
    x = _conv(x, width * 8, "s4a")
    c3 = _conv(x, width * 8, "s4b")
    x = keras.layers.MaxPooling2D(2, name="p4")(c3)
    x = _conv(x, width * 16, "s5a")
    c4 = _conv(x, width * 16, "s5b")
    outputs = [c3, c4]
    if levels >= 3:
        outputs.append(_conv(c4, width * 16, "s6", strides=2))
    return keras.Model(inputs, outputs, name=name)


def feature_maps(inputs, backbone: str = "builtin", width: int = 16, weights: str | None = None, levels: int = 3):
    """Normalises raw [0, 255] `inputs` and returns `levels` feature maps, finest first.

    Args:
        inputs: the Keras input tensor `[B, H, W, C]` (raw pixels).
        backbone: `"builtin"` (the CNN above), or any `toolkit.models.transfer.build_backbone` spec
            (`small_cnn`, `MobileNetV2`, a `.keras` file, ...); its last feature map is the finest level and
            stride-2 conv layers add the coarser ones.
        width: base width of the built-in CNN (and of the extra layers).
        weights: backbone weights (`"imagenet"`, a local file, or None).
        levels: number of feature maps to return.
    """
    shape = tuple(inputs.shape[1:])
    if backbone == "builtin":
        x = ImageNormalization("unit", name="normalize")(inputs)
        features = list(detection_cnn(shape, width, levels=min(levels, 3))(x))
    else:
        model, mode, min_side = build_backbone(backbone, shape if shape[-1] == 3 or mode_is_unit(backbone) else
                                               (*shape[:2], 3), weights=weights, width=width * 2)
        if min(shape[:2]) < min_side:
            raise ValueError(f"backbone {backbone!r} needs inputs of at least {min_side}px; got {shape[:2]}")
        x = ImageNormalization(mode, to_rgb=model.input_shape[-1] == 3 and shape[-1] == 1, name="normalize")(inputs)
        features = [model(x)]
    while len(features) < levels:
        features.append(_conv(features[-1], width * 16, f"extra{len(features)}", strides=2))
    return features[:levels]


def mode_is_unit(spec: str) -> bool:
    return spec in ("small_cnn", "small_resnet") or spec.endswith(".keras")
