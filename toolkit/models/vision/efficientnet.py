"""EfficientNet and its compound scaling (SEED_CATALOGUE.md section 9; F3:7928-7956).

depth d = alpha^phi, width w = beta^phi, resolution r = gamma^phi with alpha = 1.2, beta = 1.1, gamma = 1.15 (Tan & Le
2019's grid-searched values), chosen so alpha * beta^2 * gamma^2 ~= 2: each step of phi about doubles the FLOPs
(a convolution's cost grows linearly with depth and quadratically with width and resolution).

The network is written here rather than taken from keras.applications because `keras.applications.EfficientNetB*`
exposes only the eight fixed B0-B7 coefficient sets, not a width / depth coefficient of one's choosing, nor a small
-image stem or other normalisations. It follows keras.applications' B0 layout exactly (MBConv blocks with
squeeze-and-excitation, filters rounded to multiples of 8, repeats rounded up), so at the coefficients of B0/B1/B3
it has their trainable-weight count (a test checks); the stride-2 depthwise convolutions use `same` padding instead
of an explicit asymmetric zero-pad (the same weights).
"""

from __future__ import annotations

import math

import keras

from toolkit.models.vision.resnet import _check, normalization

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
BASE_RESOLUTION = 224
# EfficientNet-B0 stages: (kernel, repeats, filters_in, filters_out, expand_ratio, strides); SE ratio 0.25 throughout
B0_BLOCKS = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
             (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1))
SE_RATIO = 0.25


def compound_scaling(phi: float, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
                     base_resolution: int = BASE_RESOLUTION) -> dict:
    """The compound-scaled configuration for coefficient `phi` (F3:7930-7940).

    Returns `{"depth": alpha^phi, "width": beta^phi, "resolution": round(base * gamma^phi), "flops": the FLOPs
    factor (alpha * beta^2 * gamma^2)^phi}`.

    >>> round(ALPHA * BETA**2 * GAMMA**2, 3)          # the constraint: ~2
    1.92
    >>> config = compound_scaling(1)
    >>> config["depth"], config["width"], config["resolution"], round(config["flops"], 2)
    (1.2, 1.1, 258, 1.92)
    """
    if phi < 0:
        raise ValueError(f"phi must be >= 0. Received: phi={phi}")
    return {"depth": alpha**phi, "width": beta**phi, "resolution": int(round(base_resolution * gamma**phi)),
            "flops": (alpha * beta**2 * gamma**2) ** phi}


def round_filters(filters: int, width_coefficient: float, divisor: int = 8) -> int:
    """Scaled filters rounded to a multiple of `divisor`, never more than 10% below the scaled value."""
    filters *= width_coefficient
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * filters else rounded)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    """Scaled block repeats, rounded up."""
    return int(math.ceil(depth_coefficient * repeats))


def mbconv(x, filters_out: int, kernel: int = 3, strides: int = 1, expand_ratio: int = 6, se_ratio: float = SE_RATIO,
           norm: str = "batch", activation: str = "swish", name: str = "mbconv"):
    """The mobile inverted bottleneck: 1x1 expand (x `expand_ratio`) -> depthwise k x k -> squeeze-and-excitation
    -> 1x1 project (linear), with an identity shortcut when the shape is kept.

    >>> inputs = keras.Input((8, 8, 16))
    >>> keras.Model(inputs, mbconv(inputs, 16)).output_shape
    (None, 8, 8, 16)
    """
    filters_in = x.shape[-1]
    filters = filters_in * expand_ratio
    y = x
    if expand_ratio != 1:
        y = keras.layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_expand")(y)
        y = normalization(norm, filters, f"{name}_expand_norm")(y)
        y = keras.layers.Activation(activation, name=f"{name}_expand_act")(y)
    y = keras.layers.DepthwiseConv2D(kernel, strides, padding="same", use_bias=False,
                                     depthwise_initializer="he_normal", name=f"{name}_dwconv")(y)
    y = normalization(norm, filters, f"{name}_dw_norm")(y)
    y = keras.layers.Activation(activation, name=f"{name}_dw_act")(y)
    if 0 < se_ratio <= 1:
        se = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_squeeze")(y)
        se = keras.layers.Conv2D(max(1, int(filters_in * se_ratio)), 1, activation=activation,
                                 name=f"{name}_se_reduce")(se)
        se = keras.layers.Conv2D(filters, 1, activation="sigmoid", name=f"{name}_se_expand")(se)
        y = keras.layers.Multiply(name=f"{name}_se_excite")([y, se])
    y = keras.layers.Conv2D(filters_out, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_project")(y)
    y = normalization(norm, filters_out, f"{name}_project_norm")(y)
    if strides == 1 and filters_in == filters_out:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def build_efficientnet(input_shape, phi: float = 0, width_coefficient: float | None = None,
                       depth_coefficient: float | None = None, stem: str = "imagenet", norm: str = "batch",
                       activation: str = "swish", scale_resolution: bool = False, num_classes: int | None = None,
                       name: str = "efficientnet") -> keras.Model:
    """EfficientNet-B0 compound-scaled by `phi` (or explicit width / depth coefficients, e.g. keras' B1: 1.0 / 1.1).

    Args:
        input_shape: `(H, W, C)`.
        phi: compound coefficient: width beta^phi, depth alpha^phi (`compound_scaling`); 0 is B0.
        width_coefficient, depth_coefficient: override the compound ones.
        stem: `"imagenet"` (3x3/2 stem, total stride 32) or `"small"` (stride-1 stem, total stride 16, for 28-64 px).
        norm, activation: normalisation (default batch) and activation (default swish, the paper's).
        scale_resolution: resize the input inside the model by gamma^phi (the third scaled dimension; at
            phi = 0 nothing changes).
        num_classes: adds GAP + a softmax Dense layer (B0 at 1000 classes: the notes' 5.3M).
        name: model name.

    >>> net = build_efficientnet((32, 32, 3), width_coefficient=0.25, depth_coefficient=0.5, stem="small")
    >>> net.output_shape                     # 32 / 16 = 2; top conv round_filters(1280 * 0.25) = 320
    (None, 2, 2, 320)
    """
    _check(norm, activation, stem)
    scaled = compound_scaling(phi)
    width = scaled["width"] if width_coefficient is None else width_coefficient
    depth = scaled["depth"] if depth_coefficient is None else depth_coefficient
    inputs = keras.Input(tuple(input_shape), name="images")
    x = inputs
    if scale_resolution and phi and input_shape[0] is not None:
        side = (int(round(input_shape[0] * GAMMA**phi)), int(round(input_shape[1] * GAMMA**phi)))
        x = keras.layers.Resizing(*side, interpolation="bilinear", name="resolution_scaling")(x)
    stem_filters = round_filters(32, width)
    x = keras.layers.Conv2D(stem_filters, 3, 2 if stem == "imagenet" else 1, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name="stem_conv")(x)
    x = normalization(norm, stem_filters, "stem_norm")(x)
    x = keras.layers.Activation(activation, name="stem_act")(x)
    for stage, (kernel, repeats, _, filters_out, expand, strides) in enumerate(B0_BLOCKS, start=1):
        for index in range(round_repeats(repeats, depth)):
            x = mbconv(x, round_filters(filters_out, width), kernel, strides if index == 0 else 1, expand,
                       norm=norm, activation=activation, name=f"block{stage}{chr(97 + index)}")
    top = round_filters(1280, width)
    x = keras.layers.Conv2D(top, 1, use_bias=False, kernel_initializer="he_normal", name="top_conv")(x)
    x = normalization(norm, top, "top_norm")(x)
    x = keras.layers.Activation(activation, name="top_act")(x)
    if num_classes is not None:
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        x = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=name)
