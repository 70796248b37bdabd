"""BM25 against a hand-written numpy oracle (the formula term by term), in Python and in the TF graph."""

import math

import keras
import numpy as np
import pytest

from toolkit.models.text.bm25 import (BM25Index, BM25Scores, BM25Tokenizer, chunk_corpus, chunk_text, doc_max,
                                      hybrid_scores, minmax, tokenize)

DOCS = ["The cat sat on the mat.", "A dog chased the cat, the cat ran!", "Stock markets fell; the dog slept."]


def oracle(docs, query, k1=1.2, b=0.75):
    """Okapi BM25 with Lucene's idf, one term at a time (no sparse matrices)."""
    tokens = [d.lower().replace(",", " ").replace(".", " ").replace("!", " ").replace(";", " ").split() for d in docs]
    n, avgdl = len(tokens), sum(map(len, tokens)) / len(tokens)
    out = []
    for d in tokens:
        score = 0.0
        for t in query.lower().split():
            df = sum(t in other for other in tokens)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = d.count(t)
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avgdl))
        out.append(score)
    return np.array(out)


@pytest.mark.parametrize("k1,b", [(1.2, 0.75), (2.0, 0.0), (0.5, 1.0)])
def test_bm25_matches_oracle(k1, b):
    index = BM25Index(k1, b).fit(DOCS)
    for query in ["cat", "the cat", "dog slept", "cat cat mat", "unknown words only"]:
        np.testing.assert_allclose(index.scores([query])[0], oracle(DOCS, query, k1, b), rtol=1e-5, atol=1e-6)
    # "cat" occurs in docs 0 and 1 (twice in 1), but doc 1 is longer: with b = 0 length does not count
    assert index.scores("cat")[0, 2] == 0


def test_graph_layers_match_numpy_and_round_trip(tmp_path):
    index = BM25Index().fit(DOCS)
    text = keras.Input((), dtype="string")
    model = keras.Model(text, BM25Scores.from_index(index)(BM25Tokenizer(index.vocabulary)(text)))
    queries = ["the CAT", "dog slept", "nothing here", "cat cat mat!"]
    np.testing.assert_allclose(model(np.array(queries)), index.scores(queries), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "bm25.keras")
    reloaded = keras.saving.load_model(tmp_path / "bm25.keras")
    np.testing.assert_allclose(reloaded(np.array(queries)), index.scores(queries), rtol=1e-5, atol=1e-6)


def test_tokenize_chunk_and_errors():
    assert tokenize("Hello, WORLD-42 café") == ["hello", "world", "42", "caf"]
    assert chunk_text("a b c d e f g h", 3, 1) == ["a b c", "c d e", "e f g", "g h"]
    assert chunk_text("short text", 5) == ["short text"]
    assert chunk_corpus(["a b c", "d"], 2, 0) == (["a b", "c", "d"], [0, 0, 1])
    with pytest.raises(ValueError, match="chunk_overlap"):
        chunk_text("a b c", 2, 2)
    with pytest.raises(ValueError, match="k1"):
        BM25Index(k1=-1)
    with pytest.raises(ValueError, match="alpha"):
        hybrid_scores([[1.0]], [[1.0]], alpha=1.5)


def test_hybrid_minmax_and_doc_max():
    dense, sparse = np.array([[0.2, 0.8, 0.5]]), np.array([[10.0, 0.0, 5.0]])
    np.testing.assert_allclose(minmax(dense), [[0.0, 1.0, 0.5]], atol=1e-6)
    np.testing.assert_allclose(hybrid_scores(dense, sparse, 0.25), [[0.75, 0.25, 0.5]], atol=1e-6)
    np.testing.assert_allclose(hybrid_scores(dense, sparse, 1.0), minmax(dense), atol=1e-6)
    np.testing.assert_allclose(doc_max([[0.1, 0.9, 0.3]], [0, 0, 1], 2), [[0.9, 0.3]])
