"""Bahdanau attention (oracle 36), BLEU (oracle 5), and the attention seq2seq translator."""

import numpy as np
import pytest

import keras
from toolkit.layers.bahdanau import BahdanauAttention
from toolkit.metrics.bleu import corpus_bleu
from toolkit.models.text.seq2seq import Translator


def test_bahdanau_weights_oracle_36_and_masking(tmp_path):
    # e = v^T tanh(W_s s + W_h h): with W_s = 0, W_h = 1, v = 3 and h_t = artanh(e_t / 3), e = [1.2, 2.8, 0.5].
    scores = np.array([1.2, 2.8, 0.5])
    values = np.arctanh(scores / 3).reshape(1, 3, 1).astype("float32")
    layer = BahdanauAttention(1)
    layer.build((None, 2), (None, 3, 1))
    layer.query_dense.kernel.assign(np.zeros((2, 1)))
    layer.key_dense.kernel.assign(np.ones((1, 1)))
    layer.score_dense.kernel.assign(np.full((1, 1), 3.0))
    context, weights = layer(np.ones((1, 2), "float32"), values)
    assert weights.numpy()[0].tolist() == pytest.approx([0.155, 0.768, 0.077], abs=1e-3)
    assert float(context[0, 0]) == pytest.approx(float(weights.numpy()[0] @ values[0, :, 0]), abs=1e-6)
    _, masked = layer(np.ones((1, 2), "float32"), values, values_mask=np.array([[True, False, True]]))
    assert masked.numpy()[0, 1] == 0.0 and masked.numpy()[0].sum() == pytest.approx(1.0)
    _, per_step = layer(np.ones((1, 4, 2), "float32"), values)
    assert per_step.shape == (1, 4, 3)
    assert BahdanauAttention.from_config(layer.get_config()).units == 1


def test_bleu_oracle_5():
    # p1 = 5/5, p2 = 3/4, BP = exp(1 - 6/5): BLEU(N=2) = 0.819 * sqrt(0.75) = 0.7090.
    assert corpus_bleu(["the cat sat on the mat"], ["the cat on the mat"], max_order=2) == pytest.approx(0.7090, abs=1e-4)
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(1.0)
    assert corpus_bleu(["the cat sat on the mat"], ["dogs run"]) == 0.0
    # Corpus level: clipped matches and totals are summed over sentences before dividing.
    two = corpus_bleu(["the cat sat on the mat", "a dog"], ["the cat on the mat", "a dog"], max_order=2)
    p1, p2, bp = 7 / 7, 4 / 5, np.exp(1 - 8 / 7)
    assert two == pytest.approx(bp * np.sqrt(p1 * p2), abs=1e-4)
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        corpus_bleu(["a", "b"], ["a"])


def test_translator_learns_a_tiny_lexicon():
    english = ["one", "two", "three", "four", "one two", "two three", "three four", "four one"]
    french = ["un", "deux", "trois", "quatre", "un deux", "deux trois", "trois quatre", "quatre un"]
    # 4 copies of the lexicon: 4 steps per epoch, so fewer (slow-to-start) epochs.
    translator = Translator(english * 4, french * 4, units=32, embedding_dim=16, max_length=4, seed=0)
    history = translator.fit(epochs=10, batch_size=8, learning_rate=2e-2)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    greedy = translator.translate(english)
    assert corpus_bleu(french, greedy, max_order=1) > 0.8
    beam = translator.translate(english[:3], beam_width=3)
    assert all(isinstance(b, str) for b in beam) and len(beam) == 3
    assert translator.translate(english[:2], beam_width=1) == greedy[:2]
    assert translator.beam_search(english, beam_width=1) == greedy  # the shared beam search at width 1 is greedy
    assert translator.normalize(["Saisissez un UUID valide."]) == ["saisissez un uuid valide"]
    assert isinstance(translator.model, keras.Model) and translator.model.get_layer("attention").units == 32
