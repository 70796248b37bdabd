"""Classic CNN blocks and backbones of the lecture notes (SEED_CATALOGUE.md section 9; F3:6730-6758, 7538-7696,
7895-7922): the 1x1 bottleneck, the Inception module, the DenseNet block and transition, LeNet-5, VGG-16.

Every builder returns a functional `keras.Model` of stock Keras layers (so `.keras` / SavedModel round trips need no
custom objects): a feature extractor, or with `num_classes` the notes' full classifier, whose parameter count the
tests check against the notes (LeNet-5 61,706; VGG-16 138,357,544) and keras.applications (DenseNet-121).
Normalisation and activation are options (`toolkit.models.vision.resnet.NORMALIZATIONS` / `ACTIVATIONS`); a
convolution followed by a normalisation has no bias (the norm's offset replaces it).
"""

from __future__ import annotations

import math

import keras

from toolkit.models.vision.resnet import _check, normalization

# VGG-16 (F3:7538-7557): (convolutions, filters at width 64) per block, a 2x2 max-pool after each
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
# DenseNet-121/169/201 layers per dense block (Huang et al. 2017; the notes' 8M / 14M / 20M, F3:7916)
DENSENET_LAYOUTS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


def conv_norm_act(x, filters: int, kernel: int, strides: int = 1, norm: str = "batch", activation: str = "relu",
                  padding: str = "same", name: str = "conv"):
    """Conv2D (bias only without a norm) -> normalisation -> activation, the unit every builder here stacks."""
    x = keras.layers.Conv2D(filters, kernel, strides, padding=padding, use_bias=norm == "none",
                            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    if norm != "none":
        x = normalization(norm, filters, f"{name}_norm")(x)
    return keras.layers.Activation(activation, name=f"{name}_act")(x)


def bottleneck_1x1(x, filters: int, reduced: int, norm: str = "batch", activation: str = "relu",
                   name: str = "bottleneck"):
    """The 1x1 bottleneck (F3:7686-7696): 1x1 reduce to `reduced` channels, 3x3 at that width, 1x1 expand to
    `filters`. A stride-1 convolution's multiply-adds are its weights x H x W, so on 56x56x256 the notes' 3x3 conv
    costs 56*56*589,824 = 1.85e9 and this block (reduced=64) 56*56*69,632 = 218M (8.5x fewer).

    >>> inputs = keras.Input((56, 56, 256))
    >>> block = keras.Model(inputs, bottleneck_1x1(inputs, 256, 64, norm="none"))
    >>> 56 * 56 * sum(math.prod(w.shape) for w in block.trainable_weights if len(w.shape) == 4)
    218365952
    """
    x = conv_norm_act(x, reduced, 1, norm=norm, activation=activation, name=f"{name}_reduce")
    x = conv_norm_act(x, reduced, 3, norm=norm, activation=activation, name=f"{name}_3x3")
    return conv_norm_act(x, filters, 1, norm=norm, activation=activation, name=f"{name}_expand")


def inception_module(x, filters_1x1: int, reduce_3x3: int, filters_3x3: int, reduce_5x5: int, filters_5x5: int,
                     pool_projection: int, norm: str = "batch", activation: str = "relu", name: str = "inception"):
    """The Inception module (F3:7588-7615): four parallel branches concatenated on channels — 1x1; 1x1 -> 3x3;
    1x1 -> 5x5; 3x3 max-pool (stride 1) -> 1x1. Output channels: the sum of the four branch widths.

    GoogLeNet's inception (3a) on 28x28x192 (64, 96 -> 128, 16 -> 32, pool -> 32) gives 256 channels and, with
    biases and no norm, 163,696 weights:

    >>> inputs = keras.Input((28, 28, 192))
    >>> module = keras.Model(inputs, inception_module(inputs, 64, 96, 128, 16, 32, 32, norm="none"))
    >>> module.output_shape, module.count_params()
    ((None, 28, 28, 256), 163696)
    """
    options = {"norm": norm, "activation": activation}
    branch1 = conv_norm_act(x, filters_1x1, 1, name=f"{name}_1x1", **options)
    branch3 = conv_norm_act(x, reduce_3x3, 1, name=f"{name}_3x3_reduce", **options)
    branch3 = conv_norm_act(branch3, filters_3x3, 3, name=f"{name}_3x3", **options)
    branch5 = conv_norm_act(x, reduce_5x5, 1, name=f"{name}_5x5_reduce", **options)
    branch5 = conv_norm_act(branch5, filters_5x5, 5, name=f"{name}_5x5", **options)
    pool = keras.layers.MaxPooling2D(3, 1, padding="same", name=f"{name}_pool")(x)
    pool = conv_norm_act(pool, pool_projection, 1, name=f"{name}_pool_proj", **options)
    return keras.layers.Concatenate(name=f"{name}_concat")([branch1, branch3, branch5, pool])


def dense_block(x, num_layers: int, growth_rate: int, bottleneck: bool = True, norm: str = "batch",
                activation: str = "relu", name: str = "dense"):
    """A DenseNet block (F3:7895-7922): x_l = H_l([x_0, ..., x_{l-1}]), H_l = norm-act-conv (pre-activation),
    each layer adding `growth_rate` (k) channels, so after l layers there are k_0 + k*l. `bottleneck` (DenseNet-B):
    H_l = norm-act-1x1 conv to 4k, norm-act-3x3 conv to k.

    >>> inputs = keras.Input((8, 8, 16))
    >>> keras.Model(inputs, dense_block(inputs, num_layers=4, growth_rate=12)).output_shape   # 16 + 12 * 4
    (None, 8, 8, 64)
    """
    for index in range(1, num_layers + 1):
        prefix = f"{name}_layer{index}"
        y = x
        if bottleneck:
            y = normalization(norm, y.shape[-1], f"{prefix}_norm1")(y)
            y = keras.layers.Activation(activation, name=f"{prefix}_act1")(y)
            y = keras.layers.Conv2D(4 * growth_rate, 1, use_bias=False, kernel_initializer="he_normal",
                                    name=f"{prefix}_conv1")(y)
        y = normalization(norm, y.shape[-1], f"{prefix}_norm2")(y)
        y = keras.layers.Activation(activation, name=f"{prefix}_act2")(y)
        y = keras.layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                                name=f"{prefix}_conv2")(y)
        x = keras.layers.Concatenate(name=f"{prefix}_concat")([x, y])
    return x


def transition(x, compression: float = 0.5, norm: str = "batch", activation: str = "relu", name: str = "transition"):
    """DenseNet transition between blocks: norm-act, 1x1 conv to `compression` x the channels, 2x2 average pool.

    >>> inputs = keras.Input((8, 8, 64))
    >>> keras.Model(inputs, transition(inputs)).output_shape
    (None, 4, 4, 32)
    """
    x = normalization(norm, x.shape[-1], f"{name}_norm")(x)
    x = keras.layers.Activation(activation, name=f"{name}_act")(x)
    x = keras.layers.Conv2D(int(x.shape[-1] * compression), 1, use_bias=False, kernel_initializer="he_normal",
                            name=f"{name}_conv")(x)
    return keras.layers.AveragePooling2D(2, 2, padding="same", name=f"{name}_pool")(x)


def build_lenet5(input_shape=(32, 32, 1), num_classes: int | None = 10, activation: str = "tanh",
                 norm: str = "none", name: str = "lenet5") -> keras.Model:
    """LeNet-5 (F3:6730-6758): C1 6@5x5 valid, S2 2x2 average pool, C3 16@5x5, S4, C5 120@5x5, F6 84, output.

    An input smaller than 32x32 (MNIST's 28) is zero-padded to 32, as LeCun padded MNIST. Without `num_classes`
    it is a feature extractor ending at C5 (`[B, 1, 1, 120]` at 32 px). `activation="tanh"` is the original's
    squashing function; `norm` (default none, as in 1998) may add a normalisation after each convolution.

    >>> model = build_lenet5()
    >>> [layer.count_params() for layer in model.layers if layer.count_params()]   # the notes' per-layer counts
    [156, 2416, 48120, 10164, 850]
    >>> model.count_params()                                                        # "approximately 60,000"
    61706
    """
    _check(norm, activation)
    inputs = keras.Input(tuple(input_shape), name="images")
    x = inputs
    height, width = input_shape[0], input_shape[1]
    if height < 32 or width < 32:
        pad_h, pad_w = max(0, 32 - height), max(0, 32 - width)
        x = keras.layers.ZeroPadding2D(((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)),
                                       name="pad_to_32")(x)
    options = {"norm": norm, "activation": activation, "padding": "valid"}
    x = conv_norm_act(x, 6, 5, name="c1", **options)
    x = keras.layers.AveragePooling2D(2, name="s2")(x)
    x = conv_norm_act(x, 16, 5, name="c3", **options)
    x = keras.layers.AveragePooling2D(2, name="s4")(x)
    x = conv_norm_act(x, 120, 5, name="c5", **options)
    if num_classes is None:
        return keras.Model(inputs, x, name=name)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(84, activation=activation, name="f6")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def vgg16_parameter_count(input_side: int = 224, channels: int = 3, num_classes: int = 1000, width: int = 64,
                          fc_units: int = 4096) -> int:
    """VGG-16's weights, counted from its layout (what `build_vgg16` would allocate, without building it).

    >>> vgg16_parameter_count()          # the notes' "138M" (keras.applications.VGG16: 138,357,544)
    138357544
    >>> 7 * 7 * 512 * 4096 + 4096        # its first FC layer alone (F3:7555): three quarters of the weights
    102764544
    """
    total, c_in, side = 0, channels, input_side
    for convs, filters in VGG16_BLOCKS:
        filters = filters * width // 64
        for _ in range(convs):
            total += 9 * c_in * filters + filters
            c_in = filters
        side = -(-side // 2)
    features = side * side * c_in
    return total + (features + 1) * fc_units + (fc_units + 1) * fc_units + (fc_units + 1) * num_classes


def build_vgg16(input_shape=(224, 224, 3), num_classes: int | None = 1000, width: int = 64, fc_units: int = 4096,
                norm: str = "none", activation: str = "relu", name: str = "vgg16") -> keras.Model:
    """VGG-16 (F3:7538-7557): blocks of 2x64, 2x128, 3x256, 3x512, 3x512 3x3 convolutions, each followed by a
    2x2 max-pool (224 -> 7), then FC 4096, 4096, `num_classes` (softmax).

    `width` scales the filters (64: the paper's); the pools use `same` padding so a 28 px image still reaches a
    1x1 map (at 224 it is the paper's 7x7). Without `num_classes` it is the convolutional feature extractor.
    `norm="batch"` gives VGG-16-BN. The full model's count is `vgg16_parameter_count()` (138,357,544).

    >>> model = build_vgg16((32, 32, 3), num_classes=10, width=8, fc_units=32)
    >>> model.output_shape, model.count_params() == vgg16_parameter_count(32, 3, 10, width=8, fc_units=32)
    ((None, 10), True)
    """
    _check(norm, activation)
    inputs = keras.Input(tuple(input_shape), name="images")
    x = inputs
    for block, (convs, filters) in enumerate(VGG16_BLOCKS, start=1):
        for index in range(1, convs + 1):
            x = conv_norm_act(x, max(1, filters * width // 64), 3, norm=norm, activation=activation,
                              name=f"block{block}_conv{index}")
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool")(x)
    if num_classes is None:
        return keras.Model(inputs, x, name=name)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc_units, activation=activation, name="fc1")(x)
    x = keras.layers.Dense(fc_units, activation=activation, name="fc2")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def build_inception_small(input_shape, width: int = 32, modules: tuple = (2, 2), norm: str = "batch",
                          activation: str = "relu", name: str = "inception_small") -> keras.Model:
    """A small GoogLeNet-style feature extractor for 28-64 px images: a 3x3 stem of 2 x `width` filters, then
    stages of Inception modules (a 2x2 max-pool before each stage). A stage at width w uses branches 1x1: w,
    1x1 (w) -> 3x3: 2w, 1x1 (w/4) -> 5x5: w/2, pool -> 1x1: w/2, so it outputs 4w channels; w doubles per stage.

    >>> net = build_inception_small((28, 28, 1), width=8)
    >>> net.output_shape                     # 28 -> 14 -> 7; 4 x 16 channels
    (None, 7, 7, 64)
    """
    _check(norm, activation)
    inputs = keras.Input(tuple(input_shape), name="images")
    x = conv_norm_act(inputs, 2 * width, 3, norm=norm, activation=activation, name="stem")
    for stage, count in enumerate(modules, start=1):
        w = width * 2 ** (stage - 1)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"stage{stage}_pool")(x)
        for index in range(1, count + 1):
            x = inception_module(x, w, w, 2 * w, max(1, w // 4), max(1, w // 2), max(1, w // 2), norm=norm,
                                 activation=activation, name=f"stage{stage}_inception{index}")
    return keras.Model(inputs, x, name=name)


def build_densenet(input_shape, blocks=(6, 12, 24, 16), growth_rate: int = 32, stem: str = "imagenet",
                   compression: float = 0.5, norm: str = "batch", activation: str = "relu",
                   num_classes: int | None = None, name: str = "densenet") -> keras.Model:
    """DenseNet-BC (F3:7895-7922): a stem, dense blocks of bottleneck layers with growth rate k separated by
    transitions (1x1 conv to `compression` x channels + 2x2 average pool), a final norm-act.

    Args:
        input_shape: `(H, W, C)`.
        blocks: layers per dense block (`DENSENET_LAYOUTS[121]` is DenseNet-121's).
        growth_rate: k, channels each layer adds.
        stem: `"imagenet"` (7x7/2 conv of 2k filters + 3x3/2 max-pool) or `"small"` (one 3x3 conv of 2k).
        compression: the transitions' channel factor theta.
        norm, activation: see `toolkit.models.vision.resnet`.
        num_classes: adds GAP + a softmax Dense layer (the notes' classifier).
        name: model name.

    The DenseNet-121 layout has keras.applications.DenseNet121's 7,978,856 trainable weights (the notes' "8M"):

    >>> net = build_densenet((32, 32, 3), blocks=(2, 2), growth_rate=4, stem="small")
    >>> net.output_shape                     # 8 + 2*4 = 16 -> transition 8 -> 8 + 2*4 = 16
    (None, 16, 16, 16)
    """
    _check(norm, activation, stem)
    inputs = keras.Input(tuple(input_shape), name="images")
    if stem == "imagenet":
        x = conv_norm_act(inputs, 2 * growth_rate, 7, 2, norm=norm, activation=activation, name="stem")
        x = keras.layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)
    else:
        x = keras.layers.Conv2D(2 * growth_rate, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                                name="stem_conv")(inputs)
    for index, count in enumerate(blocks, start=1):
        x = dense_block(x, count, growth_rate, norm=norm, activation=activation, name=f"dense{index}")
        if index < len(blocks):
            x = transition(x, compression, norm=norm, activation=activation, name=f"transition{index}")
    x = normalization(norm, x.shape[-1], "final_norm")(x)
    x = keras.layers.Activation(activation, name="final_act")(x)
    if num_classes is not None:
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        x = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=name)


def layer_types(model: keras.Model) -> set:
    """Class names of every layer in `model`, nested models included (what the norm/activation tests inspect)."""
    names = set()
    for layer in model._flatten_layers(include_self=False):
        names.add(type(layer).__name__)
        if isinstance(layer, keras.layers.Activation):
            names.add(f"Activation:{layer.get_config()['activation']}")
    return names


__all__ = ["DENSENET_LAYOUTS", "VGG16_BLOCKS", "bottleneck_1x1", "build_densenet", "build_inception_small",
           "build_lenet5", "build_vgg16", "conv_norm_act", "dense_block", "inception_module", "layer_types",
           "transition", "vgg16_parameter_count"]
