"""Trained word vectors (word2vec, GloVe, or a text file of vectors): nearest words, analogies, the
`questions-words.txt` accuracy, projector TSVs, and an Embedding layer initialised from them."""

from __future__ import annotations

import collections
import os

import keras
import numpy as np

from toolkit.models.text.vectorize import cosine_similarity

class WordVectors:
    """Words and their vectors: nearest words, analogies, analogy accuracy, projector TSV export.

    Examples:
    >>> wv = WordVectors(["a", "b", "c"], np.eye(3))
    >>> wv.most_similar("a", k=1)[0][0] in ("b", "c")
    True
    """

    def __init__(self, words, vectors):
        self.words = [str(w) for w in words]
        self.vectors = np.asarray(vectors, dtype="float32")
        self.index = {w: i for i, w in enumerate(self.words)}
        self.stats: dict = {}
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.unit = self.vectors / np.maximum(norms, 1e-12)

    def __contains__(self, word):
        return word in self.index

    def __getitem__(self, word):
        return self.vectors[self.index[word]]

    def similarity(self, a: str, b: str) -> float:
        return float(cosine_similarity(self[a], self[b])[0, 0])

    def most_similar(self, word_or_vector, k: int = 10, exclude=()):
        """The `k` words with the highest cosine similarity: `[(word, similarity), ...]`."""
        if isinstance(word_or_vector, str):
            exclude = set(exclude) | {word_or_vector}
            word_or_vector = self[word_or_vector]
        query = np.asarray(word_or_vector, dtype="float32")
        sims = self.unit @ (query / max(np.linalg.norm(query), 1e-12))
        for word in exclude:
            if word in self.index:
                sims[self.index[word]] = -np.inf
        top = np.argsort(-sims)[:k]
        return [(self.words[i], float(sims[i])) for i in top]

    def analogy(self, a: str, b: str, c: str, k: int = 1):
        """`a` is to `b` as `c` is to ?: nearest to b - a + c over unit vectors (king - man + woman)."""
        query = self.unit[self.index[b]] - self.unit[self.index[a]] + self.unit[self.index[c]]
        return self.most_similar(query, k=k, exclude={a, b, c})

    def evaluate_analogies(self, path: str, restrict_vocab: int = 300000, lower: bool = True) -> dict:
        """Accuracy on a `questions-words.txt`-style file, over the questions whose 4 words are among the
        first `restrict_vocab` words (gensim's `evaluate_word_analogies` protocol, top-1, inputs excluded)."""
        allowed = {w: i for i, w in enumerate(self.words[:restrict_vocab])}
        matrix = self.unit[:restrict_vocab]
        questions, sections, section = [], collections.Counter(), None
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(":"):
                    section = line[1:].strip()
                    continue
                words = [w.lower() if lower else w for w in line.split()]
                if len(words) == 4 and all(w in allowed for w in words):
                    questions.append([allowed[w] for w in words])
                    sections[section] += 1
        if not questions:
            return {"accuracy": 0.0, "questions": 0, "correct": 0}
        q = np.asarray(questions)
        correct = 0
        for start in range(0, len(q), 1024):
            chunk = q[start:start + 1024]
            query = matrix[chunk[:, 1]] - matrix[chunk[:, 0]] + matrix[chunk[:, 2]]
            sims = query @ matrix.T
            rows = np.arange(len(chunk))[:, None]
            sims[rows, chunk[:, :3]] = -np.inf
            correct += int((sims.argmax(axis=1) == chunk[:, 3]).sum())
        return {"accuracy": correct / len(q), "questions": len(q), "correct": correct}

    def save_projector_tsv(self, directory: str, limit: int | None = None):
        """Writes `vectors.tsv` and `metadata.tsv` for TensorBoard's embedding projector; returns both paths."""
        os.makedirs(directory, exist_ok=True)
        n = len(self.words) if limit is None else min(limit, len(self.words))
        vectors, metadata = os.path.join(directory, "vectors.tsv"), os.path.join(directory, "metadata.tsv")
        np.savetxt(vectors, self.vectors[:n], delimiter="\t", fmt="%.6f")
        with open(metadata, "w", encoding="utf-8") as f:
            f.writelines(f"{w}\n" for w in self.words[:n])
        return vectors, metadata


def load_word_vectors(path: str, limit: int | None = None) -> WordVectors:
    """Reads a GloVe (`word v1 v2 ...`) or word2vec text file (same, after an `N D` header line)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"word vector file {path!r} does not exist")
    words, rows, dim = [], [], None
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise ValueError(f"{path} line {number}: {len(parts) - 1} values, expected {dim}")
            words.append(parts[0])
            rows.append(np.asarray(parts[1:], dtype="float32"))
            if limit and len(words) >= limit:
                break
    if not words:
        raise ValueError(f"{path}: no vectors")
    return WordVectors(words, np.stack(rows))


def embedding_matrix(vectors: WordVectors, vocabulary, seed: int = 0, lower: bool = True) -> np.ndarray:
    """`[len(vocabulary), dim]` initial table for `vocabulary` (e.g. TextVectorization's): known words get
    their vector, index 0 (padding) zeros, unknown words small random values."""
    rng = np.random.default_rng(seed)
    dim = vectors.vectors.shape[1]
    table = rng.normal(0.0, 0.1, size=(len(vocabulary), dim)).astype("float32")
    table[0] = 0.0
    for i, word in enumerate(vocabulary):
        word = str(word)
        key = word if word in vectors else (word.lower() if lower and word.lower() in vectors else None)
        if key is not None and i > 0:
            table[i] = vectors[key]
    return table


def pretrained_embedding(path: str, vocabulary, trainable: bool = False, **kwargs) -> keras.layers.Embedding:
    """A Keras `Embedding` initialised from a GloVe / word2vec text file for `vocabulary` (index 0 = padding)."""
    table = embedding_matrix(load_word_vectors(path), vocabulary)
    return keras.layers.Embedding(table.shape[0], table.shape[1], embeddings_initializer=keras.initializers.Constant(table),
                                  trainable=trainable, **kwargs)
