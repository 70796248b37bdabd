"""Residual networks (SEED_CATALOGUE.md section 9; F3:4655-4757, 7733-7871, F1:182-202).

y = F(x) + x, with a 1x1 projection shortcut when the shape changes. Basic block: two 3x3 convolutions (ResNet-18/34);
bottleneck: 1x1 reduce, 3x3, 1x1 expand x4 (ResNet-50). Pre-activation form h + F(BN(ReLU(h))). Layouts: 7x7/2 stem +
3x3/2 max-pool, stages 64/128/256/512 (`width` scales them), GAP. Three views of the same block:
- `step_size` h: y = x + h F(x), one Euler step of dy/dt = F(y) (F1:188-197);
- `build_resnet_ode`: each stage's blocks tied into ONE F taken N Euler steps over t in [0, 1] (`EulerODEBlock`);
- `mixing="mhc"`: the identity-shortcut blocks of each stage act on n residual streams mixed by doubly-stochastic
  matrices (`HyperConnection`, F1:198-202).
"""

from __future__ import annotations

import math

import keras
from keras import ops

from toolkit.layers import EulerODEBlock, HyperConnection

# depth -> (block, blocks per stage): the notes' ResNet-18/34/50 (F3:7764-7871).
RESNET_LAYOUTS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3))}
NORMALIZATIONS = ("batch", "group", "layer", "none")
ACTIVATIONS = ("relu", "elu", "gelu", "selu", "swish", "tanh")  # swish: EfficientNet's; tanh: LeNet-5's
STEMS = ("imagenet", "small")
BN_MOMENTUM = 0.9  # the toolkit's built-in backbones' (see toolkit/models/transfer/backbones.py)
BOTTLENECK_EXPANSION = 4


def normalization(kind: str, channels: int, name: str) -> keras.layers.Layer:
    """`"batch"` BatchNorm, `"group"` GroupNorm (up to 32 groups), `"layer"` LayerNorm over H, W, C (GroupNorm with
    one group), `"none"` identity."""
    if kind == "batch":
        return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)
    if kind == "group":
        return keras.layers.GroupNormalization(math.gcd(channels, 32), name=name)
    if kind == "layer":
        return keras.layers.GroupNormalization(1, name=name)
    if kind == "none":
        return keras.layers.Identity(name=name)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}. Received: normalization={kind!r}")


def _check(normalization_kind, activation, stem=None):
    if normalization_kind not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}. Received: normalization={normalization_kind!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}. Received: activation={activation!r}")
    if stem is not None and stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}. Received: stem={stem!r}")


def check_options(normalization_kind: str = "batch", activation: str = "relu") -> None:
    """Raises a ValueError naming the valid choices on a bad normalisation or activation name (the `--norm` /
    `--activation` options of the image apps check with it before reading any data).

    >>> check_options("group", "selu")
    >>> check_options("batch", "swishy")
    Traceback (most recent call last):
    ...
    ValueError: activation must be one of ('relu', 'elu', 'gelu', 'selu', 'swish', 'tanh'). Received: activation='swishy'
    """
    _check(normalization_kind, activation)


def _conv(filters, kernel, strides, name, use_bias=False):
    """A convolution; biased only when no normalisation follows (norm="none": its offset would replace a bias)."""
    return keras.layers.Conv2D(filters, kernel, strides, padding="same", use_bias=use_bias, name=name,
                               kernel_initializer="he_normal")


def _projection(x, filters, strides, name):
    """The 1x1 projection shortcut W_s x, strided by subsampling first (`MaxPooling2D(1, s)` keeps every s-th
    pixel: the same map and weights as a stride-s 1x1 conv). Why: on this TensorFlow (2.21, oneDNN on) training a
    stride-2 1x1 conv with an odd batch size corrupts the heap (crashes with "double free", "invalid pointer")."""
    if strides != 1:
        x = keras.layers.MaxPooling2D(1, strides, name=f"{name}_subsample")(x)
    return _conv(filters, 1, 1, name)(x)


def residual_branch(filters: int, block: str = "basic", strides: int = 1, preactivation: bool = False,
                    norm: str = "batch", activation: str = "relu", name: str = "block") -> list:
    """F of one residual block as a list of layers (the caller adds the shortcut): basic (3x3, 3x3) or
    bottleneck (1x1 reduce to `filters`, 3x3, 1x1 expand to 4 x `filters`); post- or pre-activation order."""
    if block == "basic":
        convs = [(filters, 3, strides), (filters, 3, 1)]
    elif block == "bottleneck":
        convs = [(filters, 1, 1), (filters, 3, strides), (filters * BOTTLENECK_EXPANSION, 1, 1)]
    else:
        raise ValueError(f"block must be 'basic' or 'bottleneck'. Received: block={block!r}")
    layers = []
    for i, (f, k, s) in enumerate(convs, start=1):
        if preactivation:  # BN -> act -> conv (He et al. 2016, "Identity mappings")
            layers += [normalization(norm, f, f"{name}_norm{i}"), keras.layers.Activation(activation, name=f"{name}_act{i}"),
                       _conv(f, k, s, f"{name}_conv{i}", norm == "none")]
        else:  # conv -> BN -> act, the last activation after the add
            layers += [_conv(f, k, s, f"{name}_conv{i}", norm == "none"),
                       normalization(norm, f, f"{name}_norm{i}")]
            if i < len(convs):
                layers.append(keras.layers.Activation(activation, name=f"{name}_act{i}"))
    return layers


def _block(x, filters, block, strides, preactivation, norm, activation, step_size, name):
    out_channels = filters * (BOTTLENECK_EXPANSION if block == "bottleneck" else 1)
    shortcut = x
    y = x
    for layer in residual_branch(filters, block, strides, preactivation, norm, activation, name):
        y = layer(y)
    if strides != 1 or x.shape[-1] != out_channels:  # the 1x1 projection shortcut W_s x
        shortcut = _projection(x, out_channels, strides, f"{name}_projection")
        if not preactivation:
            shortcut = normalization(norm, out_channels, f"{name}_projection_norm")(shortcut)
    if step_size != 1.0:
        y = keras.layers.Rescaling(step_size, name=f"{name}_step")(y)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return x if preactivation else keras.layers.Activation(activation, name=f"{name}_out")(x)


def _stem(inputs, width, stem, norm, activation):
    if stem == "imagenet":  # 7x7/2 conv + 3x3/2 max-pool: 224 -> 56
        x = keras.layers.Conv2D(width, 7, 2, padding="same", use_bias=norm == "none", name="stem_conv",
                                kernel_initializer="he_normal")(inputs)
        x = normalization(norm, width, "stem_norm")(x)
        x = keras.layers.Activation(activation, name="stem_act")(x)
        return keras.layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)
    # small images (CIFAR-style): one 3x3 conv, no downsampling, so a 28-32 px image keeps its detail
    x = _conv(width, 3, 1, "stem_conv", norm == "none")(inputs)
    x = normalization(norm, width, "stem_norm")(x)
    return keras.layers.Activation(activation, name="stem_act")(x)


def build_resnet(input_shape, depth: int = 18, width: int = 64, stem: str = "imagenet", preactivation: bool = False,
                 step_size: float = 1.0, mixing: str = "add", num_streams: int = 4, normalization: str = "batch",
                 activation: str = "relu", num_stages: int = 4, name: str = "resnet") -> keras.Model:
    """A ResNet-18/34/50 feature extractor: images `[B, H, W, C]` -> the last stage's map (no head).

    Args:
        input_shape: `(H, W, C)`.
        depth: 18, 34 or 50 (`RESNET_LAYOUTS`).
        width: stage-1 filters; stages double it (the notes' 64/128/256/512 at 64).
        stem: `"imagenet"` (7x7/2 conv + 3x3/2 max-pool) or `"small"` (one 3x3 conv, for 28-64 px images).
        preactivation: the pre-activation block h + F(BN(ReLU(h))) (a final BN-ReLU closes the network).
        step_size: h in y = x + h F(x) (1: the plain ResNet).
        mixing: `"add"` (one stream) or `"mhc"`: within each stage the identity-shortcut blocks act on
            `num_streams` streams mixed by doubly-stochastic matrices (pre-activation branches).
        normalization: `"batch" | "group" | "layer" | "none"`.
        activation: `"relu" | "elu" | "gelu" | "selu"`.
        num_stages: the first 1-4 stages of the layout.
        name: model name.

    Examples:
    >>> net = build_resnet((224, 224, 3), depth=18)
    >>> net.output_shape                                  # 224 / 32 = 7; 512 channels
    (None, 7, 7, 512)
    >>> head = keras.layers.Dense(1000)(keras.layers.GlobalAveragePooling2D()(net.output))
    >>> trainable_parameters(keras.Model(net.input, head))   # the notes' "11M" (torchvision: 11,689,512)
    11689512
    """
    if depth not in RESNET_LAYOUTS:
        raise ValueError(f"depth must be one of {tuple(RESNET_LAYOUTS)}. Received: depth={depth}")
    if mixing not in ("add", "mhc"):
        raise ValueError(f"mixing must be 'add' or 'mhc'. Received: mixing={mixing!r}")
    if not 1 <= num_stages <= 4:
        raise ValueError(f"num_stages must be in [1, 4]. Received: num_stages={num_stages}")
    if width < 1:
        raise ValueError(f"width must be >= 1. Received: width={width}")
    _check(normalization, activation, stem)
    block, counts = RESNET_LAYOUTS[depth]
    norm = normalization

    # === Functional Model ===
    inputs = keras.Input(tuple(input_shape), name="images")
    x = _stem(inputs, width, stem, norm, activation)
    for stage, count in enumerate(counts[:num_stages]):
        filters = width * 2**stage
        for index in range(count):
            strides = 2 if (index == 0 and stage > 0) else 1
            prefix = f"stage{stage + 1}_block{index + 1}"
            shape_kept = strides == 1 and x.shape[-1] == filters * (BOTTLENECK_EXPANSION if block == "bottleneck" else 1)
            if mixing == "mhc" and shape_kept:
                if index == 0 or not _is_streams(x):
                    x = ops.stack([x] * num_streams, axis=-2)  # [B, H, W, n, C]
                branch = keras.Sequential(residual_branch(filters, block, 1, True, norm, activation, prefix),
                                          name=f"{prefix}_branch")
                x = HyperConnection(branch, num_streams, name=f"{prefix}_mhc")(x)
                if index == count - 1:
                    x = ops.mean(x, axis=-2)
            else:
                if _is_streams(x):
                    x = ops.mean(x, axis=-2)
                x = _block(x, filters, block, strides, preactivation or mixing == "mhc", norm, activation,
                           step_size, prefix)
    if _is_streams(x):
        x = ops.mean(x, axis=-2)
    if preactivation or mixing == "mhc":
        x = _normalization_layer(norm, x.shape[-1], "final_norm")(x)
        x = keras.layers.Activation(activation, name="final_act")(x)
    return keras.Model(inputs, x, name=name)


def build_resnet_ode(input_shape, width: int = 64, steps: int = 2, blocks: tuple = (1, 1, 1, 1),
                     stem: str = "small", normalization: str = "batch", activation: str = "relu",
                     name: str = "resnet_ode") -> keras.Model:
    """ResNet as an ODE: per stage a stride-2 transition, then `EulerODEBlock`s, each ONE basic-block F taken
    `steps` Euler steps over t in [0, 1] (h = 1 / steps).

    With the default `steps=2` it has ResNet-18's depth and compute (4 stages x 2 residual steps) and about
    fewer parameters (2.0M against 2.9M in the image classifier at width 32).

    Examples:
    >>> net = build_resnet_ode((32, 32, 1), width=8, steps=4)
    >>> net.output_shape
    (None, 4, 4, 64)
    >>> [layer.steps for layer in net.layers if isinstance(layer, EulerODEBlock)]
    [4, 4, 4, 4]
    """
    _check(normalization, activation, stem)
    if steps < 1:
        raise ValueError(f"steps must be >= 1. Received: steps={steps}")
    inputs = keras.Input(tuple(input_shape), name="images")
    x = _stem(inputs, width, stem, normalization, activation)
    for stage, count in enumerate(blocks):
        filters = width * 2**stage
        if stage > 0:  # the shape change stays outside the ODE (its F must map y to y's shape)
            x = _conv(filters, 3, 2, f"stage{stage + 1}_transition_conv", normalization == "none")(x)
            x = _normalization_layer(normalization, filters, f"stage{stage + 1}_transition_norm")(x)
            x = keras.layers.Activation(activation, name=f"stage{stage + 1}_transition_act")(x)
        for index in range(count):
            prefix = f"stage{stage + 1}_ode{index + 1}"
            branch = keras.Sequential(residual_branch(filters, "basic", 1, True, normalization, activation, prefix),
                                      name=f"{prefix}_f")
            x = EulerODEBlock(branch, steps=steps, name=prefix)(x)
    x = _normalization_layer(normalization, x.shape[-1], "final_norm")(x)
    x = keras.layers.Activation(activation, name="final_act")(x)
    return keras.Model(inputs, x, name=name)


def trainable_parameters(model: keras.Model) -> int:
    """Trainable parameters (what papers count: BatchNorm's moving statistics are not parameters)."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)


_normalization_layer = normalization  # `normalization` is also an argument name of the builders


def _is_streams(x) -> bool:
    return len(x.shape) == 5
