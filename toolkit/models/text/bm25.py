"""BM25 sparse retrieval, the hybrid dense + sparse score, and chunking of long documents (F3:15490-15558).

BM25 (Okapi; the notes give no constants, so the common defaults k1 = 1.2, b = 0.75, both settable):

    score(q, d) = sum_{t in q} idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))      (Lucene's form: never negative)

A query term repeated counts once per occurrence, so the score is linear in the query's term counts: the index
is one sparse `[vocabulary, documents]` weight matrix and scoring is a sparse matmul, in numpy/scipy here
(`BM25Index`) and in the TensorFlow graph (`BM25Tokenizer` + `BM25Scores`, so an export ranks by itself).
Written by hand because no installed library does this: keras-hub / sklearn have TF-IDF-style counts
(`CountVectorizer`) but no BM25, and `rank_bm25` is pure Python (not in a graph) and not needed.

Tokens: ASCII-lowercased runs of `[a-z0-9]`; the same rule in Python (`tokenize`) and in the graph
(`tf.strings.lower` is ASCII-only, then a regex split), so both sides see identical terms.

Hybrid (`hybrid_scores`): `alpha * dense + (1 - alpha) * sparse`, each min-max normalised per query over the
documents first (cosine lies in [-1, 1], BM25 in [0, unbounded), so without it one scale swamps the other).
"""

from __future__ import annotations

import re

import keras
import numpy as np
from scipy import sparse

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TOKEN = re.compile(r"[a-z0-9]+")
SPLIT_PATTERN = "[^a-z0-9]+"


def tokenize(text: str) -> list:
    """BM25 terms of a text: ASCII-lowercased runs of letters/digits.

    >>> tokenize("Mars, the RED planet (2nd)!")
    ['mars', 'the', 'red', 'planet', '2nd']
    """
    return _TOKEN.findall(str(text).translate(_ASCII_LOWER))


def chunk_text(text: str, chunk_size: int, overlap: int = 0) -> list:
    """Splits a text into windows of `chunk_size` whitespace-separated tokens, consecutive windows sharing
    `overlap` tokens (`chunk_size=0`: the whole text, one chunk).

    >>> chunk_text("a b c d e f g", chunk_size=3, overlap=1)
    ['a b c', 'c d e', 'e f g']
    """
    chunk_size, overlap = int(chunk_size), int(overlap)
    if chunk_size <= 0:
        return [text]
    if not 0 <= overlap < chunk_size:
        raise ValueError(f"chunk_overlap must be in [0, chunk_size={chunk_size}). Received: {overlap}")
    words = str(text).split()
    if len(words) <= chunk_size:
        return [text]
    step = chunk_size - overlap
    starts = list(range(0, len(words) - overlap, step))
    return [" ".join(words[s:s + chunk_size]) for s in starts if s < len(words)]


def chunk_corpus(texts, chunk_size: int, overlap: int = 0) -> tuple:
    """`(chunks, doc_ids)`: every text's chunks, and the index of the text each chunk came from.

    >>> chunk_corpus(["a b c d", "e"], chunk_size=2)
    (['a b', 'c d', 'e'], [0, 0, 1])
    """
    chunks, doc_ids = [], []
    for i, text in enumerate(texts):
        pieces = chunk_text(text, chunk_size, overlap)
        chunks.extend(pieces)
        doc_ids.extend([i] * len(pieces))
    return chunks, doc_ids


class BM25Index:
    """BM25 over a corpus: `fit(texts)`, then `scores(queries) -> [num_queries, num_docs]`.

    Args:
        k1: term-frequency saturation (1.2).
        b: document-length normalisation (0.75; 0 = none, 1 = full).

    Examples:
    >>> index = BM25Index().fit(["the red planet", "the twin of earth", "a red red car"])
    >>> index.scores(["red planet"]).astype(float).round(3).tolist()
    [[1.567, 0.0, 0.63]]
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75):
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1. Received: k1={k1}, b={b}")
        self.k1, self.b = float(k1), float(b)
        self.vocabulary: list = []
        self.weights = None  # scipy csr [vocabulary, documents]

    def fit(self, texts) -> "BM25Index":
        docs = [tokenize(t) for t in texts]
        if not docs:
            raise ValueError("BM25 needs at least one document")
        self.vocabulary = sorted({t for d in docs for t in d})
        ids = {t: i for i, t in enumerate(self.vocabulary)}
        rows = [ids[t] for d in docs for t in d]
        cols = [j for j, d in enumerate(docs) for _ in d]
        tf = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ids), len(docs)))
        tf.sum_duplicates()
        lengths = np.array([len(d) for d in docs], "float64")
        n_docs, df = len(docs), np.diff(tf.indptr)  # csr rows = terms: stored entries per row = document freq.
        self.idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1 - self.b + self.b * lengths / max(lengths.mean(), 1e-12))
        tf = tf.tocoo()
        values = self.idf[tf.row] * tf.data * (self.k1 + 1) / (tf.data + norm[tf.col])
        self.weights = sparse.csr_matrix((values, (tf.row, tf.col)), shape=tf.shape)
        self._ids = ids
        return self

    @property
    def num_docs(self) -> int:
        return self.weights.shape[1]

    def query_counts(self, queries):
        """`[num_queries, vocabulary]` sparse term counts (terms not in the vocabulary are dropped)."""
        rows, cols = [], []
        for i, q in enumerate(queries):
            for t in tokenize(q):
                if t in self._ids:
                    rows.append(i)
                    cols.append(self._ids[t])
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), len(self.vocabulary)))

    def scores(self, queries) -> np.ndarray:
        if self.weights is None:
            raise ValueError("the BM25 index is empty: call fit(texts) first")
        queries = [queries] if isinstance(queries, str) else list(queries)
        return np.asarray((self.query_counts(queries) @ self.weights).todense(), "float32")


def minmax(scores, axis: int = -1) -> np.ndarray:
    """Min-max normalises each query's scores to [0, 1] (a constant row -> 0)."""
    scores = np.asarray(scores, "float32")
    low, high = scores.min(axis=axis, keepdims=True), scores.max(axis=axis, keepdims=True)
    return (scores - low) / np.maximum(high - low, 1e-12)


def hybrid_scores(dense, sparse_scores, alpha: float = 0.5) -> np.ndarray:
    """`alpha * minmax(dense) + (1 - alpha) * minmax(sparse)` per query (rows), over the documents (columns).

    >>> hybrid_scores([[0.9, 0.1, 0.5]], [[0.0, 4.0, 2.0]], alpha=0.5).round(3).tolist()
    [[0.5, 0.5, 0.5]]
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1]. Received: {alpha}")
    return alpha * minmax(dense) + (1 - alpha) * minmax(sparse_scores)


def doc_max(chunk_scores, doc_ids, num_docs: int) -> np.ndarray:
    """`[q, num_chunks]` -> `[q, num_docs]`: a document scores as its best chunk."""
    chunk_scores = np.asarray(chunk_scores, "float32")
    out = np.full((chunk_scores.shape[0], num_docs), -np.inf, "float32")
    np.maximum.at(out, (slice(None), np.asarray(doc_ids)), chunk_scores)
    return out


# --- in the graph -------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="toolkit")
class BM25Tokenizer(keras.layers.Layer):
    """tf.string texts `[B]` -> int32 term ids `[B, T]` (0 = padding or a term outside the vocabulary).

    The same terms as `tokenize`, looked up in a fixed vocabulary (a `keras.layers.StringLookup`, saved with
    the model); ids are 1-based vocabulary positions.

    >>> layer = BM25Tokenizer(["earth", "planet", "red"])
    >>> layer(keras.ops.convert_to_tensor(["Red planet!", "blue"])).numpy().tolist()
    [[3, 2], [0, 0]]
    """

    def __init__(self, vocabulary, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary = [str(t) for t in vocabulary]
        self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary or ["[none]"], num_oov_indices=1,
                                                output_mode="int", name="terms")

    def build(self, input_shape):
        self.built = True  # the vocabulary table is built in __init__ (StringLookup with a fixed vocabulary)

    def call(self, text):
        import tensorflow as tf

        text = tf.strings.lower(tf.convert_to_tensor(text))  # encoding="": ASCII only, as `tokenize`
        words = tf.strings.split(tf.strings.strip(tf.strings.regex_replace(text, SPLIT_PATTERN, " ")))
        ids = tf.ragged.map_flat_values(lambda w: tf.cast(self.lookup(w), tf.int32), words)
        return ids.to_tensor(default_value=0, shape=[None, None])

    def compute_output_spec(self, text):
        return keras.KerasTensor((text.shape[0], None), dtype="int32")

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary}


@keras.saving.register_keras_serializable(package="toolkit")
class BM25Scores(keras.layers.Layer):
    """Term ids `[B, T]` (from `BM25Tokenizer`, 0 ignored) -> BM25 scores `[B, num_items]`, in the graph.

    Holds the `BM25Index` weight matrix as sparse COO weights (`indices [nnz, 2]`, `values [nnz]`); set them
    with `set_index`. Scoring: per-query term counts (bincount) times the sparse `[vocabulary + 1, items]` matrix.

    >>> index = BM25Index().fit(["the red planet", "the twin of earth", "a red red car"])
    >>> tokens, scores = BM25Tokenizer(index.vocabulary), BM25Scores.from_index(index)
    >>> np.asarray(scores(tokens(keras.ops.convert_to_tensor(["red planet"])))).astype(float).round(3).tolist()
    [[1.567, 0.0, 0.63]]
    """

    def __init__(self, vocabulary_size: int, num_items: int, nnz: int, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.num_items, self.nnz = int(vocabulary_size), int(num_items), int(nnz)
        self.term_item = self.add_weight(shape=(self.nnz, 2), initializer="zeros", dtype="int64",
                                         trainable=False, name="term_item")
        self.values = self.add_weight(shape=(self.nnz,), initializer="zeros", dtype="float32",
                                      trainable=False, name="values")

    @classmethod
    def from_index(cls, index: BM25Index, **kwargs) -> "BM25Scores":
        layer = cls(len(index.vocabulary), index.num_docs, index.weights.nnz, **kwargs)
        layer.set_index(index)
        return layer

    def set_index(self, index: BM25Index):
        coo = index.weights.tocoo()
        if coo.shape != (self.vocabulary_size, self.num_items) or coo.nnz != self.nnz:
            raise ValueError(f"the index has shape {coo.shape} with {coo.nnz} entries; this layer expects "
                             f"{(self.vocabulary_size, self.num_items)} with {self.nnz}")
        self.term_item.assign(np.stack([coo.row + 1, coo.col], axis=1).astype("int64"))  # id 0: OOV / padding
        self.values.assign(coo.data.astype("float32"))

    def call(self, term_ids):
        import tensorflow as tf

        term_ids = tf.cast(term_ids, tf.int32)
        counts = tf.math.bincount(term_ids, minlength=self.vocabulary_size + 1, maxlength=self.vocabulary_size + 1,
                                  axis=-1, dtype=tf.float32)  # [B, V + 1]; column 0 (padding / OOV) has no weight
        weights = tf.sparse.reorder(tf.SparseTensor(self.term_item, self.values,
                                                    [self.vocabulary_size + 1, self.num_items]))
        return tf.transpose(tf.sparse.sparse_dense_matmul(weights, counts, adjoint_a=True, adjoint_b=True))

    def compute_output_spec(self, term_ids):
        return keras.KerasTensor((term_ids.shape[0], self.num_items), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "num_items": self.num_items,
                "nnz": self.nnz}
