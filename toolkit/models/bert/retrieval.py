"""A minimal retrieval index: embed a corpus, store the unit vectors, return the top-k by cosine similarity.

`EmbeddingIndex` is the Python-side index (add / search / save / load). `CosineTopK` is the same search as
a serializable Keras layer holding the corpus matrix, so a SavedModel can answer queries by itself.
Embeddings are L2-normalised, so cosine similarity is a dot product.
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


def build_retrieval_model(embedder, corpus_vectors, k: int = 5, name: str = "retrieval") -> keras.Model:
    """Embedder + `CosineTopK` over a stored corpus: packed ids -> `embeddings`, `similarities`, `neighbors`.

    Args:
        embedder: a model from packed BERT inputs to sentence vectors (`build_embedder`).
        corpus_vectors: `[num_items, d]` corpus embeddings (normalised here).
        k: neighbours returned per query.

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
    inputs = bert_inputs()
    embeddings = embedder(inputs)
    search = CosineTopK(len(corpus_vectors), corpus_vectors.shape[1], k, name="cosine_top_k")
    similarities, neighbors = search(embeddings)
    search.set_corpus(corpus_vectors)
    outputs = {"embeddings": embeddings, "similarities": similarities, "neighbors": neighbors}
    return keras.Model(inputs, outputs, name=name)
