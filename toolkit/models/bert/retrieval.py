"""A minimal retrieval index: embed a corpus, store the unit vectors, return the top-k by cosine similarity.

`EmbeddingIndex` is the Python-side index (add / search / save / load). `CosineTopK` is the same search as
a serializable Keras layer holding the corpus matrix, so a SavedModel can answer queries by itself.
Embeddings are L2-normalised, so cosine similarity is a dot product.

Hybrid retrieval (F3:15490-15558): `HybridTopK` ranks documents by dense cosine, BM25 (`toolkit.models.text.bm25`)
or `alpha * dense + (1 - alpha) * BM25` (each min-max normalised per query over the documents), over chunks of
long documents (a document scores as its best chunk); `build_retrieval_model(..., mode=, bm25_index=, doc_ids=)`
puts all of it, BM25 included, in the graph.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="toolkit")
class CosineTopK(keras.layers.Layer):
    """Query vectors `[B, d]` -> `(scores [B, k], indices [B, k])` of the k most similar corpus rows.

    The corpus (`[num_items, d]`, L2-normalised) is a non-trainable weight, saved with the model; set it
    with `set_corpus`. Queries are normalised here, so unnormalised inputs are fine.

    Args:
        num_items: corpus size.
        dim: embedding size.
        k: neighbours returned (capped at num_items).

    Examples:
    >>> layer = CosineTopK(num_items=3, dim=2, k=2)
    >>> layer.set_corpus(np.array([[1, 0], [0, 1], [0.6, 0.8]], "float32"))
    >>> scores, ids = layer(np.array([[0.0, 2.0]], "float32"))
    >>> ids.numpy().tolist(), np.round(scores.numpy(), 3).tolist()
    ([[1, 2]], [[1.0, 0.8]])
    """

    def __init__(self, num_items: int, dim: int, k: int = 5, **kwargs):
        super().__init__(**kwargs)
        if num_items < 1:
            raise ValueError(f"the corpus needs at least one item. Received: num_items={num_items}")
        self.num_items, self.dim, self.k = int(num_items), int(dim), int(min(k, num_items))
        self.corpus = self.add_weight(shape=(self.num_items, self.dim), initializer="zeros", trainable=False,
                                      name="corpus", dtype="float32")

    def set_corpus(self, vectors):
        vectors = np.asarray(vectors, "float32")
        if vectors.shape != (self.num_items, self.dim):
            raise ValueError(f"corpus must have shape {(self.num_items, self.dim)}. Received: {vectors.shape}")
        self.corpus.assign(normalize(vectors))

    def call(self, queries):
        queries = keras.ops.cast(queries, "float32")
        queries = queries / keras.ops.maximum(keras.ops.norm(queries, axis=-1, keepdims=True), 1e-12)
        similarities = keras.ops.matmul(queries, keras.ops.transpose(self.corpus))
        scores, indices = keras.ops.top_k(similarities, k=self.k)
        return scores, keras.ops.cast(indices, "int32")

    def get_config(self):
        return {**super().get_config(), "num_items": self.num_items, "dim": self.dim, "k": self.k}


def normalize(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, "float32")
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


class EmbeddingIndex:
    """Embed, store, search: cosine top-k over a corpus of texts.

    Args:
        embed: `fn(list of str) -> [n, d] array` (e.g. `TextEmbedder.embed`).

    Examples:
    >>> def embed(texts):   # a toy embedder: counts of "red" and "twin"; a real one is `embed_texts`
    ...     return np.array([[t.count("red"), t.count("twin")] for t in texts], "float32") + 0.1
    >>> index = EmbeddingIndex(embed).add(["Mars is the red planet.", "Venus is Earth's twin."])
    >>> index.search("Which planet is red?", k=1)[0][0]["text"]
    'Mars is the red planet.'
    >>> EmbeddingIndex.load(index.save("index"), embed).search("twin?", k=2)[0][0]["index"]   # round trip
    1
    """

    def __init__(self, embed=None):
        self.embed = embed
        self.texts: list = []
        self.metadata: list = []
        self.vectors = np.zeros((0, 0), "float32")

    def __len__(self):
        return len(self.texts)

    def add(self, texts, vectors=None, metadata=None) -> "EmbeddingIndex":
        """Adds texts (embedding them unless `vectors` are given) with optional per-item metadata."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if vectors is None:
            if self.embed is None:
                raise ValueError("this index has no embed function: pass vectors=")
            vectors = self.embed(texts)
        vectors = normalize(vectors)
        if len(vectors) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(vectors)} vectors")
        if len(self.texts) and vectors.shape[1] != self.vectors.shape[1]:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index {self.vectors.shape[1]}")
        self.vectors = vectors if not len(self.texts) else np.concatenate([self.vectors, vectors])
        self.texts.extend(texts)
        self.metadata.extend(list(metadata) if metadata is not None else [None] * len(texts))
        return self

    def search_vectors(self, queries, k: int = 5):
        """`[q, d]` query vectors -> `(scores [q, k], indices [q, k])`, best first."""
        if not len(self.texts):
            raise ValueError("the index is empty: add texts first")
        similarities = normalize(queries) @ self.vectors.T
        k = min(int(k), len(self.texts))
        top = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarities, top, axis=1), axis=1, kind="stable")
        indices = np.take_along_axis(top, order, axis=1)
        return np.take_along_axis(similarities, indices, axis=1), indices

    def search(self, queries, k: int = 5) -> list:
        """Query text(s) -> per query, a list of `{"rank", "index", "score", "text", "metadata"}`."""
        queries = [queries] if isinstance(queries, str) else list(queries)
        if self.embed is None:
            raise ValueError("this index has no embed function: use search_vectors")
        scores, indices = self.search_vectors(self.embed(queries), k)
        return [[{"rank": r + 1, "index": int(i), "score": float(s), "text": self.texts[i],
                  "metadata": self.metadata[i]} for r, (s, i) in enumerate(zip(row_s, row_i))]
                for row_s, row_i in zip(scores, indices)]

    def save(self, directory: str) -> str:
        """Writes `vectors.npy` and `items.json` into `directory`."""
        os.makedirs(directory, exist_ok=True)
        np.save(os.path.join(directory, "vectors.npy"), self.vectors)
        with open(os.path.join(directory, "items.json"), "w") as f:
            json.dump({"texts": self.texts, "metadata": self.metadata}, f)
        return directory

    @classmethod
    def load(cls, directory: str, embed=None) -> "EmbeddingIndex":
        for name in ("vectors.npy", "items.json"):
            if not os.path.isfile(os.path.join(directory, name)):
                raise FileNotFoundError(f"{directory!r} is not an embedding index (missing {name})")
        index = cls(embed)
        index.vectors = np.load(os.path.join(directory, "vectors.npy"))
        with open(os.path.join(directory, "items.json")) as f:
            items = json.load(f)
        index.texts, index.metadata = items["texts"], items["metadata"]
        return index


MODES = ("dense", "bm25", "hybrid")


@keras.saving.register_keras_serializable(package="toolkit")
class HybridTopK(keras.layers.Layer):
    """`(query vectors [B, d], BM25 scores [B, num_chunks] or None)` -> the k best documents.

    Returns `scores` (the ranking score), `similarities` (cosine of each returned document's best chunk; what a
    cosine threshold applies to) and `neighbors` (document ids), all `[B, k]`. Per document: the best chunk's
    cosine and the best chunk's BM25; `mode="hybrid"` ranks by `alpha * minmax(cosine) + (1 - alpha) *
    minmax(BM25)`, min-max per query over the documents (the same as `toolkit.models.text.bm25.hybrid_scores`).

    Args:
        num_chunks: corpus rows (chunks); dim: embedding size.
        num_docs: documents the chunks belong to (`doc_ids` maps chunk -> document; set with `set_corpus`).
        k: documents returned (capped at num_docs).
        mode: "dense" | "bm25" | "hybrid".
        alpha: the dense weight of the hybrid score.

    Examples:
    >>> layer = HybridTopK(num_chunks=3, dim=2, num_docs=2, k=2, mode="hybrid", alpha=0.4)
    >>> layer.set_corpus(np.array([[1, 0], [0, 1], [0.6, 0.8]], "float32"), doc_ids=[0, 0, 1])
    >>> out = layer(np.array([[0.0, 1.0]], "float32"), np.array([[0.0, 0.0, 3.0]], "float32"))
    >>> out["neighbors"].numpy().tolist(), np.round(out["similarities"].numpy(), 3).tolist()
    ([[1, 0]], [[0.8, 1.0]])
    """

    def __init__(self, num_chunks: int, dim: int, num_docs: int | None = None, k: int = 5, mode: str = "dense",
                 alpha: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"retrieval mode must be one of {MODES}. Received: {mode!r}")
        if not 0 <= float(alpha) <= 1:
            raise ValueError(f"alpha must be in [0, 1]. Received: {alpha}")
        if num_chunks < 1:
            raise ValueError(f"the corpus needs at least one item. Received: num_chunks={num_chunks}")
        self.num_chunks, self.dim = int(num_chunks), int(dim)
        self.num_docs = int(num_docs or num_chunks)
        self.k, self.mode, self.alpha = int(min(k, self.num_docs)), mode, float(alpha)
        self.corpus = self.add_weight(shape=(self.num_chunks, self.dim), initializer="zeros", trainable=False,
                                      name="corpus", dtype="float32")
        self.doc_ids = self.add_weight(shape=(self.num_chunks,), initializer="zeros", trainable=False,
                                       name="doc_ids", dtype="int32")

    def set_corpus(self, vectors, doc_ids=None):
        vectors = np.asarray(vectors, "float32")
        if vectors.shape != (self.num_chunks, self.dim):
            raise ValueError(f"corpus must have shape {(self.num_chunks, self.dim)}. Received: {vectors.shape}")
        doc_ids = np.arange(self.num_chunks) if doc_ids is None else np.asarray(doc_ids)
        if doc_ids.shape != (self.num_chunks,) or doc_ids.min() < 0 or doc_ids.max() >= self.num_docs:
            raise ValueError(f"doc_ids must be {self.num_chunks} ids in [0, {self.num_docs}). Received: {doc_ids}")
        self.corpus.assign(normalize(vectors))
        self.doc_ids.assign(doc_ids.astype("int32"))

    def _per_doc(self, chunk_scores):
        import tensorflow as tf

        return tf.transpose(tf.math.unsorted_segment_max(tf.transpose(chunk_scores), self.doc_ids, self.num_docs))

    def call(self, queries, sparse_scores=None):
        import tensorflow as tf

        queries = tf.cast(queries, tf.float32)
        queries = queries / tf.maximum(tf.norm(queries, axis=-1, keepdims=True), 1e-12)
        cosine = self._per_doc(tf.matmul(queries, self.corpus, transpose_b=True))
        if self.mode == "dense":
            score = cosine
        else:
            if sparse_scores is None:
                raise ValueError(f"mode={self.mode!r} needs the BM25 scores (second input)")
            bm25 = self._per_doc(tf.cast(sparse_scores, tf.float32))
            score = bm25 if self.mode == "bm25" else (self.alpha * _minmax(cosine) + (1 - self.alpha) * _minmax(bm25))
        scores, indices = tf.math.top_k(score, k=self.k)
        return {"scores": scores, "similarities": tf.gather(cosine, indices, batch_dims=1), "neighbors": indices}

    def compute_output_spec(self, queries, sparse_scores=None):
        shape = (queries.shape[0], self.k)
        return {"scores": keras.KerasTensor(shape, "float32"), "similarities": keras.KerasTensor(shape, "float32"),
                "neighbors": keras.KerasTensor(shape, "int32")}

    def get_config(self):
        return {**super().get_config(), "num_chunks": self.num_chunks, "dim": self.dim, "num_docs": self.num_docs,
                "k": self.k, "mode": self.mode, "alpha": self.alpha}


def _minmax(scores):
    import tensorflow as tf

    low = tf.reduce_min(scores, axis=-1, keepdims=True)
    return (scores - low) / tf.maximum(tf.reduce_max(scores, axis=-1, keepdims=True) - low, 1e-12)


def build_retrieval_model(embedder, corpus_vectors, k: int = 5, name: str = "retrieval", mode: str | None = None,
                          alpha: float = 0.5, bm25_index=None, doc_ids=None) -> keras.Model:
    """Embedder + `CosineTopK` over a stored corpus: packed ids -> `embeddings`, `similarities`, `neighbors`.

    Args:
        embedder: a model from packed BERT inputs to sentence vectors (`build_embedder`).
        corpus_vectors: `[num_items, d]` corpus embeddings (normalised here).
        k: neighbours returned per query.
        mode: None (the plain `CosineTopK` model) or "dense" | "bm25" | "hybrid" (a `HybridTopK` model: adds a
            `term_ids` input, from `BM25Tokenizer`, and a `scores` output; `neighbors` are document ids).
        alpha: the dense weight of the hybrid score.
        bm25_index: a fitted `BM25Index` over the same rows as `corpus_vectors` (modes bm25 / hybrid).
        doc_ids: row -> document id when the rows are chunks of longer documents (default: one row each).

    Examples:
    >>> from toolkit.models.bert import build_embedder, make_preprocessor, pack, tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "twin"], hidden_dim=8)
    >>> features = pack(make_preprocessor(tokenizer, 8), tf.constant(["red", "twin", "red twin"]))
    >>> embedder = build_embedder(backbone)
    >>> model = build_retrieval_model(embedder, embedder(features), k=2)
    >>> outputs = model(features)
    >>> outputs["neighbors"].shape, outputs["neighbors"].numpy()[:, 0].tolist()   # each text finds itself first
    (TensorShape([3, 2]), [0, 1, 2])
    """
    from toolkit.models.bert.models import bert_inputs

    corpus_vectors = np.asarray(corpus_vectors, "float32")
    if mode is not None:
        return _hybrid_model(embedder, corpus_vectors, k, name, mode, alpha, bm25_index, doc_ids)
    inputs = bert_inputs()
    embeddings = embedder(inputs)
    search = CosineTopK(len(corpus_vectors), corpus_vectors.shape[1], k, name="cosine_top_k")
    similarities, neighbors = search(embeddings)
    search.set_corpus(corpus_vectors)
    outputs = {"embeddings": embeddings, "similarities": similarities, "neighbors": neighbors}
    return keras.Model(inputs, outputs, name=name)


def _hybrid_model(embedder, corpus_vectors, k, name, mode, alpha, bm25_index, doc_ids) -> keras.Model:
    from toolkit.models.bert.models import bert_inputs
    from toolkit.models.text.bm25 import BM25Scores

    doc_ids = np.arange(len(corpus_vectors)) if doc_ids is None else np.asarray(doc_ids)
    inputs = bert_inputs()
    search = HybridTopK(len(corpus_vectors), corpus_vectors.shape[1], int(doc_ids.max()) + 1, k, mode, alpha,
                        name="hybrid_top_k")
    embeddings = embedder(inputs)
    sparse_scores = None
    if mode != "dense":
        if bm25_index is None or bm25_index.num_docs != len(corpus_vectors):
            raise ValueError(f"mode={mode!r} needs bm25_index= fitted on the same {len(corpus_vectors)} rows")
        inputs["term_ids"] = keras.Input((None,), dtype="int32", name="term_ids")
        sparse_scores = BM25Scores.from_index(bm25_index, name="bm25_scores")(inputs["term_ids"])
    outputs = search(embeddings, sparse_scores)
    search.set_corpus(corpus_vectors, doc_ids)
    return keras.Model(inputs, {"embeddings": embeddings, **outputs}, name=name)
