"""GloVe: f(x), 1/d co-occurrence counts, the loss against numpy, training lowers J, .keras round trip."""

import keras
import numpy as np
import pytest

from toolkit.models.text.glove import GloVe, _half_weighted_squares, cooccurrence, glove_loss, train_glove, weighting
from toolkit.models.text.word2vec import Corpus


def test_weighting_oracle_52():
    assert float(weighting(50.0)) == pytest.approx(0.5946, abs=1e-4)  # (1/2)^0.75
    assert weighting([0.0, 100.0, 1000.0]).tolist() == [0.0, 1.0, 1.0]
    assert float(weighting(10.0, x_max=10.0, alpha=0.5)) == 1.0 and float(weighting(2.5, 10.0, 0.5)) == 0.5


def test_cooccurrence_counts_near_words_more_and_stays_in_sentences():
    corpus = Corpus.from_sentences([["a", "b", "c", "a"], ["c", "d"]], min_count=1)
    rows, cols, values = cooccurrence(corpus, window=3)
    x = {(corpus.words[i], corpus.words[j]): v for i, j, v in zip(rows, cols, values)}
    assert x[("a", "b")] == pytest.approx(1 + 1 / 2)        # distance 1 and (b, a at the end) distance 2
    assert x[("a", "a")] == pytest.approx(2 / 3)  # first and last a, distance 3, counted both ways (as GloVe)
    assert x[("c", "d")] == 1.0 and ("a", "d") not in x      # the sentence boundary is respected
    assert all(x[(j, i)] == v for (i, j), v in x.items())    # symmetric


def test_loss_matches_numpy_on_a_tiny_matrix():
    rng = np.random.default_rng(0)
    w, wt = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    b, bt = rng.normal(size=3), rng.normal(size=3)
    rows, cols, values = np.array([0, 1, 2, 2]), np.array([1, 0, 2, 0]), np.array([3.0, 50.0, 120.0, 0.5])
    oracle = sum(weighting(x) * (w[i] @ wt[j] + b[i] + bt[j] - np.log(x)) ** 2 for i, j, x in zip(rows, cols, values))
    assert glove_loss(w, wt, b, bt, rows, cols, values) == pytest.approx(float(oracle))
    model = GloVe(3, 2)
    model((rows, cols))
    model.set_weights([w, wt, b[:, None], bt[:, None]])
    y = np.stack([np.log(values), weighting(values)], axis=1).astype("float32")
    keras_half = float(_half_weighted_squares(y, model((rows, cols))))
    assert 2 * keras_half == pytest.approx(float(oracle), rel=1e-5)


def test_training_lowers_j_and_groups_cooccurring_words(tmp_path):
    rng = np.random.default_rng(0)
    topics = [["cat", "dog", "pet", "fur"], ["car", "road", "wheel", "fuel"]]
    sentences = [list(rng.choice(topics[rng.integers(2)], 6)) for _ in range(200)]
    vectors = train_glove(sentences, dim=8, window=3, min_count=1, epochs=12, batch_size=8, seed=0)
    losses = vectors.stats["losses"]
    assert losses[-1] < 0.5 * losses[0], losses
    same = np.mean([vectors.similarity("cat", w) for w in ("dog", "pet", "fur")])
    other = np.mean([vectors.similarity("cat", w) for w in ("car", "road", "wheel")])
    assert same > other, (same, other)
    path = str(tmp_path / "glove.keras")
    vectors.model.save(path)
    reloaded = keras.saving.load_model(path)
    probe = (np.array([1, 2]), np.array([3, 4]))
    np.testing.assert_allclose(reloaded(probe), vectors.model(probe), atol=1e-6)
