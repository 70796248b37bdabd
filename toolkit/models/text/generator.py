"""A small decoder-only (GPT-style) language model and temperature sampling (SEED_CATALOGUE section 7).

`TextGenerator` = a vocabulary (characters or whitespace words, a `StringLookup`) + keras-hub's
`TokenAndPositionEmbedding` -> N x `TransformerDecoder` without cross-attention (masked self-attention,
FFN, residual + LayerNorm) -> next-token logits. Trained on next-token prediction over windows of a text.

Sampling (F3:14797-14802): P(w_i) = exp(z_i / T) / sum_j exp(z_j / T), drawn by the Gumbel-max trick
(argmax(z / T + g), g ~ Gumbel(0, 1), which is exactly a draw from that softmax) from stateless noise, so a
seed fixes the text and the same graph runs eagerly, in a SavedModel and under XLA. T = 0 is the argmax
(greedy); `top_k` > 0 keeps the k largest logits. Padding (id 0) and [UNK] (id 1) are never drawn.

Decoding is one `tf.while_loop` on a fixed `[B, sequence_length]` buffer (right-padded prompts, one filled
length per row): the logits at a row's last filled position depend only on the tokens before it (causal
mask), so every step has the same shapes. A full row drops its oldest token (a sliding context window).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from toolkit.models.text.transformer_seq2seq import build_transformer_decoder

LEVELS = ("character", "word")
PAD, UNK = 0, 1  # StringLookup(mask_token="", oov_token="[UNK]") ids; vocabulary tokens start at 2


def split_tokens(texts, level: str = "character") -> tf.RaggedTensor:
    """`tf.string [B]` -> ragged tokens: UTF-8 characters (`character`) or whitespace-separated words (`word`).

    Examples:
    >>> split_tokens(tf.constant(["hé ho"])).to_list()
    [[b'h', b'\\xc3\\xa9', b' ', b'h', b'o']]
    >>> split_tokens(tf.constant(["to be, or"]), "word").to_list()
    [[b'to', b'be,', b'or']]
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}. Received: level={level!r}")
    texts = tf.convert_to_tensor(texts, tf.string)
    return tf.strings.unicode_split(texts, "UTF-8") if level == "character" else tf.strings.split(texts)


def build_vocabulary(text: str, level: str = "character", max_tokens: int | None = None) -> list:
    """The tokens of `text`, most frequent first (ties in first-seen order), at most `max_tokens`.

    Examples:
    >>> build_vocabulary("abracadabra")
    ['a', 'b', 'r', 'c', 'd']
    """
    tokens = [t.decode("utf-8") for t in split_tokens(tf.constant([text]), level).flat_values.numpy()]
    counts: dict = {}
    for token in tokens:
        counts[token] = counts.get(token, 0) + 1
    vocabulary = sorted(counts, key=lambda t: -counts[t])  # sorted() is stable: ties keep first-seen order
    return vocabulary[:max_tokens] if max_tokens else vocabulary


def sampling_probabilities(logits, temperature: float = 1.0, top_k: int = 0) -> np.ndarray:
    """The distribution `sample_tokens` draws from: softmax(z / T) over the `top_k` largest logits
    (all when 0); T = 0 puts all mass on the argmax.

    Examples:
    >>> sampling_probabilities([1.0, 2.0, 3.0], temperature=1.0).round(4).tolist()
    [0.09, 0.2447, 0.6652]
    >>> sampling_probabilities([1.0, 2.0, 3.0], temperature=0.0).tolist()
    [0.0, 0.0, 1.0]
    >>> sampling_probabilities([1.0, 2.0, 3.0], top_k=2).round(4).tolist()
    [0.0, 0.2689, 0.7311]
    """
    z = np.asarray(logits, dtype="float64")
    if top_k and top_k < z.shape[-1]:
        kth = np.sort(z, axis=-1)[..., -top_k][..., None]
        z = np.where(z >= kth, z, -np.inf)
    if temperature <= 0:
        return (z == z.max(axis=-1, keepdims=True)).astype("float64")
    scaled = (z - z.max(axis=-1, keepdims=True)) / temperature
    weights = np.exp(scaled)
    return weights / weights.sum(axis=-1, keepdims=True)


def hash_uniform(shape, seed) -> tf.Tensor:
    """Uniform (0, 1) float32 noise of a 2-D `shape` from an int `[2]` seed: a murmur3 finaliser over each
    element's counter. Written by hand because TF's stateless generators give other numbers under XLA when
    the seed is a runtime tensor (measured with StatelessRandomUniformV2/Philox on CPU), and a tpu export must
    sample the same text as the live model; integer ops give the same bits everywhere.

    Examples:
    >>> u = hash_uniform([2, 3], [1, 2]).numpy()
    >>> u.shape, bool((u > 0).all() and (u < 1).all())
    ((2, 3), True)
    """
    b = tf.bitwise
    mask = tf.constant(0xFFFFFFFF, tf.int64)
    count = tf.cast(shape[0], tf.int64) * tf.cast(shape[1], tf.int64)
    seed = tf.cast(seed, tf.int64)
    x = b.bitwise_and(tf.range(count, dtype=tf.int64) * 0x9E3779B1 + seed[0] * 0x85EBCA77 + seed[1] * 0xC2B2AE3D
                      + 0x165667B1, mask)
    for shift, multiplier in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        x = b.bitwise_xor(x, b.right_shift(x, shift))
        x = b.bitwise_and(x * multiplier, mask)  # products wrap past 2^63; the low 32 bits are still right
    x = b.bitwise_xor(x, b.right_shift(x, 16))
    return tf.reshape((tf.cast(b.right_shift(x, 8), tf.float32) + 0.5) / 16777216.0, shape)


def sample_tokens(logits, temperature, top_k, seed) -> tf.Tensor:
    """One token id per row of `logits [B, V]` drawn from `sampling_probabilities` (int64 `[B]`).

    Args:
        temperature: T (a scalar tensor or float); 0 is greedy.
        top_k: keep the k largest logits (0: all); a tensor works under XLA (no `tf.math.top_k`).
        seed: int32 `[2]` of the stateless noise: the same seed, logits and batch give the same tokens.

    Examples:
    >>> logits = tf.constant([[0.0, 5.0, 1.0]])
    >>> int(sample_tokens(logits, 0.0, 0, tf.constant([1, 2]))[0])   # T = 0: the argmax
    1
    """
    logits = tf.cast(logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    top_k = tf.cast(top_k, tf.int32)
    size = tf.shape(logits)[-1]
    k = tf.where((top_k > 0) & (top_k < size), top_k, size)
    kth = tf.gather(tf.sort(logits, axis=-1, direction="DESCENDING"), k - 1, axis=-1)[:, None]
    logits = tf.where(logits >= kth, logits, tf.fill(tf.shape(logits), tf.constant(-1e9, tf.float32)))
    uniform = hash_uniform(tf.shape(logits), seed)
    gumbel = -tf.math.log(-tf.math.log(uniform))
    hot = temperature > 0
    scores = tf.where(hot, logits / tf.maximum(temperature, 1e-6) + gumbel, logits)
    return tf.argmax(scores, axis=-1, output_type=tf.int64)


@keras.saving.register_keras_serializable(package="toolkit")
class TextGenerator(keras.Model):
    """A decoder-only Transformer language model with its own vocabulary: token ids `[B, L]` -> logits `[B, L, V]`.

    Args:
        vocabulary: tokens (characters or words), ids 2.. in this order (0 padding, 1 [UNK]).
        level: `character` (joined with "") or `word` (split on whitespace, joined with " ").
        sequence_length: context window (the position table's size).
        num_layers, hidden_dim, num_heads, intermediate_dim (default 4 x hidden_dim), dropout: the decoder stack.

    Examples:
    >>> model = TextGenerator(list("ab "), sequence_length=8, num_layers=1, hidden_dim=8, num_heads=2)
    >>> model(np.array([[2, 3, 4]])).shape   # logits over padding, [UNK], 'a', 'b', ' '
    TensorShape([1, 3, 5])
    >>> texts = model.generate(["ab"], max_tokens=4, temperature=0.0)   # untrained: any 4 characters
    >>> len(texts[0]), set(texts[0]) <= set("ab ")
    (4, True)
    """

    def __init__(self, vocabulary, level: str = "character", sequence_length: int = 64, num_layers: int = 2,
                 hidden_dim: int = 64, num_heads: int = 4, intermediate_dim: int | None = None, dropout: float = 0.1,
                 **kwargs):
        super().__init__(**kwargs)
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}. Received: level={level!r}")
        if sequence_length < 2:
            raise ValueError(f"sequence_length must be >= 2. Received: sequence_length={sequence_length}")
        self.vocabulary, self.level = [str(t) for t in vocabulary], level
        if not self.vocabulary:
            raise ValueError("vocabulary is empty: the training text has no tokens")
        self.sequence_length, self.num_layers, self.hidden_dim = int(sequence_length), int(num_layers), int(hidden_dim)
        self.num_heads, self.intermediate_dim, self.dropout = int(num_heads), intermediate_dim, float(dropout)
        self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary, mask_token="", oov_token="[UNK]",
                                                name="lookup")
        self.vocabulary_size = len(self.vocabulary) + 2
        self.decoder = build_transformer_decoder(self.vocabulary_size, self.sequence_length, num_layers, hidden_dim,
                                                 num_heads, intermediate_dim, dropout, cross_attention=False,
                                                 name="decoder")
        self.tokens = tf.constant(["", "[UNK]", *self.vocabulary])
        # an empty prompt starts after a newline when the vocabulary has one (the start of a line), else [UNK]
        self.start_id = self.vocabulary.index("\n") + 2 if "\n" in self.vocabulary else UNK
        self.built = True  # every weight lives in `decoder`, a functional model built above

    def call(self, token_ids, training=None):
        return self.decoder(token_ids, training=training)

    # ---- text <-> ids ---------------------------------------------------------------------------------------
    def tokenize(self, texts) -> tf.RaggedTensor:
        """`tf.string [B]` -> ragged int64 ids (unknown tokens -> 1)."""
        return tf.cast(self.lookup(split_tokens(texts, self.level)), tf.int64)

    def detokenize(self, ids) -> tf.Tensor:
        """int ids `[B, N]` -> `tf.string [B]` (padding dropped; words joined by a space, characters by nothing)."""
        ids = tf.convert_to_tensor(ids)
        ragged = tf.RaggedTensor.from_tensor(ids, padding=tf.constant(PAD, ids.dtype))
        return tf.strings.reduce_join(tf.gather(self.tokens, ragged), axis=-1,
                                      separator="" if self.level == "character" else " ")

    def pack(self, prompts):
        """Prompts -> `(token_ids int64 [B, sequence_length], lengths int32 [B])`: the last
        sequence_length - 1 tokens of each prompt, right-padded; an empty prompt becomes the start token."""
        ids = self.tokenize(prompts)[:, -(self.sequence_length - 1):]  # room for at least one new token
        dense = ids.to_tensor(PAD, shape=[None, self.sequence_length])
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        first = tf.one_hot(tf.zeros_like(lengths), self.sequence_length, on_value=True, off_value=False)
        dense = tf.where(first & (lengths == 0)[:, None], tf.constant(self.start_id, tf.int64), dense)
        return dense, tf.maximum(lengths, 1)

    # ---- generation -----------------------------------------------------------------------------------------
    def generate_ids(self, token_ids, lengths, max_tokens, temperature=1.0, top_k=0, seed=(0, 0)) -> tf.Tensor:
        """The decode loop: `max_tokens` new ids per row (int64 `[B, max_tokens]`) after each packed prompt.

        One `tf.while_loop` with fixed shapes (XLA-compilable when `max_tokens` is a Python int).
        """
        token_ids = tf.cast(token_ids, tf.int64)
        batch = tf.shape(token_ids)[0]
        length = self.sequence_length
        # a dense caller's lengths (a serving warm-up sends zeros) are clamped into the buffer: never an error
        lengths = tf.clip_by_value(tf.cast(lengths, tf.int32), 1, length)
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
        steps = tf.cast(max_tokens, tf.int32)
        out = tf.zeros([batch, steps], tf.int64)
        never = tf.one_hot([PAD, UNK], self.vocabulary_size, on_value=-1e9, off_value=0.0)
        never = tf.reduce_sum(never, axis=0)

        def body(step, buffer, filled, out):
            logits = self.decoder(buffer, training=False)
            last = tf.gather(logits, filled - 1, batch_dims=1) + never
            token = sample_tokens(last, temperature, top_k, tf.stack([seed[0], seed[1] + step]))
            full = filled >= length  # drop the oldest token to make room (a sliding context window)
            shifted = tf.concat([buffer[:, 1:], tf.zeros([batch, 1], tf.int64)], axis=1)
            buffer = tf.where(full[:, None], shifted, buffer)
            filled = tf.where(full, filled - 1, filled)
            at = tf.one_hot(filled, length, on_value=True, off_value=False)
            buffer = tf.where(at, token[:, None], buffer)
            out = tf.where(tf.one_hot(step, tf.shape(out)[1], on_value=True, off_value=False)[None], token[:, None],
                           out)
            return step + 1, buffer, filled + 1, out

        _, _, _, out = tf.while_loop(lambda step, *_: step < steps, body,
                                     (tf.constant(0), token_ids, lengths, out))
        return out

    def generate(self, prompts, max_tokens: int = 100, temperature: float = 1.0, top_k: int = 0,
                 seed: int = 0) -> list:
        """Continuations of `prompts` (a list of strings): `max_tokens` tokens each, sampled at `temperature`."""
        if max_tokens < 0 or temperature < 0 or top_k < 0:
            raise ValueError(f"max_tokens, temperature and top_k must be >= 0. Received: max_tokens={max_tokens}, "
                             f"temperature={temperature}, top_k={top_k}")
        if not hasattr(self, "_generate_fn"):
            def run(prompts, max_tokens, temperature, top_k, seed):
                token_ids, lengths = self.pack(prompts)
                ids = self.generate_ids(token_ids, lengths, max_tokens, temperature, top_k, tf.stack([seed, 0]))
                return self.detokenize(ids)

            self._generate_fn = tf.function(run, input_signature=[
                tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
        texts = self._generate_fn(tf.constant(list(prompts)), max_tokens, temperature, top_k, seed)
        return [t.decode("utf-8") for t in texts.numpy()]

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "level": self.level,
                "sequence_length": self.sequence_length, "num_layers": self.num_layers, "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads, "intermediate_dim": self.intermediate_dim, "dropout": self.dropout}


def language_model_windows(ids, sequence_length: int, stride: int | None = None):
    """A token-id stream -> `(inputs, targets)` int64 `[N, sequence_length]`: windows of sequence_length + 1
    ids every `stride` (default sequence_length // 2), targets shifted by one (next-token prediction).

    Examples:
    >>> x, y = language_model_windows(np.arange(2, 9), 3, stride=2)
    >>> x.tolist(), y.tolist()
    ([[2, 3, 4], [4, 5, 6]], [[3, 4, 5], [5, 6, 7]])
    """
    ids = np.asarray(ids, dtype="int64")
    stride = stride or max(1, sequence_length // 2)
    starts = range(0, max(0, len(ids) - sequence_length - 1) + 1, stride)
    windows = np.stack([ids[s:s + sequence_length + 1] for s in starts]) if len(ids) > sequence_length else \
        np.zeros((0, sequence_length + 1), "int64")
    return windows[:, :-1], windows[:, 1:]
