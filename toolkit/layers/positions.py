"""Self-attention with relative positions: RoPE (rotary) and ALiBi (linear biases), F3:14071-14091.

Sine and learned positions are *added to the input*; these two act *inside* attention, so they need an attention
layer that applies them (keras' `MultiHeadAttention` and keras-hub's `TransformerEncoder` take neither):

- RoPE (Su et al. 2021): q and k of every head are rotated by position-dependent angles (keras-hub's
  `RotaryEmbedding`), so q_i . k_j depends on the positions only through i - j.
- ALiBi (Press et al. 2022): no position vectors at all; head h adds -m_h |i - j| to its scores, with the standard
  geometric slopes m_h = 2^(-8h/H), h = 1..H (for H = 8: 1/2, 1/4, ..., 1/256). (The paper interpolates differently
  when H is not a power of two; we use the formula above for every H.)

Everything else is plain multi-head attention, softmax(QK^T / sqrt(d_k) + bias) V, with a key padding mask.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

POSITIONS = ("rope", "alibi")


def alibi_slopes(num_heads: int) -> np.ndarray:
    """m_h = 2^(-8h/H) for h = 1..H.

    Examples:
    >>> alibi_slopes(4).tolist()
    [0.25, 0.0625, 0.015625, 0.00390625]
    """
    return 2.0 ** (-8.0 * np.arange(1, num_heads + 1) / num_heads)


def alibi_bias(length: int, num_heads: int):
    """The `[H, L, L]` bias -m_h |i - j| (a backend tensor).

    Examples:
    >>> alibi_bias(3, 2).numpy()[1].tolist()   # m_2 = 2^-8
    [[-0.0, -0.00390625, -0.0078125], [-0.00390625, -0.0, -0.00390625], [-0.0078125, -0.00390625, -0.0]]
    """
    position = ops.cast(ops.arange(length), "float32")
    distance = ops.abs(position[:, None] - position[None, :])
    return -ops.convert_to_tensor(alibi_slopes(num_heads), "float32")[:, None, None] * distance[None]


@keras.saving.register_keras_serializable(package="toolkit")
class PositionalSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with RoPE or ALiBi positions. `[B, L, d]` -> `[B, L, d]`.

    Args:
        num_heads: H.
        key_dim: d_k per head (d / H in a Transformer block).
        positions: `"rope"` or `"alibi"`.
        dropout: on the attention weights.
        max_wavelength: RoPE's base (10,000, as sine positions).

    Call: `layer(x, padding_mask=None)`, `padding_mask` `bool [B, L]`, True = a real token (keys that are False
    get no attention).

    Examples:
    >>> layer = PositionalSelfAttention(num_heads=2, key_dim=4, positions="alibi")
    >>> tuple(layer(np.zeros((1, 5, 8), "float32")).shape)
    (1, 5, 8)
    >>> PositionalSelfAttention.from_config(layer.get_config()).positions
    'alibi'
    """

    def __init__(self, num_heads: int, key_dim: int, positions: str = "rope", dropout: float = 0.0,
                 max_wavelength: int = 10000, **kwargs):
        super().__init__(**kwargs)
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}. Received: positions={positions!r}")
        self.num_heads, self.key_dim, self.positions = int(num_heads), int(key_dim), positions
        self.dropout, self.max_wavelength = float(dropout), int(max_wavelength)

    def build(self, input_shape):
        width = input_shape[-1]
        heads = (None, self.num_heads, self.key_dim)
        self.query, self.key, self.value = (
            keras.layers.EinsumDense("bld,dhk->blhk", heads, bias_axes="hk", name=name) for name in ("query", "key", "value"))
        self.output_dense = keras.layers.EinsumDense("blhk,hkd->bld", (None, width), bias_axes="d", name="output")
        for layer in (self.query, self.key, self.value):
            layer.build(input_shape)
        self.output_dense.build((None, None, self.num_heads, self.key_dim))
        self.attention_dropout = keras.layers.Dropout(self.dropout)
        if self.positions == "rope":
            import keras_hub

            self.rotary = keras_hub.layers.RotaryEmbedding(max_wavelength=self.max_wavelength, sequence_axis=1,
                                                           feature_axis=-1, name="rotary")

    def call(self, inputs, padding_mask=None, training=None):
        q, k, v = self.query(inputs), self.key(inputs), self.value(inputs)  # [B, L, H, d_k]
        if self.positions == "rope":
            q, k = self.rotary(q), self.rotary(k)
        scores = ops.einsum("bqhk,bshk->bhqs", q, k) / ops.sqrt(ops.cast(self.key_dim, q.dtype))
        if self.positions == "alibi":
            scores = scores + ops.cast(alibi_bias(ops.shape(inputs)[1], self.num_heads), scores.dtype)[None]
        if padding_mask is not None:
            keep = ops.cast(padding_mask, "bool")[:, None, None, :]
            scores = ops.where(keep, scores, ops.cast(-1e9 if scores.dtype == "float32" else -3e4, scores.dtype))
        weights = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        return self.output_dense(ops.einsum("bhqs,bshk->bqhk", weights, v))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "positions": self.positions, "dropout": self.dropout, "max_wavelength": self.max_wavelength}
