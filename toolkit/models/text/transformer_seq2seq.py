"""The Transformer's three variants from keras-hub layers, and a Transformer translator (SEED_CATALOGUE section 7).

- encoder-only (BERT): `TokenAndPositionEmbedding` -> N x `TransformerEncoder` (bidirectional self-attention,
  FFN, residual + LayerNorm): contextual states `[B, L, d]` (`build_transformer_encoder`).
- decoder-only (GPT): `TokenAndPositionEmbedding` -> N x `TransformerDecoder` without an encoder sequence
  (masked self-attention + FFN) -> next-token logits (`build_transformer_decoder(cross_attention=False)`).
- encoder-decoder (the original Transformer): each decoder layer is masked self-attention, then
  cross-attention (queries from the decoder, keys and values from the encoder states, source padding
  masked), then the FFN, each with residual + LayerNorm (post-norm, the notes' Z1..Z3)
  (`build_transformer_seq2seq`, `TransformerTranslator`).

The causal mask is keras-hub's (`TransformerDecoder(use_causal_mask=True)`, built by
`compute_causal_mask`): `causal_mask(n)` writes it in the notes' additive form, 0 where j <= i and -inf
above the diagonal. Decoding keeps a fixed-length right-padded buffer and reads the logits at the last
filled position: with the causal mask, positions after it cannot change them, so one traced graph serves
every step (no KV cache: the models here are small).
"""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from keras_hub.src.layers.modeling.transformer_layer_utils import compute_causal_mask

from toolkit.models.text.seq2seq import Seq2SeqTranslator


def causal_mask(length: int) -> np.ndarray:
    """The additive causal mask `[length, length]`: 0 where key j <= query i (may attend), -inf above.

    It is keras-hub's boolean `compute_causal_mask` (what `TransformerDecoder` applies) in the notes' form
    softmax((QK^T + Mask) / sqrt(d_k)).

    Examples:
    >>> causal_mask(3).tolist()
    [[0.0, -inf, -inf], [0.0, 0.0, -inf], [0.0, 0.0, 0.0]]
    """
    allowed = keras.ops.convert_to_numpy(compute_causal_mask(1, length, length))[0]
    return np.where(allowed, 0.0, -np.inf)


def _check_width(hidden_dim, num_heads):
    if hidden_dim % num_heads:
        raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads}). "
                         f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}")


def build_transformer_encoder(vocabulary_size: int, sequence_length: int, num_layers: int = 2, hidden_dim: int = 64,
                              num_heads: int = 4, intermediate_dim: int | None = None, dropout: float = 0.1,
                              name: str = "encoder") -> keras.Model:
    """Encoder-only Transformer: token ids `int [B, L]` (0 = padding) -> contextual states `[B, L, hidden_dim]`.

    Examples:
    >>> encoder = build_transformer_encoder(20, 6, num_layers=1, hidden_dim=8, num_heads=2)
    >>> encoder(np.array([[3, 4, 0, 0, 0, 0]])).shape
    TensorShape([1, 6, 8])
    """
    _check_width(hidden_dim, num_heads)
    token_ids = keras.Input((None,), dtype="int64", name="source_ids")
    x = keras_hub.layers.TokenAndPositionEmbedding(vocabulary_size, sequence_length, hidden_dim,
                                                   name="source_embedding")(token_ids)
    padding_mask = keras.ops.not_equal(token_ids, 0)
    for index in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(intermediate_dim or 4 * hidden_dim, num_heads, dropout=dropout,
                                                name=f"encoder_layer_{index}")(x, padding_mask=padding_mask)
    return keras.Model(token_ids, x, name=name)


def build_transformer_decoder(vocabulary_size: int, sequence_length: int, num_layers: int = 2, hidden_dim: int = 64,
                              num_heads: int = 4, intermediate_dim: int | None = None, dropout: float = 0.1,
                              cross_attention: bool = True, name: str = "decoder") -> keras.Model:
    """A Transformer decoder stack -> next-token logits `[B, T, vocabulary_size]`.

    With `cross_attention` (encoder-decoder): inputs `[target_ids [B, T], encoded [B, S, d], source_ids [B, S]]`
    (source id 0 is masked out of the cross-attention). Without (decoder-only): input `target_ids` alone.

    Examples:
    >>> lm = build_transformer_decoder(20, 8, num_layers=1, hidden_dim=8, num_heads=2, cross_attention=False)
    >>> lm(np.array([[5, 6, 7]])).shape
    TensorShape([1, 3, 20])
    """
    _check_width(hidden_dim, num_heads)
    target_ids = keras.Input((None,), dtype="int64", name="target_ids")
    inputs = [target_ids]
    encoded = source_mask = None
    if cross_attention:
        encoded = keras.Input((None, hidden_dim), name="encoded")
        source_ids = keras.Input((None,), dtype="int64", name="source_ids")
        inputs += [encoded, source_ids]
        source_mask = keras.ops.not_equal(source_ids, 0)
    x = keras_hub.layers.TokenAndPositionEmbedding(vocabulary_size, sequence_length, hidden_dim,
                                                   name="target_embedding")(target_ids)
    target_mask = keras.ops.not_equal(target_ids, 0)
    for index in range(num_layers):
        layer = keras_hub.layers.TransformerDecoder(intermediate_dim or 4 * hidden_dim, num_heads, dropout=dropout,
                                                    name=f"decoder_layer_{index}")
        if cross_attention:
            x = layer(x, encoded, decoder_padding_mask=target_mask, encoder_padding_mask=source_mask)
        else:
            x = layer(x, decoder_padding_mask=target_mask)
    logits = keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")(x)
    return keras.Model(inputs if cross_attention else target_ids, logits, name=name)


def build_transformer_seq2seq(source_vocabulary_size: int, target_vocabulary_size: int, source_length: int,
                              target_length: int, num_layers: int = 2, hidden_dim: int = 64, num_heads: int = 4,
                              intermediate_dim: int | None = None, dropout: float = 0.1,
                              name: str = "transformer_seq2seq") -> keras.Model:
    """Encoder-decoder Transformer: `[source_ids [B, S], target_ids [B, T]]` -> next-token logits `[B, T, V]`.

    Its parts are the nested models `encoder` and `decoder` (`model.get_layer("encoder")`), so decoding
    can run the encoder once per sentence and the decoder once per step, also after a `.keras` reload.

    Examples:
    >>> model = build_transformer_seq2seq(10, 12, 5, 6, num_layers=1, hidden_dim=8, num_heads=2)
    >>> model([np.array([[2, 3, 0, 0, 0]]), np.array([[1, 4, 5]])]).shape
    TensorShape([1, 3, 12])
    """
    common = dict(num_layers=num_layers, hidden_dim=hidden_dim, num_heads=num_heads,
                  intermediate_dim=intermediate_dim, dropout=dropout)
    encoder = build_transformer_encoder(source_vocabulary_size, source_length, name="encoder", **common)
    decoder = build_transformer_decoder(target_vocabulary_size, target_length, name="decoder", **common)
    source_ids = keras.Input((None,), dtype="int64", name="source_ids")
    target_ids = keras.Input((None,), dtype="int64", name="target_ids")
    logits = decoder([target_ids, encoder(source_ids), source_ids])
    return keras.Model([source_ids, target_ids], logits, name=name)


class TransformerTranslator(Seq2SeqTranslator):
    """The Transformer encoder-decoder translator, with the GRU `Translator`'s API: `fit`, `translate`
    (greedy, or beam search with `beam_width > 1`), `beam_search`, `normalize`.

    Args:
        sources, targets: training sentences (lists of strings).
        num_layers, hidden_dim, num_heads, intermediate_dim (default 4 x hidden_dim), dropout: the stacks' sizes.
        max_tokens: vocabulary caps; max_length: tokens per sentence (longer ones are truncated).

    Examples:
    >>> t = TransformerTranslator(["add user", "delete user"], ["ajouter utilisateur", "supprimer utilisateur"],
    ...                           num_layers=1, hidden_dim=8, num_heads=2, max_length=4)
    >>> tuple(t.model.output.shape)   # next-token logits over the target vocabulary
    (None, None, 7)
    >>> len(t.translate(["add user"], beam_width=2))   # untrained: any target words
    1
    """

    def __init__(self, sources, targets, num_layers: int = 2, hidden_dim: int = 64, num_heads: int = 4,
                 intermediate_dim: int | None = None, dropout: float = 0.1, max_tokens: int = 5000,
                 max_length: int = 16, seed: int = 0):
        keras.utils.set_random_seed(seed)
        source_size, target_size = self._vectorize(sources, targets, max_tokens, max_length)
        self.buffer_length = max_length + 2  # BOS + up to max_length + 1 generated tokens fit the position table
        self.model = build_transformer_seq2seq(source_size, target_size, max_length, self.buffer_length, num_layers,
                                               hidden_dim, num_heads, intermediate_dim, dropout)
        self._bind(self.model)

    def _bind(self, model):
        self.encoder, self.decoder = model.get_layer("encoder"), model.get_layer("decoder")
        spec = [tf.TensorSpec([None, None], tf.int64), tf.TensorSpec([None, None, self.decoder.inputs[1].shape[-1]]),
                tf.TensorSpec([None, None], tf.int64), tf.TensorSpec([None], tf.int32)]

        def last_logits(buffer, encoded, source_ids, lengths):  # logits at each row's last filled position
            logits = self.decoder([buffer, encoded, source_ids], training=False)
            return tf.gather(logits, lengths - 1, batch_dims=1)

        self._step_fn = tf.function(last_logits, input_signature=spec)  # one trace for every decoding step

    def _encode(self, src):
        return [self.encoder(src, training=False).numpy()]

    def _logits(self, prefixes, src, encoded):
        buffer = np.zeros((len(prefixes), self.buffer_length), "int64")
        for row, ids in enumerate(prefixes):
            buffer[row, :len(ids)] = ids
        lengths = np.array([len(ids) for ids in prefixes], "int32")
        return self._step_fn(buffer, encoded, src, lengths).numpy()

    def _greedy(self, src, memory, max_length):
        max_length = min(max_length, self.buffer_length - 1)
        prefixes = [[self.bos] for _ in range(len(src))]
        done = np.zeros(len(src), bool)
        for _ in range(max_length):
            logits = self._logits(prefixes, src, memory[0])
            logits[:, :2] = -np.inf  # never emit padding or OOV
            for row, token in enumerate(logits.argmax(axis=-1)):
                prefixes[row].append(int(token))
                done[row] |= token == self.eos
            if done.all():
                break
        return [self._words(ids[1:]) for ids in prefixes]

    def _start_state(self, memory):
        return None

    def _beam_step(self, beams, src, memory):
        if len(beams[0][0]) + 1 >= self.buffer_length:  # the position table is full: only EOS may follow
            logp = np.full((len(beams), len(self.target_words)), -np.inf, "float32")
            logp[:, self.eos] = 0.0
            return logp, [None] * len(beams)
        k = len(beams)
        logits = self._logits([[self.bos, *ids] for ids, _, _ in beams], np.repeat(src, k, 0),
                              np.repeat(memory[0], k, 0))
        return tf.nn.log_softmax(logits).numpy(), [None] * k
