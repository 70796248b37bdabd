"""A small Transformer encoder classifier from scratch, built from keras-hub layers.

For users without a pretrained checkpoint: token ids -> `TokenAndPositionEmbedding` (learned positions, as
BERT) or token embedding + `SinePositionEncoding` (PE(pos, 2i) = sin(pos / 10000^(2i/d)), cos for 2i+1) ->
N x `TransformerEncoder` (multi-head self-attention + FFN with d_ff = 4d, residual + LayerNorm, post-norm
as in the original paper) -> masked mean pooling -> softmax. Token id 0 is padding (Keras'
`TextVectorization` convention), masked out of attention and of the pooling.

`positions="rope"` / `"alibi"` put the positions inside attention instead (`toolkit.layers.PositionalSelfAttention`:
keras-hub `RotaryEmbedding` on Q and K, or the ALiBi bias -m_h |i - j| with m_h = 2^(-8h/H)); those blocks are the
same residual + LayerNorm + FFN (d_ff = 4d, GELU) arrangement built from Keras layers around that attention, and
the model takes any sequence length.
"""

from __future__ import annotations

import keras
import keras_hub

POSITIONS = ("learned", "sine", "rope", "alibi")


def build_transformer_classifier(vocabulary_size: int, num_classes: int, sequence_length: int = 128,
                                 num_layers: int = 2, hidden_dim: int = 64, num_heads: int = 4,
                                 intermediate_dim: int | None = None, dropout: float = 0.1,
                                 positions: str = "learned", normalize_first: bool = False,
                                 name: str = "classifier") -> keras.Model:
    """Token ids `int [B, L]` (0 = padding) -> class probabilities `[B, num_classes]`.

    Args:
        vocabulary_size: size of the token id space (ids < vocabulary_size).
        num_classes: number of classes.
        sequence_length: maximum length (size of the learned position table; sine positions need none).
        num_layers: encoder blocks.
        hidden_dim: model width d (divisible by num_heads; d_k = d / h per head).
        num_heads: attention heads.
        intermediate_dim: FFN width; default 4 x hidden_dim.
        dropout: dropout inside the blocks and before the output layer.
        positions: `"learned"` (keras-hub `TokenAndPositionEmbedding`), `"sine"` (`SinePositionEncoding`),
            `"rope"` (rotary Q/K) or `"alibi"` (linear distance bias per head), the last two inside attention.
        normalize_first: pre-norm blocks (x + f(LN(x)), more stable when deep) instead of post-norm.

    Examples:
    >>> model = build_transformer_classifier(1000, 3, sequence_length=32, hidden_dim=32, num_heads=2)
    >>> model.output_shape
    (None, 3)
    """
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}. Received: positions={positions!r}")
    if hidden_dim % num_heads:
        raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads})")
    token_ids = keras.Input((sequence_length if positions == "learned" else None,), dtype="int64",
                            name="token_ids")
    if positions in ("rope", "alibi"):
        return _relative_classifier(token_ids, vocabulary_size, num_classes, num_layers, hidden_dim, num_heads,
                                    intermediate_dim or 4 * hidden_dim, dropout, positions, normalize_first, name)
    if positions == "learned":
        x = keras_hub.layers.TokenAndPositionEmbedding(vocabulary_size, sequence_length, hidden_dim,
                                                       mask_zero=True, name="embedding")(token_ids)
    else:
        embed = keras.layers.Embedding(vocabulary_size, hidden_dim, mask_zero=True, name="embedding")
        x = embed(token_ids)
        x = x + keras_hub.layers.SinePositionEncoding(name="sine_positions")(x)
    padding_mask = keras.ops.not_equal(token_ids, 0)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for index in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim or 4 * hidden_dim, num_heads, dropout=dropout, activation="gelu",
            normalize_first=normalize_first, name=f"encoder_{index}",
        )(x, padding_mask=padding_mask)
    x = keras.layers.GlobalAveragePooling1D(name="mean_pool")(x, mask=padding_mask)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(token_ids, outputs, name=name)


def _relative_classifier(token_ids, vocabulary_size, num_classes, num_layers, hidden_dim, num_heads, intermediate_dim,
                         dropout, positions, normalize_first, name):
    from toolkit.layers.positions import PositionalSelfAttention

    padding_mask = keras.ops.not_equal(token_ids, 0)
    x = keras.layers.Embedding(vocabulary_size, hidden_dim, name="embedding")(token_ids)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for index in range(num_layers):
        prefix = f"encoder_{index}"
        attention = PositionalSelfAttention(num_heads, hidden_dim // num_heads, positions, dropout=dropout,
                                            name=f"{prefix}_attention")
        ffn = keras.Sequential([keras.layers.Dense(intermediate_dim, activation="gelu"), keras.layers.Dropout(dropout),
                                keras.layers.Dense(hidden_dim)], name=f"{prefix}_ffn")
        norms = [keras.layers.LayerNormalization(epsilon=1e-5, name=f"{prefix}_norm_{i}") for i in (1, 2)]
        drops = [keras.layers.Dropout(dropout, name=f"{prefix}_dropout_{i}") for i in (1, 2)]
        if normalize_first:  # x + f(LN(x))
            x = x + drops[0](attention(norms[0](x), padding_mask=padding_mask))
            x = x + drops[1](ffn(norms[1](x)))
        else:  # LN(x + f(x)), the original post-norm
            x = norms[0](x + drops[0](attention(x, padding_mask=padding_mask)))
            x = norms[1](x + drops[1](ffn(x)))
    x = keras.layers.GlobalAveragePooling1D(name="mean_pool")(x, mask=padding_mask)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(token_ids, outputs, name=name)
