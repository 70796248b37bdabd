"""Feature backbones: built-in CNN/ResNet, keras.applications by name, or any `.keras` model file.

A backbone maps normalised images `[B, H, W, C]` to a feature map `[B, h, w, d]`. Each comes with the
input normalisation it expects (an `ImageNormalization` mode) and a minimum input size.
"""

from __future__ import annotations

import os

import keras

from toolkit.saving import load_model

# The lecture notes' architectures (toolkit.models.vision), trained from scratch like the two above. `width` is
# the stage-1 filters of the ResNets (the notes' 64; the app's default 32 halves them) and half the hidden size
# of vit_tiny; vit_base has the notes' fixed size. Small inputs (< 64 px) get the ResNets' 3x3 stem (no
# downsampling) and vit_tiny 4 x 4 patches; the notes' 7x7/2 + max-pool stem and /16 patches otherwise.
VISION_BACKBONES = {
    "resnet18": "ResNet-18 (basic blocks 2-2-2-2)",
    "resnet34": "ResNet-34 (basic blocks 3-4-6-3)",
    "resnet50": "ResNet-50 (bottleneck blocks 3-4-6-3)",
    "resnet18_preact": "ResNet-18, pre-activation blocks h + F(BN(ReLU(h)))",
    "resnet18_mhc": "ResNet-18 whose identity blocks mix 4 residual streams (mHC, Sinkhorn-Knopp)",
    "resnet_ode": "ResNet as an ODE: per stage one weight-tied F, 2 Euler steps over t in [0, 1]",
    "vit_tiny": "Vision Transformer, 4 layers, hidden 2 x width, 4 heads",
    "vit_tiny_moe": "vit_tiny whose every 2nd MLP is a Mixture of 4 Experts (top-2)",
    "vit_tiny_mhc": "vit_tiny with 4 residual streams mixed by doubly-stochastic matrices (mHC)",
    "vit_base": "ViT-Base/16 (12 layers, 768, MLP 3072, 12 heads; 86M parameters)",
    "lenet5": "LeNet-5 (C1 6@5x5, S2, C3 16@5x5, S4, C5 120; tanh; inputs under 32 px zero-padded to 32)",
    "vgg16": "VGG-16's 13 3x3 convolutions (2-2-3-3-3, max-pool after each block), filters width/64 of 64..512",
    "inception_small": "3x3 stem + 2 stages of 2 Inception modules (1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1)",
    "densenet_small": "DenseNet-BC: 3 dense blocks of 4 bottleneck layers, growth rate width/2, transitions 0.5",
    "efficientnet_b0": "EfficientNet-B0 (MBConv + squeeze-excitation, swish); width/32 x its filters",
    "efficientnet_phi1": "EfficientNet compound-scaled to phi=1: depth 1.2x, width 1.1x, input resized 1.15x",
}
# `norm` / `activation` options (toolkit.models.vision.resnet's NORMALIZATIONS / ACTIVATIONS) apply to these
# convolutional built-ins; "" keeps each one's own default (batch + relu; lenet5 none + tanh, vgg16 none + relu,
# efficientnet batch + swish)
_CLASSIC = ("lenet5", "vgg16", "inception_small", "densenet_small", "efficientnet_b0", "efficientnet_phi1")
NORM_BACKBONES = ("small_cnn", "small_resnet", *(n for n in VISION_BACKBONES if not n.startswith("vit")))
BUILTIN_BACKBONES = ("small_cnn", "small_resnet", *VISION_BACKBONES)
SMALL_INPUT = 64  # below this side the vision backbones switch to their small-image stem / patches


class WeightsUnavailableError(ValueError):
    """Pretrained weights that cannot be had here (offline, no local file)."""
# Running-average momentum of the built-in backbones' BatchNorm: the seed's 0.9 (SEED_CATALOGUE.md section 2)
# rather than Keras' 0.99, so inference statistics settle within a short training run.
BN_MOMENTUM = 0.9

# keras.applications module (family) -> the ImageNormalization mode equal to its `preprocess_input` (a test
# checks every family numerically): caffe = BGR minus the ImageNet mean, tf = [-1, 1], torch = ImageNet
# mean/std, none = the model normalises [0, 255] itself (EfficientNet, ConvNeXt, MobileNetV3).
_FAMILY_MODES = {
    "mobilenet": "tf", "mobilenet_v2": "tf", "mobilenet_v3": "none", "resnet": "caffe", "resnet50": "caffe",
    "resnet_v2": "tf", "vgg16": "caffe", "vgg19": "caffe", "efficientnet": "none", "efficientnet_v2": "none",
    "densenet": "torch", "inception_v3": "tf", "inception_resnet_v2": "tf", "xception": "tf", "nasnet": "tf",
    "convnext": "none",
}
_FAMILY_MIN_SIDE = {"inception_v3": 75, "inception_resnet_v2": 75, "xception": 71}


def application_preprocessing(name: str) -> tuple:
    """`(normalisation mode, minimum input side)` of a keras.applications model name.

    >>> application_preprocessing("ResNet50"), application_preprocessing("Xception")
    (('caffe', 32), ('tf', 71))
    """
    family = getattr(keras.applications, name).__module__.rsplit(".", 1)[-1]
    if family not in _FAMILY_MODES:
        raise ValueError(f"keras.applications.{name}: no known preprocessing for its family {family!r}")
    return _FAMILY_MODES[family], _FAMILY_MIN_SIDE.get(family, 32)


# keras.applications name -> (normalisation mode, minimum input side), the MobileNets first.
_FIRST = ("MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large")
_APPLICATION_PREPROCESSING = {
    name: application_preprocessing(name)
    for name in _FIRST + tuple(sorted(n for n in dir(keras.applications) if n[:1].isupper() and n not in _FIRST))
}


def _norm_layer(kind, channels, name, index=""):
    from toolkit.models.vision.resnet import normalization  # the one normalisation table of the toolkit

    suffix = {"batch": "bn", "group": "gn", "layer": "ln"}.get(kind, kind)
    return normalization(kind, channels, f"{name}_{suffix}{index}")


def _conv_bn_relu(x, filters, name, norm="batch", activation="relu", strides=1):
    x = keras.layers.Conv2D(filters, 3, strides, padding="same", use_bias=norm == "none", name=f"{name}_conv")(x)
    if norm != "none":
        x = _norm_layer(norm, filters, name)(x)
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x)


def _check_options(norm, activation):
    from toolkit.models.vision.resnet import check_options

    check_options(norm, activation)


def small_cnn(input_shape, width: int = 32, name: str = "backbone", norm: str = "batch",
              activation: str = "relu") -> keras.Model:
    """A VGG-style CNN for small images: 3 stages of two conv-norm-activation, max pooling between stages.

    Args:
        input_shape: `(H, W, C)`.
        width: filters of the first stage; doubles each stage (pyramid shape, seed section 2).
        name: model name.
        norm: `"batch" | "group" | "layer" | "none"` after every convolution.
        activation: `"relu" | "elu" | "gelu" | "selu" | "swish" | "tanh"`.

    >>> net = small_cnn((8, 8, 1), width=4, norm="group", activation="gelu")
    >>> sorted({type(layer).__name__ for layer in net.layers} - {"InputLayer"})
    ['Activation', 'Conv2D', 'GroupNormalization', 'MaxPooling2D']
    """
    _check_options(norm, activation)
    inputs = keras.Input(input_shape, name="images")
    x = inputs
    for stage in range(3):
        filters = width * 2**stage
        x = _conv_bn_relu(x, filters, f"stage{stage + 1}_a", norm, activation)
        x = _conv_bn_relu(x, filters, f"stage{stage + 1}_b", norm, activation)
        if stage < 2:
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage + 1}_pool")(x)
    return keras.Model(inputs, x, name=name)


def small_resnet(input_shape, width: int = 32, blocks_per_stage: int = 2, name: str = "backbone",
                 norm: str = "batch", activation: str = "relu") -> keras.Model:
    """A small ResNet (basic blocks, 3 stages, stride-2 downsampling) for training from scratch; `norm` and
    `activation` as in `small_cnn`."""
    _check_options(norm, activation)
    inputs = keras.Input(input_shape, name="images")
    x = _conv_bn_relu(inputs, width, "stem", norm, activation)
    for stage in range(3):
        filters = width * 2**stage
        for block in range(blocks_per_stage):
            strides = 2 if (block == 0 and stage > 0) else 1
            prefix = f"stage{stage + 1}_block{block + 1}"
            shortcut = x
            y = x
            for i in (1, 2):  # conv-norm-act, conv-norm (names as before the norm option: *_conv1, *_bn1, *_relu1)
                y = keras.layers.Conv2D(filters, 3, strides if i == 1 else 1, padding="same", use_bias=norm == "none",
                                        name=f"{prefix}_conv{i}")(y)
                if norm != "none":
                    y = _norm_layer(norm, filters, prefix, i)(y)
                if i == 1:
                    y = keras.layers.Activation(activation, name=f"{prefix}_{activation}1")(y)
            if strides != 1 or shortcut.shape[-1] != filters:
                if strides != 1:  # subsample, then a stride-1 1x1 conv: the same map as a stride-2 1x1 conv, which
                    # TF 2.21 with oneDNN corrupts the heap training on an odd batch size (see models/vision/resnet.py)
                    shortcut = keras.layers.MaxPooling2D(1, strides, name=f"{prefix}_subsample")(shortcut)
                shortcut = keras.layers.Conv2D(filters, 1, use_bias=norm == "none", name=f"{prefix}_proj")(shortcut)
                if norm != "none":
                    shortcut = _norm_layer(norm, filters, f"{prefix}_proj")(shortcut)
            x = keras.layers.Add(name=f"{prefix}_add")([y, shortcut])
            x = keras.layers.Activation(activation, name=f"{prefix}_out")(x)
    return keras.Model(inputs, x, name=name)


def _classic_backbone(spec: str, input_shape, width: int, small: bool, options: dict):
    """The notes' classic CNNs (toolkit.models.vision.classic / .efficientnet) as feature extractors."""
    from toolkit.models import vision

    if spec == "lenet5":
        return vision.build_lenet5(input_shape, num_classes=None, name="backbone", **options)
    if spec == "vgg16":
        return vision.build_vgg16(input_shape, num_classes=None, width=width, name="backbone", **options)
    if spec == "inception_small":
        return vision.build_inception_small(input_shape, width=width, name="backbone", **options)
    if spec == "densenet_small":
        return vision.build_densenet(input_shape, blocks=(4, 4, 4), growth_rate=max(1, width // 2),
                                     stem="small" if small else "imagenet", name="backbone", **options)
    phi = 1 if spec == "efficientnet_phi1" else 0
    scale = vision.compound_scaling(phi)
    return vision.build_efficientnet(input_shape, phi, width_coefficient=scale["width"] * width / 32,
                                     stem="small" if small else "imagenet", scale_resolution=True, name="backbone",
                                     **options)


def _vision_backbone(spec: str, input_shape, width: int, pooled: bool, norm: str = "", activation: str = ""):
    """`(model, minimum side)` of one of `VISION_BACKBONES` (imported here: keras-hub loads only when used)."""
    from toolkit.models import vision

    height, width_px = input_shape[:2]
    small = min(height, width_px) < SMALL_INPUT
    if spec in _CLASSIC:
        options = {"norm": norm} if norm else {}
        options.update({"activation": activation} if activation else {})
        return _classic_backbone(spec, input_shape, width, small, options), 8
    options = {"normalization": norm} if norm else {}
    options.update({"activation": activation} if activation else {})
    if spec.startswith("resnet_ode"):
        return vision.build_resnet_ode(input_shape, width=width, stem="small" if small else "imagenet",
                                       name="backbone", **options), 8
    if spec.startswith("resnet"):
        depth = int(spec[6:8])
        options.update(preactivation=spec.endswith("_preact"), mixing="mhc" if spec.endswith("_mhc") else "add")
        return vision.build_resnet(input_shape, depth, width=width, stem="small" if small else "imagenet",
                                   name="backbone", **options), 8
    size = "base" if spec == "vit_base" else "tiny"
    config = dict(vision.VIT_SIZES[size])
    patch = 4 if size == "tiny" and small else 16
    if size == "tiny":
        hidden = 2 * width
        config.update(hidden_dim=hidden, mlp_dim=4 * hidden, num_heads=4 if hidden % 4 == 0 else 1)
    side = (-(-height // patch) * patch, -(-width_px // patch) * patch)  # the classifier resizes up to these
    model = vision.build_vit((*side, input_shape[2]), patch, **config, output="cls" if pooled else "grid",
                             ffn="moe" if spec.endswith("_moe") else "dense",
                             residual="mhc" if spec.endswith("_mhc") else "add", name="backbone")
    return model, patch


def validate_backbone(spec: str, option: str = "backbone") -> None:
    """Fails at once (before any data is read) on a backbone spec `build_backbone` would reject.

    Examples:
    >>> validate_backbone("small_cnn")
    >>> validate_backbone("ResNet999")
    Traceback (most recent call last):
    ...
    ValueError: unknown backbone 'ResNet999': use one of ('small_cnn', 'small_resnet', 'resnet18', 'resnet34', 'resnet50', 'resnet18_preact', 'resnet18_mhc', 'resnet_ode', 'vit_tiny', 'vit_tiny_moe', 'vit_tiny_mhc', 'vit_base', 'lenet5', 'vgg16', 'inception_small', 'densenet_small', 'efficientnet_b0', 'efficientnet_phi1'), a keras.applications name (e.g. MobileNet, MobileNetV2, MobileNetV3Small, MobileNetV3Large), or a path to a .keras file
    """
    if spec in BUILTIN_BACKBONES or hasattr(keras.applications, spec):
        return
    if spec.endswith(".keras") or os.path.sep in spec:
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"{option} model file {spec!r} does not exist")
        return
    raise ValueError(
        f"unknown {option} {spec!r}: use one of {BUILTIN_BACKBONES}, a keras.applications name "
        f"(e.g. {', '.join(list(_APPLICATION_PREPROCESSING)[:4])}), or a path to a .keras file"
    )


def validate_norm_options(spec: str, norm: str = "", activation: str = "") -> None:
    """Fails at once on a `norm` / `activation` the backbone `spec` cannot take (a bad name, or a backbone whose
    normalisation is fixed: the ViTs' LayerNorm + GELU, keras.applications nets, `.keras` files).

    >>> validate_norm_options("small_cnn", "group", "elu")
    >>> validate_norm_options("small_cnn", "instance")
    Traceback (most recent call last):
    ...
    ValueError: normalization must be one of ('batch', 'group', 'layer', 'none'). Received: normalization='instance'
    """
    if not norm and not activation:
        return
    if spec not in NORM_BACKBONES:
        raise ValueError(f"norm / activation options apply to the built-in CNN backbones {NORM_BACKBONES}, not to "
                         f"{spec!r} (norm={norm!r}, activation={activation!r}); leave them empty")
    _check_options(norm or "batch", activation or "relu")


def build_backbone(spec: str, input_shape, weights: str | None = None, width: int = 32, pooled: bool = False,
                   norm: str = "", activation: str = ""):
    """Resolves a backbone spec to `(backbone model, normalisation mode, minimum input side)`.

    Args:
        spec: `"small_cnn"`, `"small_resnet"`, one of `VISION_BACKBONES` (`"resnet18"`, `"vit_tiny"`, ...), a
            keras.applications name (`"MobileNetV2"`, ...), or a path to a `.keras` model (a toolkit
            classifier's `backbone` sub-model is used when present, else the model up to its last 4-D feature map).
        input_shape: `(H, W, C)` as the backbone will receive it (after any resize; a ViT rounds it up to a
            multiple of its patch size, and its model says so in its input shape).
        weights: for keras.applications: `"imagenet"` (downloads), a local weights file, or None.
        width: base width of the built-in backbones.
        pooled: a ViT returns z0, its [CLS] token `[B, D]` (what a classification head reads) instead of its
            patch tokens as a feature map `[B, H/P, W/P, D]`; other backbones always return their feature map.
        norm: the built-in CNNs' normalisation (`"batch" | "group" | "layer" | "none"`); "" keeps the backbone's.
        activation: their activation (`"relu" | "elu" | "gelu" | "selu" | "swish" | "tanh"`); "" keeps theirs.

    Examples:
    >>> backbone, mode, min_side = build_backbone("small_cnn", (8, 8, 1), width=4)
    >>> tuple(backbone.output.shape), mode, min_side   # two 2x2 poolings; filters 4, 8, 16
    ((None, 2, 2, 16), 'unit', 8)
    >>> backbone.save("cnn.keras")
    >>> tuple(build_backbone("cnn.keras", (8, 8, 1))[0].output.shape)   # a .keras file: its backbone
    (None, 2, 2, 16)
    >>> backbone, mode, _ = build_backbone("MobileNetV2", (32, 32, 3))   # keras.applications, random weights
    >>> tuple(backbone.output.shape), mode
    ((None, 1, 1, 1280), 'tf')

    With `weights="imagenet"` keras.applications reads its file from the Keras cache, downloading it when it is
    missing; `toolkit weights install mobilenet_v1_imagenet` puts one there offline (the path
    tests/toolkit/models/pretrained exercises, with no network).
    """
    validate_norm_options(spec, norm, activation)
    options = {"norm": norm or "batch", "activation": activation or "relu"}
    if spec == "small_cnn":
        return small_cnn(input_shape, width, **options), "unit", 8
    if spec == "small_resnet":
        return small_resnet(input_shape, width, **options), "unit", 8
    if spec in VISION_BACKBONES:
        model, min_side = _vision_backbone(spec, input_shape, width, pooled, norm, activation)
        return model, "unit", min_side
    if spec.endswith(".keras") or os.path.isfile(spec):
        return _backbone_from_file(spec), "unit", 8
    validate_backbone(spec)
    mode, min_side = application_preprocessing(spec)
    local_file = weights not in (None, "imagenet")
    if local_file and not os.path.isfile(weights):
        raise FileNotFoundError(f"backbone weights file {weights!r} does not exist")
    try:
        model = getattr(keras.applications, spec)(
            include_top=False, weights=None if local_file else weights, input_shape=tuple(input_shape)
        )
    except Exception as error:  # Keras raises a bare Exception("URL fetch failure ...") when offline
        if weights != "imagenet" or "fetch failure" not in str(error).lower() and not isinstance(error, OSError):
            raise
        raise WeightsUnavailableError(
            f"backbone {spec!r}: the 'imagenet' weights need a network connection to download "
            f"({str(error).splitlines()[0][:160]}). Offline: `toolkit weights list` shows the local sources "
            f"`toolkit weights install NAME` converts into the Keras cache; or copy the weights file Keras downloads for {spec} into "
            f"$KERAS_HOME/models/ (default ~/.keras/models/) on this machine, or pass a local weights file "
            f"(weights=PATH, --weights PATH)") from None
    if local_file:
        from toolkit.models.pretrained import load_weights_file

        load_weights_file(model, weights)  # names the first layer / shape that does not fit
    if weights is None:
        _settle_batch_norm(model)
    backbone = keras.Model(model.input, model.output, name="backbone")
    return backbone, mode, min_side


def _settle_batch_norm(model: keras.Model) -> None:
    """A keras.applications net trained from scratch gets BatchNorm momentum `BN_MOMENTUM` (0.9).

    Their 0.99 / 0.999 (MobileNetV2, EfficientNet) suit ImageNet-length runs: after a few epochs from random
    weights the moving averages still hold their initial values and the model evaluates at chance while its
    training accuracy is high. Pretrained nets keep theirs (their statistics are already settled).
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = min(layer.momentum, BN_MOMENTUM)


def _backbone_from_file(path: str) -> keras.Model:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"backbone model file {path!r} does not exist")
    model = load_model(path)
    try:
        return model.get_layer("backbone")
    except ValueError:
        pass
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None) is not None and layer.output.shape
        if shape is not None and len(shape) == 4:
            return keras.Model(model.input, layer.output, name="backbone")
    raise ValueError(f"model file {path!r} has no layer with a 4-D feature map to use as a backbone")
