"""U-Net for semantic segmentation (SEED_CATALOGUE.md section 5, the gap-sheet 64-128-256 / 512 variant).

Default network (`build_unet(input_shape, num_classes)`), every convolution 3x3, ReLU, `same` padding:

    input [0, 255] -> ImageNormalization("unit")
    enc1: Conv 64,  Conv 64   -> MaxPool 2x2          (skip 1, H x W)
    enc2: Conv 128, Conv 128  -> MaxPool 2x2          (skip 2, H/2)
    enc3: Conv 256, Conv 256  -> MaxPool 2x2          (skip 3, H/4)
    bottleneck: Conv 512, Conv 512                     (H/8)
    dec3: Conv2DTranspose(256, (2,2), strides=2) -> Concatenate([up, skip 3]) -> Conv 256, Conv 256
    dec2: Conv2DTranspose(128, (2,2), strides=2) -> Concatenate([up, skip 2]) -> Conv 128, Conv 128
    dec1: Conv2DTranspose(64,  (2,2), strides=2) -> Concatenate([up, skip 1]) -> Conv 64,  Conv 64
    Conv2D(num_classes, 1, activation="softmax")      (H x W x num_classes)

The seed draws "conv blocks" without saying how many convolutions each holds; two 3x3 convolutions
per block is the Ronneberger block of the lecture-notes variant, and `convs_per_block` changes it.
`skip_connections=False` gives the same network with the concatenations removed (DeconvNet /
plain encoder-decoder), for the localisation comparison the seed makes.
"""

from __future__ import annotations

import keras

from toolkit.layers import ImageNormalization
from toolkit.models.vision.resnet import check_options as check_norm_activation
from toolkit.models.vision.resnet import normalization

DOWNSAMPLING = ("max_pool", "conv")
# BatchNormalization momentum: Keras' 0.99 keeps ~37% of the initial statistics after 100 steps, so a model
# trained on a small set evaluates with wrong moving statistics; 0.9 (the transfer backbones' value) forgets
# them in ~40 steps
BN_MOMENTUM = 0.9
PADDINGS = ("same", "valid")
_NORM_SUFFIX = {"batch": "bn", "group": "gn", "layer": "ln"}


def _resolve_norm(norm, batch_norm, activation):
    """`norm` (None: `batch_norm`'s choice, batch or none) checked with `activation` against the vision tables."""
    norm = norm or ("batch" if batch_norm else "none")
    check_norm_activation(norm, activation)
    return norm


def _conv_block(x, filters, convs, kernel_size, padding, norm, activation, dropout, name):
    for i in range(convs):
        x = keras.layers.Conv2D(filters, kernel_size, padding=padding, use_bias=norm == "none",
                                name=f"{name}_conv{i + 1}")(x)
        if norm != "none":  # batch: *_bn1 as before the norm option; the resnet builders' table for the others
            x = normalization(norm, filters, f"{name}_{_NORM_SUFFIX[norm]}{i + 1}")(x)
        x = keras.layers.Activation(activation, name=f"{name}_{activation}{i + 1}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def _crop_to(skip, target, name):
    """Centre-crops `skip` to `target`'s spatial size (needed with `valid` padding, as in Ronneberger)."""
    dh = skip.shape[1] - target.shape[1]
    dw = skip.shape[2] - target.shape[2]
    if dh == 0 and dw == 0:
        return skip
    if dh < 0 or dw < 0:
        raise ValueError(f"{name}: skip feature {skip.shape[1:3]} is smaller than the upsampled {target.shape[1:3]}")
    return keras.layers.Cropping2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)), name=f"{name}_crop")(skip)


def _up_step(x, skip, filters, config, name):
    x = keras.layers.Conv2DTranspose(filters, (2, 2), strides=2, name=f"{name}_upconv")(x)
    if skip is not None:
        skip = _crop_to(skip, x, name)
        x = keras.layers.Concatenate(name=f"{name}_concat")([x, skip])
    return _conv_block(x, filters, name=name, **config)


def build_unet(
    input_shape,
    num_classes: int,
    filters=(64, 128, 256),
    bottleneck: int = 512,
    convs_per_block: int = 2,
    kernel_size: int = 3,
    batch_norm: bool = False,
    dropout: float = 0.0,
    padding: str = "same",
    downsampling: str = "max_pool",
    skip_connections: bool = True,
    encoder: str | None = None,
    encoder_weights: str | None = None,
    freeze_encoder: bool = False,
    decoder_filters=None,
    normalization: str = "unit",
    norm: str | None = None,
    activation: str = "relu",
    name: str | None = None,
) -> keras.Model:
    """Builds a U-Net taking raw pixels in [0, 255] and returning per-pixel class probabilities.

    Args:
        input_shape: `(H, W, C)`. With `same` padding H and W must be divisible by `2 ** depth`.
        num_classes: classes including background (>= 2); the output has this many channels.
        filters: encoder widths, one per level (the depth is `len(filters)`); the decoder mirrors them.
        bottleneck: bottleneck width.
        convs_per_block: 3x3 convolutions per encoder / decoder block.
        kernel_size: convolution kernel size.
        batch_norm: BatchNormalization after every convolution (the convolutions then have no bias).
        dropout: dropout rate at the end of the deepest encoder block and the bottleneck (0 disables).
        padding: `"same"` (output H x W = input H x W) or `"valid"` (Ronneberger: skips centre-cropped,
            the output is smaller than the input).
        downsampling: `"max_pool"` (MaxPool2D 2x2) or `"conv"` (a stride-2 3x3 convolution).
        skip_connections: False removes every concatenation (plain encoder-decoder, for comparison).
        encoder: None for the built-in encoder, or a transfer backbone spec (`"small_cnn"`,
            `"MobileNetV2"`, a `.keras` file; see `toolkit.models.transfer.build_backbone`): its
            intermediate feature maps at each resolution become the skips, its output the bottleneck.
        encoder_weights: weights of a keras.applications encoder (`"imagenet"`, a local file, None).
        freeze_encoder: make the pretrained encoder non-trainable.
        decoder_filters: decoder widths, deepest first, for a pretrained encoder (default: 256, 128, ...).
        normalization: input normalisation mode (`ImageNormalization`); a pretrained encoder uses its own.
        norm: normalisation after every convolution, `"batch" | "group" | "layer" | "none"` (group: up to 32
            groups; layer: one group, i.e. over H, W, C); None: `batch_norm`'s choice (batch or none).
        activation: `"relu" | "elu" | "gelu" | "selu" | "swish" | "tanh"` after every convolution.
        name: model name (default `"unet"` or `"encoder_decoder"` without skips).

    Examples:
    >>> model = build_unet((32, 32, 3), 4, filters=(8, 16), bottleneck=32)
    >>> model.output_shape
    (None, 32, 32, 4)
    >>> model = build_unet((16, 16, 1), 2, filters=(4,), bottleneck=8, norm="group", activation="elu")
    >>> sorted({type(layer).__name__ for layer in model.layers if "Norm" in type(layer).__name__})
    ['GroupNormalization', 'ImageNormalization']
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (background + classes). Received: num_classes={num_classes}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}. Received: padding={padding!r}")
    if downsampling not in DOWNSAMPLING:
        raise ValueError(f"downsampling must be one of {DOWNSAMPLING}. Received: downsampling={downsampling!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    name = name or ("unet" if skip_connections else "encoder_decoder")
    norm = _resolve_norm(norm, batch_norm, activation)
    if encoder:
        return _pretrained_unet(input_shape, num_classes, encoder, encoder_weights, freeze_encoder, decoder_filters,
                                convs_per_block, kernel_size, norm, activation, dropout, skip_connections, name)
    filters = [int(f) for f in filters]
    if not filters:
        raise ValueError("filters must name at least one encoder level")
    height, width = input_shape[0], input_shape[1]
    factor = 2 ** len(filters)
    if padding == "same" and height is not None and (height % factor or width % factor):
        raise ValueError(f"with {len(filters)} levels the input height and width must be divisible by {factor}. "
                         f"Received: input_shape={tuple(input_shape)}")
    config = {"convs": convs_per_block, "kernel_size": kernel_size, "padding": padding, "norm": norm,
              "activation": activation}
    inputs = keras.Input(tuple(input_shape), name="images")
    x = ImageNormalization(normalization, name="normalization")(inputs)
    skips = []
    for level, width_ in enumerate(filters, start=1):
        last = level == len(filters)
        x = _conv_block(x, width_, dropout=dropout if last else 0.0, name=f"enc{level}", **config)
        skips.append(x)
        if downsampling == "max_pool":
            x = keras.layers.MaxPooling2D((2, 2), name=f"enc{level}_pool")(x)
        else:
            x = keras.layers.Conv2D(width_, 3, strides=2, padding="same", name=f"enc{level}_down")(x)
    x = _conv_block(x, int(bottleneck), dropout=dropout, name="bottleneck", **config)
    for level in range(len(filters), 0, -1):
        skip = skips[level - 1] if skip_connections else None
        x = _up_step(x, skip, filters[level - 1], {**config, "dropout": 0.0}, f"dec{level}")
    outputs = keras.layers.Conv2D(num_classes, 1, activation="softmax", dtype="float32", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def feature_pyramid(backbone: keras.Model, input_side: int):
    """The last layer output at each spatial resolution of `backbone`, finest first, as `(side, tensor)`.

    Used to take skips from a pretrained encoder: for every resolution the backbone passes through,
    the deepest feature map at that resolution (what a U-Net encoder block would hand over).
    """
    by_side: dict = {}
    for layer in backbone.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError):
            continue
        if isinstance(output, (list, tuple)) or len(output.shape) != 4 or output.shape[1] is None:
            continue
        by_side[int(output.shape[1])] = output  # later layers overwrite: the deepest one wins
    # only resolutions the decoder's 2x steps reach (drops e.g. MobileNet's odd-sized padding outputs)
    sides = sorted((s for s in by_side if s <= input_side and input_side % s == 0
                    and (input_side // s) & (input_side // s - 1) == 0), reverse=True)
    return [(s, by_side[s]) for s in sides]


def _pretrained_unet(input_shape, num_classes, spec, weights, freeze, decoder_filters, convs, kernel_size,
                     norm, activation, dropout, skip_connections, name):
    from toolkit.models.transfer.backbones import BUILTIN_BACKBONES, build_backbone

    height, width, channels = input_shape
    wants_rgb = spec not in BUILTIN_BACKBONES and not str(spec).endswith(".keras")
    backbone_shape = (height, width, 3 if wants_rgb else channels)
    backbone, mode, _ = build_backbone(spec, backbone_shape, weights=weights)
    pyramid = feature_pyramid(backbone, height)
    if len(pyramid) < 2:
        raise ValueError(f"encoder {spec!r} has fewer than two feature resolutions to build a U-Net from")
    encoder = keras.Model(backbone.inputs, [t for _, t in pyramid], name="encoder")
    encoder.trainable = not freeze
    inputs = keras.Input(tuple(input_shape), name="images")
    x = ImageNormalization(mode, to_rgb=wants_rgb, name="normalization")(inputs)
    features = encoder(x)
    sides = [s for s, _ in pyramid]
    x, skips = features[-1], dict(zip(sides[:-1], features[:-1]))
    side, step = sides[-1], 0
    widths = list(decoder_filters or [256, 128, 64, 32, 16, 16, 16, 16])
    config = {"convs": convs, "kernel_size": kernel_size, "padding": "same", "norm": norm, "activation": activation,
              "dropout": 0.0}
    if dropout:
        x = keras.layers.Dropout(dropout, name="bottleneck_dropout")(x)
    while side < height:
        side *= 2
        step += 1
        skip = skips.get(side) if skip_connections else None
        x = _up_step(x, skip, widths[min(step - 1, len(widths) - 1)], config, f"dec{step}")
    if side != height:
        raise ValueError(f"input size {height} is not the encoder's output size times a power of two")
    outputs = keras.layers.Conv2D(num_classes, 1, activation="softmax", dtype="float32", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


def get_encoder(model: keras.Model):
    """The pretrained `encoder` sub-model of a U-Net built with `encoder=...`, or None."""
    try:
        return model.get_layer("encoder")
    except ValueError:
        return None
