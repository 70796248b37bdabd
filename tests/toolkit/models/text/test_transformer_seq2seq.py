"""The Transformer decoder pieces: the causal mask (oracle F3:13965), masked self-attention and cross-attention
behaviour, the three variants, and the Transformer translator (copy-reverse task, greedy == beam width 1,
`.keras` round trip)."""

import numpy as np
import pytest

import keras
from toolkit.models.text.transformer_seq2seq import (
    TransformerTranslator, build_transformer_decoder, build_transformer_encoder, build_transformer_seq2seq,
    causal_mask,
)


def test_causal_mask_matches_the_notes_oracle():
    inf = -np.inf
    oracle = np.array([[0, inf, inf, inf], [0, 0, inf, inf], [0, 0, 0, inf], [0, 0, 0, 0]])
    np.testing.assert_array_equal(causal_mask(4), oracle)
    # softmax(QK^T + Mask): zero weight above the diagonal, rows still sum to 1
    scores = np.random.default_rng(0).normal(size=(4, 4)) + causal_mask(4)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    assert np.all(np.triu(weights, 1) == 0) and np.allclose(weights.sum(axis=1), 1)


def test_decoder_only_is_causal_and_encoder_only_is_not():
    keras.utils.set_random_seed(0)
    lm = build_transformer_decoder(12, 6, num_layers=1, hidden_dim=8, num_heads=2, dropout=0.0, cross_attention=False)
    a, b = np.array([[2, 3, 4, 5, 6, 7]]), np.array([[2, 3, 4, 9, 10, 11]])  # differ from position 3 on
    out_a, out_b = lm(a).numpy(), lm(b).numpy()
    np.testing.assert_allclose(out_a[:, :3], out_b[:, :3], atol=1e-5)  # the past never sees the future
    assert np.abs(out_a[:, 3:] - out_b[:, 3:]).max() > 1e-3
    encoder = build_transformer_encoder(12, 6, num_layers=1, hidden_dim=8, num_heads=2, dropout=0.0)
    assert np.abs(encoder(a).numpy()[:, :3] - encoder(b).numpy()[:, :3]).max() > 1e-3  # bidirectional


def test_cross_attention_reads_the_encoder_and_ignores_source_padding():
    keras.utils.set_random_seed(0)
    model = build_transformer_seq2seq(10, 10, 5, 4, num_layers=1, hidden_dim=8, num_heads=2, dropout=0.0)
    target = np.array([[1, 2, 3]])
    base = model([np.array([[2, 3, 4, 0, 0]]), target]).numpy()
    other = model([np.array([[5, 6, 7, 0, 0]]), target]).numpy()
    assert np.abs(base - other).max() > 1e-3  # keys / values come from the source
    encoder = model.get_layer("encoder")
    decoder = model.get_layer("decoder")
    encoded = encoder(np.array([[2, 3, 4, 0, 0]])).numpy()
    noisy = encoded.copy()
    noisy[:, 3:] = 100.0  # the padded source positions' states: masked out of cross-attention
    np.testing.assert_allclose(decoder([target, encoded, np.array([[2, 3, 4, 0, 0]])]).numpy(),
                               decoder([target, noisy, np.array([[2, 3, 4, 0, 0]])]).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="hidden_dim=10, num_heads=4"):
        build_transformer_encoder(10, 5, hidden_dim=10, num_heads=4)


def _reverse_pairs(n, rng):
    words = "a b c d e".split()
    sources = [" ".join(rng.choice(words, rng.integers(2, 5))) for _ in range(n)]
    return sources, [" ".join(s.split()[::-1]) for s in sources]


def test_translator_learns_to_reverse_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    sources, targets = _reverse_pairs(240, rng)
    translator = TransformerTranslator(sources, targets, num_layers=1, hidden_dim=32, num_heads=2, dropout=0.0,
                                       max_length=4, seed=0)
    history = translator.fit(epochs=20, batch_size=24, learning_rate=5e-3)
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    test_sources, test_targets = _reverse_pairs(40, np.random.default_rng(1))
    greedy = translator.translate(test_sources)
    accuracy = np.mean([g == t for g, t in zip(greedy, test_targets)])
    assert accuracy >= 0.9, list(zip(test_sources, greedy))
    assert translator.beam_search(test_sources[:12], beam_width=1) == greedy[:12]  # width 1 is greedy search
    beam = translator.translate(test_sources[:6], beam_width=3)
    assert np.mean([b == t for b, t in zip(beam, test_targets[:6])]) >= 0.8
    with pytest.raises(ValueError, match="beam_width=0"):
        translator.beam_search(["a b"], beam_width=0)

    path = str(tmp_path / "transformer_seq2seq.keras")
    translator.model.save(path)
    loaded = keras.saving.load_model(path)
    src, tgt_in, _ = translator._arrays(test_sources[:4], test_targets[:4])
    np.testing.assert_allclose(loaded([src, tgt_in]).numpy(), translator.model([src, tgt_in]).numpy(), atol=1e-5)
    translator._bind(loaded)  # decode with the reloaded encoder / decoder parts
    assert translator.translate(test_sources[:12]) == greedy[:12]
