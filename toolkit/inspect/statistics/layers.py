"""Graph-side pieces of the debug model: per-batch channel reductions and pre-activation taps.

Keras has no layer that reduces an activation to per-channel statistics (activation statistics were
declined for core Keras), so `ChannelStatistics` is hand-written: it turns a `[B, ..., C]` activation
into six `[C]` vectors inside the graph, so only kilobytes per batch leave the device however large the
activations are. `PreActivation` re-applies a Conv/Dense layer's own weights without its fused activation,
so a filter pushed below zero ("blocked", always 0 after ReLU) can be told from a dead one.
"""

from __future__ import annotations

import keras
from keras import ops

# Order of the rows a `ChannelStatistics` layer returns.
STAT_ROWS = ("count", "min", "max", "mean", "m2", "zeros")


@keras.saving.register_keras_serializable(package="toolkit")
class ChannelStatistics(keras.layers.Layer):
    """Reduces an activation `[B, ..., C]` to per-channel batch statistics `[6, C]` (float32).

    Rows (see `STAT_ROWS`): element count per channel, min, max, mean, m2 (sum of squared deviations from
    this batch's mean, for Chan's parallel variance update) and the number of elements with |x| <= `zero_tol`.

    Args:
        zero_tol: absolute value at or below which an activation counts as zero (0: exact zeros, as ReLU gives).

    Examples:
    >>> import numpy as np
    >>> out = ChannelStatistics()(np.array([[[0.0, 1.0], [2.0, -1.0]]], "float32"))
    >>> out.shape
    TensorShape([6, 2])
    """

    def __init__(self, zero_tol: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.zero_tol = float(zero_tol)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        channels = ops.shape(x)[-1]
        x = ops.reshape(x, (-1, channels))
        count = ops.cast(ops.shape(x)[0], "float32") * ops.ones((channels,), "float32")
        mean = ops.mean(x, axis=0)
        m2 = ops.sum(ops.square(x - mean), axis=0)
        zeros = ops.sum(ops.cast(ops.abs(x) <= self.zero_tol, "float32"), axis=0)
        return ops.stack([count, ops.min(x, axis=0), ops.max(x, axis=0), mean, m2, zeros])

    def compute_output_shape(self, input_shape):
        return (len(STAT_ROWS), input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "zero_tol": self.zero_tol}


@keras.saving.register_keras_serializable(package="toolkit")
class PreActivation(keras.layers.Layer):
    """The linear part (kernel and bias, no activation) of a Conv or Dense layer, sharing its weights.

    Args:
        layer: a built `keras.layers.Dense` or convolution layer (`Conv1D/2D/3D`, `DepthwiseConv2D`, ...).

    Examples:
    >>> import numpy as np
    >>> dense = keras.layers.Dense(2, activation="relu"); _ = dense(np.ones((1, 3)))
    >>> PreActivation(dense)(np.ones((1, 3), "float32")).shape
    TensorShape([1, 2])
    """

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if isinstance(layer, dict):
            layer = keras.saving.deserialize_keras_object(layer)
        if not has_fused_activation(layer) and not _is_linear_layer(layer):
            raise ValueError(f"PreActivation needs a Dense or convolution layer. Received: {layer!r}")
        self.layer = layer

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def call(self, inputs):
        layer = self.layer
        if isinstance(layer, keras.layers.Dense):
            outputs = ops.matmul(inputs, layer.kernel)
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            outputs = ops.depthwise_conv(inputs, layer.kernel, strides=layer.strides, padding=layer.padding,
                                         data_format=layer.data_format, dilation_rate=layer.dilation_rate)
        else:
            outputs = layer.convolution_op(inputs, layer.kernel)
        if getattr(layer, "use_bias", False) and layer.bias is not None:
            if getattr(layer, "data_format", "channels_last") == "channels_first":
                shape = (1, -1) + (1,) * (len(outputs.shape) - 2)
                outputs = outputs + ops.reshape(layer.bias, shape)
            else:
                outputs = outputs + layer.bias
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "layer": keras.saving.serialize_keras_object(self.layer)}


def _is_linear_layer(layer) -> bool:
    return isinstance(layer, keras.layers.Dense) or hasattr(layer, "convolution_op") or isinstance(
        layer, keras.layers.DepthwiseConv2D)


def has_fused_activation(layer) -> bool:
    """True for a Dense/conv layer whose `activation` is something other than linear."""
    return _is_linear_layer(layer) and fused_activation(layer) != "linear"


def fused_activation(layer) -> str:
    """The name of a layer's own `activation` ("relu", "softmax", ...; "linear" when it has none).

    Examples:
    >>> fused_activation(keras.layers.Dense(2, activation="softmax")), fused_activation(keras.layers.Dense(2))
    ('softmax', 'linear')
    """
    activation = getattr(layer, "activation", None)
    if activation is None:
        return "linear"
    return getattr(activation, "__name__", None) or type(activation).__name__.lower()


# Activation layer classes -> the activation name `channels.checks_for` knows.
_ACTIVATION_LAYERS = {"LeakyReLU": "leaky_relu", "ELU": "elu", "PReLU": "prelu", "Softmax": "softmax"}


def activation_layer_name(layer) -> str | None:
    """The activation an activation layer applies (`Activation("relu")`, `ReLU`, `LeakyReLU`, `ELU`, `PReLU`,
    `Softmax`), None for any other layer. A `ReLU` with a negative slope counts as "leaky_relu".

    Examples:
    >>> activation_layer_name(keras.layers.ReLU()), activation_layer_name(keras.layers.ReLU(negative_slope=0.1))
    ('relu', 'leaky_relu')
    >>> activation_layer_name(keras.layers.Activation("sigmoid")), activation_layer_name(keras.layers.Dense(2))
    ('sigmoid', None)
    """
    if isinstance(layer, keras.layers.Activation):
        return fused_activation(layer)
    if isinstance(layer, keras.layers.ReLU):
        return "leaky_relu" if layer.negative_slope else "relu"
    for cls in type(layer).__mro__:
        if cls.__module__.startswith("keras") and cls.__name__ in _ACTIVATION_LAYERS:
            return _ACTIVATION_LAYERS[cls.__name__]
    return None
