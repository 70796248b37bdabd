"""Word2vec: noise distribution, pair generation, training on a synthetic corpus, analogies, I/O."""

import collections

import numpy as np
import pytest

from toolkit.models.text.word2vec import (
    Corpus,
    WordVectors,
    cbow_examples,
    embedding_matrix,
    keep_probabilities,
    load_word_vectors,
    noise_distribution,
    pretrained_embedding,
    skipgram_pairs,
    train_word2vec,
    window_row_gradients,
)


def test_noise_distribution_oracle_40():
    p = noise_distribution([0.99, 0.01])
    assert p.tolist() == pytest.approx([0.969, 0.031], abs=5e-4)  # .99^.75 = .9925, .01^.75 = .0316
    assert 0.99 ** 0.75 / 0.01 ** 0.75 == pytest.approx(31.4, abs=0.05)
    counts = np.array([50, 30, 15, 5])
    assert noise_distribution(counts) == pytest.approx(counts ** 0.75 / (counts ** 0.75).sum())


def test_sampled_negatives_follow_unigram_power():
    sentences = [["a"] * 60 + ["b"] * 30 + ["c"] * 10]
    vectors = train_word2vec(sentences, dim=4, min_count=1, epochs=1, sample=0, table_size=100_000, batch_size=64)
    model = vectors.model
    table = model.noise_table.numpy()
    counts = Corpus.from_sentences(sentences, min_count=1).counts
    empirical = np.bincount(table, minlength=4)[1:] / len(table)
    np.testing.assert_allclose(empirical, noise_distribution(counts[1:]), atol=1e-4)
    # Draws made inside the graph match the distribution too.
    import tensorflow as tf

    logits = model((tf.constant([1] * 20000), tf.constant([1] * 20000)))
    assert logits.shape == (20000, 6)


def test_pairs_respect_window_and_sentences():
    corpus = Corpus.from_sentences([["a", "b", "c", "d"], ["e", "f"]], min_count=1)
    centres, contexts = skipgram_pairs(corpus, window=1, sample=0)
    words = corpus.words
    pairs = {(words[c], words[o]) for c, o in zip(centres, contexts)}
    assert pairs == {("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("c", "d"), ("d", "c"), ("e", "f"), ("f", "e")}
    ctx, target = cbow_examples(corpus, window=1, sample=0)
    assert ctx.shape == (6, 2) and all(set(row) - {0} for row in ctx)
    assert keep_probabilities([1000, 1], sample=1e-3)[1] == 1.0
    assert keep_probabilities([1000, 1], sample=1e-3)[0] < 0.1


def test_window_row_gradients_match_a_loop_over_centres_and_offsets():
    # Skip-gram context-row gradients: centre i's term for offset o lands on row i + window + o of the chunk's window.
    import tensorflow as tf

    rng = np.random.default_rng(0)
    window, n, d = 5, 7, 3
    offsets = [o for k in range(1, window + 1) for o in (-k, k)]
    g = rng.normal(size=(n, len(offsets))).astype("float32")
    h = rng.normal(size=(n, d)).astype("float32")
    expected = np.zeros((n + 2 * window, d), "float32")
    for i in range(n):
        for j, o in enumerate(offsets):
            expected[i + window + o] += g[i, j] * h[i]
    np.testing.assert_allclose(window_row_gradients(g, h, offsets, window).numpy(), expected, atol=1e-5)
    compiled = tf.function(lambda g, h: window_row_gradients(g, h, offsets, window), jit_compile=True)
    np.testing.assert_allclose(compiled(g, h).numpy(), expected, atol=1e-5)


def _synthetic(rng, n=400):
    # Two topics whose words co-occur only within their topic; "x*" words are shared noise.
    topics = [["cat", "dog", "pet", "fur"], ["car", "road", "wheel", "fuel"]]
    sentences = []
    for _ in range(n):
        topic = topics[rng.integers(2)]
        sentences.append(list(rng.choice(topic, 6)) + list(rng.choice(["x1", "x2", "x3"], 1)))
    return sentences


@pytest.mark.parametrize("cbow", [False, True])
def test_cooccurring_words_are_nearer(cbow):
    vectors = train_word2vec(_synthetic(np.random.default_rng(0)), dim=16, window=3, min_count=1, epochs=4,
                             sample=0, cbow=cbow, batch_size=128, seed=3)
    same = np.mean([vectors.similarity("cat", w) for w in ("dog", "pet", "fur")])
    other = np.mean([vectors.similarity("cat", w) for w in ("car", "road", "wheel")])
    assert same > other + 0.2, (same, other)
    assert vectors.most_similar("car", k=3)[0][0] in {"road", "wheel", "fuel"}
    assert vectors.stats["words_per_second"] > 0


@pytest.mark.parametrize("negatives", [{"shared_negatives": None, "negative_pool": None},   # K private per pair
                                       {"shared_negatives": 10, "negative_pool": None}])  # 10 per centre word
def test_other_negative_sampling_paths_learn_too(negatives):
    vectors = train_word2vec(_synthetic(np.random.default_rng(1), n=200), dim=8, window=2, min_count=1, epochs=3,
                             sample=0, batch_size=64, seed=2, **negatives)
    same = np.mean([vectors.similarity("car", w) for w in ("road", "wheel", "fuel")])
    other = np.mean([vectors.similarity("car", w) for w in ("cat", "dog", "pet")])
    assert same > other + 0.2, (same, other)
    assert vectors.stats["losses"][-1] < vectors.stats["losses"][0]


def test_analogy_and_accuracy_on_questions_file(tmp_path):
    words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy"]
    base = {"king": [1, 1, 0], "queen": [1, -1, 0], "man": [0, 1, 0.1], "woman": [0, -1, 0.1],
            "paris": [0, 0, 1], "france": [0.5, 0, 1], "rome": [0, 0.3, 1], "italy": [0.5, 0.3, 1]}
    vectors = WordVectors(words, np.array([base[w] for w in words], dtype="float32"))
    assert vectors.analogy("man", "king", "woman")[0][0] == "queen"
    questions = tmp_path / "q.txt"
    questions.write_text(": royal\nman king woman queen\nking man queen woman\nMan King Unknown Queen\n"
                         ": capital\nfrance paris italy rome\n")
    result = vectors.evaluate_analogies(str(questions))
    assert result["questions"] == 3  # the question with an unknown word is skipped
    assert 0 <= result["correct"] <= 3 and result["accuracy"] == result["correct"] / 3


def test_projector_tsv_and_pretrained_vectors(tmp_path):
    vectors = WordVectors(["a", "b"], np.array([[1.0, 2.0], [3.0, 4.0]]))
    vec_path, meta_path = vectors.save_projector_tsv(str(tmp_path / "proj"))
    assert open(meta_path).read() == "a\nb\n"
    assert np.loadtxt(vec_path, delimiter="\t").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2 0.3\ncat 1 2 3\n")
    w2v = tmp_path / "w2v.txt"
    w2v.write_text("2 3\nthe 0.1 0.2 0.3\ncat 1 2 3\n")
    for path in (glove, w2v):
        loaded = load_word_vectors(str(path))
        assert loaded.words == ["the", "cat"] and loaded["cat"].tolist() == [1, 2, 3]
    table = embedding_matrix(load_word_vectors(str(glove)), ["", "[UNK]", "cat", "dog"])
    assert table.shape == (4, 3) and table[0].tolist() == [0, 0, 0] and table[2].tolist() == [1, 2, 3]
    layer = pretrained_embedding(str(glove), ["", "[UNK]", "cat"])
    assert layer(np.array([[2]])).numpy()[0, 0].tolist() == [1, 2, 3] and not layer.trainable
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2\nb 1\n")
    with pytest.raises(ValueError, match="line 2: 1 values, expected 2"):
        load_word_vectors(str(bad))


def test_gensim_glove_file_loads():
    from toolkit.data.text_samples import gensim_datapath

    vectors = load_word_vectors(gensim_datapath("test_glove.txt"))
    assert len(vectors.words) == 76 and vectors.vectors.shape == (76, 50)
    assert vectors["the"][:2].tolist() == pytest.approx([0.418, 0.24968])
    assert collections.Counter(vectors.words).most_common(1)[0][1] == 1


def test_a_corpus_with_nothing_to_learn_is_refused_with_why():
    with pytest.raises(ValueError, match=r"no training pairs left from 6 tokens .*min_count=1.*sample=0.001.*sample=0"):
        train_word2vec([["alone"], ["again"]] * 3, dim=4, min_count=1, epochs=1, table_size=100)


def test_noise_distribution_survives_a_keras_file_round_trip(tmp_path):
    import keras

    from toolkit.saving import load_model

    vectors = train_word2vec([["the", "cat", "sat"], ["the", "dog", "sat"]] * 10, dim=4, window=2, min_count=1,
                             epochs=1, sample=0, table_size=1000, batch_size=16)
    vectors.model.save(tmp_path / "w2v.keras")
    reloaded = load_model(str(tmp_path / "w2v.keras"))
    assert isinstance(reloaded, keras.Model)
    np.testing.assert_array_equal(reloaded.noise_table.numpy(), vectors.model.noise_table.numpy())
