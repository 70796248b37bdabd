"""The decoder-only language model: temperature sampling against P = exp(z/T) / sum exp(z/T) (F3:14797),
T -> 0 = argmax, top-k; the in-graph decode loop (eager == graph == XLA); a tiny pattern learned; `.keras`."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from toolkit.models.text.generator import (
    TextGenerator, build_vocabulary, language_model_windows, sample_tokens, sampling_probabilities,
)


def test_sampling_distribution_matches_the_temperature_formula():
    z = np.array([1.0, 2.0, 0.5, 3.0])
    for temperature in (0.5, 1.0, 2.0):
        formula = np.exp(z / temperature) / np.exp(z / temperature).sum()
        np.testing.assert_allclose(sampling_probabilities(z, temperature), formula, rtol=1e-12)
        # 20,000 draws (one batch of rows sharing the logits) follow the formula
        draws = sample_tokens(tf.constant(np.tile(z, (20_000, 1)), tf.float32), temperature, 0,
                              tf.constant([7, 11])).numpy()
        frequencies = np.bincount(draws, minlength=4) / len(draws)
        np.testing.assert_allclose(frequencies, formula, atol=0.015)
    assert sampling_probabilities(z, 1e-3).argmax() == 3 and sampling_probabilities(z, 1e-3).max() > 0.999
    np.testing.assert_array_equal(sampling_probabilities(z, 0.0), [0, 0, 0, 1])
    logits = tf.constant(np.random.default_rng(0).normal(size=(64, 9)), tf.float32)
    np.testing.assert_array_equal(sample_tokens(logits, 0.0, 0, tf.constant([1, 2])), np.argmax(logits, axis=-1))
    # top-k: only the k largest logits are ever drawn, renormalised
    top2 = sampling_probabilities(z, 1.0, top_k=2)
    np.testing.assert_allclose(top2, [0, np.exp(2) / (np.exp(2) + np.exp(3)), 0, np.exp(3) / (np.exp(2) + np.exp(3))])
    draws = sample_tokens(tf.constant(np.tile(z, (5_000, 1)), tf.float32), 1.0, 2, tf.constant([3, 4])).numpy()
    assert set(np.unique(draws)) == {1, 3}
    assert abs(np.mean(draws == 3) - top2[3]) < 0.03


def test_vocabulary_and_windows():
    assert build_vocabulary("to be or not to be", "word") == ["to", "be", "or", "not"]
    assert build_vocabulary("aab", max_tokens=1) == ["a"]
    x, y = language_model_windows(np.arange(10), 4)
    assert x.shape == y.shape == (3, 4) and (y[:, :-1] == x[:, 1:]).all()
    with pytest.raises(ValueError, match="level=.bytes."):
        TextGenerator(["a"], level="bytes")


def test_generator_learns_a_pattern_decodes_in_graph_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    text = "abcd " * 200
    model = TextGenerator(build_vocabulary(text), sequence_length=8, num_layers=1, hidden_dim=16, num_heads=2,
                          dropout=0.0)
    ids = model.tokenize(tf.constant([text])).flat_values.numpy()
    x, y = language_model_windows(ids, 8, stride=3)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.1
    assert model.generate(["ab", "d"], max_tokens=7, temperature=0.0) == ["cd abcd", " abcd a"]
    # a long prompt slides the context window (keeps its last tokens) and still continues it
    assert model.generate(["abcd abcd abc"], max_tokens=9, temperature=0.0) == ["d abcd ab"]
    sampled = model.generate(["ab"] * 3, max_tokens=20, temperature=1.0, seed=5)
    assert sampled == model.generate(["ab"] * 3, max_tokens=20, temperature=1.0, seed=5)  # seeded
    assert all(len(s) == 20 for s in sampled)

    token_ids, lengths = model.pack(tf.constant(["ab", "", "abcd abcd abcd"]))
    assert lengths.numpy().tolist() == [2, 1, 7]
    eager = model.generate_ids(token_ids, lengths, 6, 0.8, 3, tf.constant([1, 2]))
    compiled = tf.function(lambda t, n: model.generate_ids(t, n, 6, 0.8, 3, tf.constant([1, 2])), jit_compile=True)
    np.testing.assert_array_equal(eager, compiled(token_ids, lengths))  # the tpu export samples the same text
    # a dense caller's out-of-range lengths (a serving warm-up's zeros) are clamped, never an error
    assert model.generate_ids(tf.zeros([2, 8], tf.int64), tf.constant([0, 99]), 3).shape == (2, 3)

    path = str(tmp_path / "generator.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, TextGenerator) and loaded.vocabulary == model.vocabulary
    np.testing.assert_allclose(loaded(x[:2]).numpy(), model(x[:2]).numpy(), atol=1e-5)
    assert loaded.generate(["ab"], max_tokens=7, temperature=0.0) == ["cd abcd"]
