"""MC dropout (the notes, F3:4979-4983; Gal & Ghahramani 2016): keep dropout on at test time, run T stochastic
passes and read the spread as uncertainty,

    mean = (1/T) sum_t f(x; m_t),    Var[y|x] ~ (1/T) sum_t f(x; m_t)^2 - mean^2     (m_t: the t-th dropout masks)

Only the dropout layers are stochastic (every `keras.layers.Dropout` subclass, nested models included); the rest
of the model runs in inference mode (`training=False`: BatchNorm uses its moving statistics). The masks come from
stateless random ops seeded by `(seed, pass, layer)`, so a given seed gives the same answer in the training
process, in a reloaded SavedModel and on a server (an export's parity check compares them). Keras' own
`Dropout(training=True)` draws from a seed-generator variable, which differs between a live model and its
reload, and would also switch BatchNorm to batch statistics: hence the layers' `call` is replaced for the trace.

Examples:
>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dropout(0.5),
...                           keras.layers.Dense(3, activation="softmax")])
>>> out = mc_dropout_predict(model, np.ones((2, 4), "float32"), samples=16, seed=1)
>>> sorted(out), out["mean"].shape, bool((out["variance"].numpy() >= 0).all())
(['mean', 'variance'], TensorShape([2, 3]), True)
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf


def dropout_layers(model) -> list:
    """Every dropout layer of `model` (`keras.layers.Dropout` and its subclasses: SpatialDropout...), in order,
    looking inside nested models."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.Dropout):
            found.append(layer)
        elif getattr(layer, "layers", None):
            found.extend(dropout_layers(layer))
    return found


@contextlib.contextmanager
def stochastic_dropout(model, seed):
    """Within the block, the model's dropout layers drop (inverted dropout, mask seeded by `seed(layer index)`,
    a `[2]` int tensor) whatever `training` says; on exit they are restored."""
    layers = dropout_layers(model)
    for index, layer in enumerate(layers):
        def call(inputs, training=None, _layer=layer, _index=index):
            if not _layer.rate:
                return inputs
            shape = None
            if getattr(_layer, "noise_shape", None) is not None:  # SpatialDropout: one mask per channel
                shape = [tf.shape(inputs)[i] if d is None else d for i, d in enumerate(_layer.noise_shape)]
            return tf.nn.experimental.stateless_dropout(inputs, _layer.rate, seed=seed(_index), noise_shape=shape)

        layer.call = call
    try:
        yield layers
    finally:
        for layer in layers:
            del layer.call


def mc_dropout_predict(model, inputs, samples: int = 20, seed: int = 0) -> dict:
    """`{"mean", "variance"}` of the model's output over `samples` stochastic passes (a `tf.while_loop`, so
    `samples` may be a tensor inside a signature). With no dropout (or rate 0) the variance is 0 and the mean
    is the plain prediction.

    Raises:
        ValueError: samples < 1 (when a Python int).
    """
    if isinstance(samples, int) and samples < 1:
        raise ValueError(f"samples must be >= 1. Received: samples={samples}")
    if tf.executing_eagerly():  # one graph for the loop: eagerly, tf.while_loop is a Python loop (100x slower)
        return tf.function(lambda x: _passes(model, x, samples, seed))(tf.convert_to_tensor(inputs))
    return _passes(model, inputs, samples, seed)


def _passes(model, inputs, samples, seed) -> dict:
    samples = tf.cast(samples, tf.int32)
    seed = tf.cast(seed, tf.int32)

    def one_pass(t):
        with stochastic_dropout(model, lambda i: tf.stack([seed, t * 1000 + i])):
            return tf.cast(model(inputs, training=False), tf.float32)

    # Welford's running mean and sum of squared deviations: identical passes give a variance of exactly 0
    # (sum f^2 / T - mean^2 in float32 leaves ~1e-8 of round-off)
    first = one_pass(tf.constant(0))

    def body(t, mean, deviations):
        out = one_pass(t)
        delta = out - mean
        mean = mean + delta / tf.cast(t + 1, tf.float32)
        return t + 1, mean, deviations + delta * (out - mean)

    _, mean, deviations = tf.while_loop(lambda t, *_: t < samples, body,
                                        (tf.constant(1), first, tf.zeros_like(first)))
    # the population variance of the notes' formula, (1/T) sum f^2 - mean^2
    return {"mean": mean, "variance": deviations / tf.cast(samples, tf.float32)}
