"""Shared helpers of `toolkit.inspect`: loading a model, finding and tapping layers, input ranges."""

from __future__ import annotations


import keras
import numpy as np
import tensorflow as tf

from toolkit import saving
from toolkit.inspect.statistics.statistics import build_debug_model, walk_layers


def load_model(path: str) -> keras.Model:
    """Loads a `.keras` file, or a run directory's `model.keras` (`toolkit.saving.load_model`).

    Examples:
    >>> load_model("missing.keras")
    Traceback (most recent call last):
    ...
    FileNotFoundError: model 'missing.keras' does not exist (give a .keras file or a run directory holding model.keras)
    """
    return saving.load_model(path)


def tap_model(model: keras.Model, layer: str) -> keras.Model:
    """`model.inputs` -> the raw output of `layer` (nested sub-model layers allowed: "backbone/conv")."""
    debug, _ = build_debug_model(model, [layer], reduce=False, preactivation=False)
    return debug


def first_conv_layer(model: keras.Model):
    """The first convolution layer (nested models entered)."""
    for _, layer, _ in walk_layers(model):
        if "Conv" in type(layer).__name__ and hasattr(layer, "kernel"):
            return layer
    raise ValueError(f"model {model.name!r} has no convolution layer")


def last_feature_layer(model: keras.Model) -> str:
    """Name of the last top-level layer with a 4-D output (a backbone sub-model counts): Grad-CAM's default."""
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = layer.output.shape if hasattr(layer, "output") else None
        if shape is not None and len(shape) == 4:
            return layer.name
    raise ValueError(f"model {model.name!r} has no top-level layer with a 4-D (image-like) output")


def outputs_probabilities(model: keras.Model) -> bool:
    """True when the model's last layer applies softmax (or sigmoid), so outputs are probabilities."""
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") in ("softmax", "sigmoid")


def class_log_probability(model: keras.Model):
    """`f(outputs, class_index) -> [B]` log probability of the class (softmax applied when outputs are logits)."""
    probabilities = outputs_probabilities(model)

    def score(outputs, class_index):
        outputs = tf.cast(outputs, tf.float32)
        logp = tf.math.log(tf.clip_by_value(outputs, 1e-12, 1.0)) if probabilities else tf.nn.log_softmax(outputs)
        return tf.gather(logp, class_index, axis=-1)

    return score


def input_shape(model: keras.Model) -> tuple:
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"model {model.name!r} has an unknown input size {shape}: pass image_shape")
    return shape


def as_batch(image) -> tf.Tensor:
    image = tf.convert_to_tensor(np.asarray(image), tf.float32)
    return image[None] if image.shape.rank == 3 else image
