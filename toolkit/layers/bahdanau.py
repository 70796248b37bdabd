"""Bahdanau (additive) attention: e_t = v^T tanh(W_s s + W_h h_t), alpha = softmax_t(e), c = sum_t alpha_t h_t."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="toolkit")
class BahdanauAttention(keras.layers.Layer):
    """Additive attention of decoder states over encoder states (SEED_CATALOGUE section 6).

    Call with `(query [B, T', H_dec] or [B, H_dec], values [B, T, H_enc])` and an optional `values_mask` `[B, T]`
    (True = real token); padded positions get -1e9 scores (softmax weight 0). Returns
    `(context [B, T', H_enc] or [B, H_enc], weights [B, T', T] or [B, T])`.

    Args:
        units: d_a, the size of W_s s and W_h h.

    Examples:
    >>> import numpy as np
    >>> layer = BahdanauAttention(4)
    >>> context, weights = layer(np.ones((2, 3), "float32"), np.ones((2, 5, 6), "float32"))
    >>> context.shape, weights.shape
    (TensorShape([2, 6]), TensorShape([2, 5]))
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.supports_masking = True
        self.query_dense = keras.layers.Dense(self.units, use_bias=False, name="W_s")
        self.key_dense = keras.layers.Dense(self.units, use_bias=False, name="W_h")
        self.score_dense = keras.layers.Dense(1, use_bias=False, name="v")

    def build(self, query_shape, values_shape=None):
        values_shape = values_shape or query_shape
        self.query_dense.build(query_shape)
        self.key_dense.build(values_shape)
        self.score_dense.build((*values_shape[:-1], self.units))

    def call(self, query, values, values_mask=None):
        single = len(query.shape) == 2
        if single:
            query = keras.ops.expand_dims(query, 1)
        keys = self.key_dense(values)                                   # [B, T, d_a] (precomputed W_h H)
        q = self.query_dense(query)                                     # [B, T', d_a]
        scores = self.score_dense(keras.ops.tanh(keras.ops.expand_dims(q, 2) + keras.ops.expand_dims(keys, 1)))
        scores = keras.ops.squeeze(scores, -1)                          # [B, T', T]
        if values_mask is not None:
            scores = keras.ops.where(keras.ops.expand_dims(keras.ops.cast(values_mask, "bool"), 1), scores, -1e9)
        weights = keras.ops.softmax(scores, axis=-1)
        context = keras.ops.matmul(weights, keras.ops.cast(values, weights.dtype))
        if single:
            return context[:, 0], weights[:, 0]
        return context, weights

    def compute_mask(self, *args, **kwargs):
        return None  # the padding mask is consumed here (passed explicitly as values_mask)

    def compute_output_shape(self, query_shape, values_shape):
        return (*query_shape[:-1], values_shape[-1]), (*query_shape[:-1], values_shape[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}
