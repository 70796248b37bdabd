"""Vectorisers on `keras.layers.TextVectorization`: word / character / n-gram tokens, counts, binary, TF-IDF.

Keras' own `output_mode="tf_idf"` only offers one smoothed IDF, `log(1 + N / (1 + df))`, on raw counts. The
`TfIdf` layer below adds the textbook forms (SEED_CATALOGUE section 6): TF = count / document length and
IDF = log(N / df) (unsmoothed; a term in every document gets 0) or sklearn's smoothed
log((N + 1) / (df + 1)) + 1, with optional L2 row normalisation.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

MODES = ("int", "count", "binary", "tfidf", "keras_tfidf")
IDF_FORMS = ("log", "smooth", "keras")


@keras.saving.register_keras_serializable(package="toolkit")
class TfIdf(keras.layers.Layer):
    """Bag-of-words counts `[B, V]` -> TF-IDF `[B, V]`.

    Args:
        vocabulary_size: V.
        tf: `"frequency"` (count / total count of the document), `"raw"` (count) or `"log"` (1 + log count).
        normalize: `"l2"` to scale each row to unit length, or None.

    The IDF vector is a non-trainable weight: set it with `set_idf(idf)` (or via `fit_idf`).

    Examples:
    >>> layer = TfIdf(3); layer.build((None, 3)); layer.set_idf([0.0, 1.0, 2.0])
    >>> layer(np.array([[1.0, 1.0, 2.0]])).numpy().tolist()
    [[0.0, 0.25, 1.0]]
    """

    def __init__(self, vocabulary_size: int, tf: str = "frequency", normalize: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if tf not in ("frequency", "raw", "log"):
            raise ValueError(f"tf must be frequency, raw or log. Received: {tf!r}")
        self.vocabulary_size, self.tf, self.normalize = int(vocabulary_size), tf, normalize

    def build(self, input_shape):
        self.idf = self.add_weight(name="idf", shape=(self.vocabulary_size,), initializer="ones", trainable=False)

    def set_idf(self, idf):
        self.idf.assign(np.asarray(idf, dtype="float32"))

    def call(self, counts):
        counts = keras.ops.cast(counts, "float32")
        if self.tf == "frequency":
            total = keras.ops.sum(counts, axis=-1, keepdims=True)
            term = counts / keras.ops.maximum(total, 1.0)
        elif self.tf == "log":
            term = keras.ops.where(counts > 0, 1.0 + keras.ops.log(keras.ops.maximum(counts, 1.0)), 0.0)
        else:
            term = counts
        out = term * self.idf
        if self.normalize == "l2":
            norm = keras.ops.sqrt(keras.ops.sum(out * out, axis=-1, keepdims=True))
            out = out / keras.ops.maximum(norm, 1e-12)
        return out

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "tf": self.tf,
                "normalize": self.normalize}


def idf_weights(document_frequency, num_documents: int, form: str = "log"):
    """IDF from document frequencies. `log`: ln(N/df) (df = 0 -> 0); `smooth`: ln((N+1)/(df+1)) + 1;
    `keras`: ln(1 + N/(1 + df)).

    Examples:
    >>> idf_weights([10000, 100, 5], 10000).round(2).tolist()   # SEED_CATALOGUE oracle 2
    [0.0, 4.61, 7.6]
    """
    df = np.asarray(document_frequency, dtype="float64")
    n = float(num_documents)
    if form == "log":
        return np.where(df > 0, np.log(n / np.maximum(df, 1.0)), 0.0)
    if form == "smooth":
        return np.log((n + 1.0) / (df + 1.0)) + 1.0
    if form == "keras":
        return np.log(1.0 + n / (1.0 + df))
    raise ValueError(f"idf form must be one of {IDF_FORMS}. Received: {form!r}")


def build_vectorizer(
    texts,
    mode: str = "int",
    split: str = "word",
    ngrams: int | None = None,
    max_tokens: int | None = 20000,
    sequence_length: int | None = None,
    idf: str = "log",
    term_frequency: str = "frequency",
    normalize: str | None = None,
    standardize: str = "lower_and_strip_punctuation",
    name: str = "preprocessor",
) -> keras.Model:
    """An adapted vectoriser: a Keras model from a `tf.string [B]` batch to token ids or a bag-of-words.

    Args:
        texts: training texts (the vocabulary and document frequencies come from them).
        mode: `int` (token ids `[B, sequence_length]`, 0 = padding, 1 = OOV), `count`, `binary`,
            `tfidf` (our TfIdf layer: `idf`, `term_frequency`, `normalize`) or `keras_tfidf` (Keras' built-in).
        split: `word` (whitespace) or `character`.
        ngrams: n-gram order (all orders 1..n are produced), or None.
        max_tokens: vocabulary cap (most frequent first), None = unlimited.
        sequence_length: pad / truncate length for `int` mode.

    Examples:
    >>> v = build_vectorizer(["a b b", "a c"], mode="count", max_tokens=None)
    >>> [str(t) for t in v.get_layer("text_vectorization").get_vocabulary()]   # by frequency; 0 = OOV
    ['[UNK]', 'b', 'a', 'c']
    >>> v(tf.constant(["b b c"])).numpy().tolist()
    [[0, 2, 0, 1]]
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}. Received: {mode!r}")
    split_arg = "character" if split in ("char", "character") else "whitespace"
    output_mode = {"int": "int", "count": "count", "binary": "multi_hot", "tfidf": "count",
                   "keras_tfidf": "tf_idf"}[mode]
    layer = keras.layers.TextVectorization(
        max_tokens=max_tokens, standardize=standardize, split=split_arg, ngrams=ngrams, output_mode=output_mode,
        output_sequence_length=sequence_length if mode == "int" else None, name="text_vectorization",
    )
    data = tf.data.Dataset.from_tensor_slices(np.asarray([str(t) for t in texts], dtype=object)).batch(256)
    layer.adapt(data)
    inputs = keras.Input(shape=(), dtype="string", name="text")
    outputs = layer(inputs)
    if mode == "tfidf":
        weighting = TfIdf(layer.vocabulary_size(), tf=term_frequency, normalize=normalize, name="tfidf")
        weighting.build((None, layer.vocabulary_size()))
        counts = np.concatenate([layer(batch).numpy() for batch in data])
        weighting.set_idf(idf_weights((counts > 0).sum(axis=0), len(counts), idf))
        outputs = weighting(outputs)
    return keras.Model(inputs, outputs, name=name)


def cosine_similarity(a, b=None):
    """Pairwise cosine similarity `v.w / (|v| |w|)` of rows of `a` and `b` (default `a`); zero rows give 0.

    Examples:
    >>> round(float(cosine_similarity([[1, 1]], [[2, 3]])[0, 0]), 3)   # SEED_CATALOGUE oracle 4
    0.981
    """
    a = np.atleast_2d(np.asarray(a, dtype="float64"))
    b = a if b is None else np.atleast_2d(np.asarray(b, dtype="float64"))
    a_n = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b_n = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a_n @ b_n.T


def nearest_neighbors(queries, matrix, k: int = 5, exclude_self: bool = False):
    """Indices and cosine similarities of the `k` rows of `matrix` nearest each query row.

    Returns:
        `(indices [Q, k], similarities [Q, k])`, most similar first.
    """
    sims = cosine_similarity(queries, matrix)
    if exclude_self:
        np.fill_diagonal(sims[:, : sims.shape[0]], -np.inf)
    k = min(k, sims.shape[1])
    idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(sims, idx, axis=1)
