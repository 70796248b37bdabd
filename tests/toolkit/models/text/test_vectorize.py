"""Vectorisers and similarity against SEED_CATALOGUE oracles 1-4 and scikit-learn."""

import math

import numpy as np
import pytest
import tensorflow as tf

from toolkit.models.text.vectorize import (
    TfIdf,
    build_vectorizer,
    cosine_similarity,
    idf_weights,
    nearest_neighbors,
)


def _table(vectorizer, texts):
    vocabulary = [str(w) for w in vectorizer.get_layer("text_vectorization").get_vocabulary()]
    values = vectorizer(tf.constant(texts)).numpy()
    return [dict(zip(vocabulary, row)) for row in values]


def test_tfidf_this_example_oracle_1():
    # Doc1: 8 words (this 1, is 1, a 2, sample 4); Doc2: 5 words (this 1, is 2, another 1, example 1).
    docs = ["this is a a sample sample sample sample", "this is is another example"]
    counts = _table(build_vectorizer(docs, mode="count", max_tokens=None), docs)
    assert counts[0]["this"] == 1 and sum(counts[0].values()) == 8 and sum(counts[1].values()) == 5
    tfidf = _table(build_vectorizer(docs, mode="tfidf", max_tokens=None, idf="log"), docs)
    assert tfidf[0]["this"] == 0.0 and tfidf[1]["this"] == 0.0          # IDF = log(2/2) = 0
    assert tfidf[0]["sample"] == pytest.approx(4 / 8 * math.log(2), abs=1e-6)
    assert tfidf[1]["another"] == pytest.approx(1 / 5 * math.log(2), abs=1e-6)
    assert tfidf[1]["is"] == 0.0
    # Keras' built-in smoothed form gives "this" a non-zero weight: the reason TfIdf exists.
    keras_form = _table(build_vectorizer(docs, mode="keras_tfidf", max_tokens=None), docs)
    assert keras_form[0]["this"] == pytest.approx(math.log(1 + 2 / 3), abs=1e-6)


def test_idf_oracle_2_and_forms():
    assert idf_weights([10000, 100, 5], 10000).tolist() == pytest.approx([0.0, math.log(100), math.log(2000)])
    assert round(float(idf_weights([100], 10000)[0]), 1) == 4.6 and round(float(idf_weights([5], 10000)[0]), 1) == 7.6
    assert idf_weights([1], 3, "smooth")[0] == pytest.approx(math.log(4 / 2) + 1)
    with pytest.raises(ValueError, match="idf form"):
        idf_weights([1], 3, "bogus")


def test_smoothed_l2_tfidf_matches_sklearn():
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = ["the cat sat on the mat", "the dog chased the cat", "a bird sang", "the mat was red red red"]
    ours = build_vectorizer(docs, mode="tfidf", max_tokens=None, idf="smooth", term_frequency="raw",
                            normalize="l2")
    vocabulary = [str(w) for w in ours.get_layer("text_vectorization").get_vocabulary()]
    sk = TfidfVectorizer(vocabulary=vocabulary[1:], token_pattern=r"\S+").fit(docs)
    expected = sk.transform(docs).toarray()
    got = ours(tf.constant(docs)).numpy()[:, 1:]  # column 0 is the OOV token (never seen here)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_bow_dot_product_oracle_3_and_binary_and_char_ngrams():
    vocabulary_order = ["cat", "dog", "sat", "the", "on", "mat", "chased"]
    d1, d2 = "the cat sat on the mat", "the dog chased the cat"
    vectorizer = build_vectorizer([d1, d2], mode="count", max_tokens=None)
    rows = _table(vectorizer, [d1, d2])
    v1 = np.array([rows[0][w] for w in vocabulary_order])
    v2 = np.array([rows[1][w] for w in vocabulary_order])
    assert v1.tolist() == [1, 0, 1, 2, 1, 1, 0] and v2.tolist() == [1, 1, 0, 2, 0, 0, 1]
    assert int(v1 @ v2) == 5
    binary = _table(build_vectorizer([d1, d2], mode="binary", max_tokens=None), [d1])[0]
    assert binary["the"] == 1
    chars = build_vectorizer(["abc", "abd"], mode="count", split="character", ngrams=2, max_tokens=None)
    table = _table(chars, ["abab"])[0]
    assert table["a b"] == 2 and table["a"] == 2 and table["b"] == 2  # character uni- and bigrams
    assert table["[UNK]"] == 1  # "b a" never occurred in training: out of vocabulary
    ids = build_vectorizer([d1, d2], mode="int", sequence_length=8)(tf.constant([d1])).numpy()
    assert ids.shape == (1, 8) and ids[0, 6:].tolist() == [0, 0]  # padding is index 0


def test_cosine_oracle_4_and_neighbours():
    words = np.array([[1, 1], [2, 3], [6, 1]])  # digital, information, apricot
    sims = cosine_similarity(words)
    assert sims[0, 1] == pytest.approx(0.981, abs=1e-3)
    assert sims[0, 2] == pytest.approx(0.814, abs=1e-3)
    assert sims[1, 2] == pytest.approx(0.684, abs=1e-3)
    assert cosine_similarity(np.eye(3))[0, 1] == 0.0  # one-hot vectors are orthogonal
    idx, top = nearest_neighbors(words[:1], words, k=2, exclude_self=True)
    assert idx.tolist() == [[1, 2]] and top[0, 0] == pytest.approx(0.981, abs=1e-3)


def test_tfidf_layer_config_roundtrip():
    layer = TfIdf(3, tf="log", normalize="l2")
    clone = TfIdf.from_config(layer.get_config())
    assert (clone.vocabulary_size, clone.tf, clone.normalize) == (3, "log", "l2")
    with pytest.raises(ValueError, match="tf must be"):
        TfIdf(3, tf="bogus")
