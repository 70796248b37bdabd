"""Every text classifier variant trains a step and round-trips through .keras and a raw-string SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from toolkit.export import export
from toolkit.export import read_metadata as load_metadata
from toolkit.export.text import text_classification_adapter
from toolkit.layers.scalar_mix import ScalarMix
from toolkit.models.text.classifiers import build_bow_classifier, build_sequence_classifier, text_classifier
from toolkit.models.text.vectorize import build_vectorizer

TEXTS = ["a good film", "a bad film", "great acting, great plot", "awful plot", "good", "bad bad"]
LABELS = np.array([1, 0, 1, 0, 1, 0])
VARIANTS = {
    "tfidf-mlp": {},
    "rnn": {},
    "lstm-bidirectional": {"kind": "lstm", "bidirectional": True},
    "gru-scalar-mix": {"kind": "gru", "num_layers": 2, "scalar_mix": True},
    "cnn": {},
    "tcn": {},
}


def _model(name):
    if name == "tfidf-mlp":
        pre = build_vectorizer(TEXTS, mode="tfidf", ngrams=2, normalize="l2")
        return text_classifier(pre, build_bow_classifier(pre.output_shape[-1], 2, units=8))
    options = {"kind": name, **VARIANTS[name]}
    pre = build_vectorizer(TEXTS, mode="int", sequence_length=6)
    size = pre.get_layer("text_vectorization").vocabulary_size()
    return text_classifier(pre, build_sequence_classifier(vocabulary_size=size, num_classes=2, sequence_length=6,
                                                          embedding_dim=8, units=8, **options))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_trains_and_round_trips(name, tmp_path):
    model = _model(name)
    classifier, pre = model.get_layer("classifier"), model.get_layer("preprocessor")
    classifier.compile("adam", "sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in classifier.trainable_weights]
    classifier.fit(pre(tf.constant(TEXTS)), LABELS, epochs=1, batch_size=6, verbose=0)
    assert any(not np.allclose(b, w.numpy()) for b, w in zip(before, classifier.trainable_weights))
    probe = tf.constant(["good film", "unseen words only"])
    live = model(probe).numpy()
    assert live.shape == (2, 2) and np.allclose(live.sum(axis=1), 1.0, atol=1e-5)

    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded(probe).numpy(), live, atol=1e-6)

    # export() reloads the SavedModel and raises ExportError unless its raw-string and dense signatures
    # match the live model within 1e-4 on these sentences (the Predictor path is tested in the app tests).
    adapter = text_classification_adapter(reloaded, ["neg", "pos"], sample_texts=["good film", "unseen words only"])
    path = export(reloaded, str(tmp_path / "export"), adapter=adapter)
    metadata = load_metadata(path)
    assert metadata["parity_max_abs_diff"]["saved_model"]["serving_default"] <= 1e-4
    assert metadata["labels"] == ["neg", "pos"] and "text" in metadata["signatures"]["serving_default"]


def test_scalar_mix_weights_and_mask():
    mix = ScalarMix(3)
    mix.build([(None, 2)] * 3)
    mix.scalars.assign([0.0, np.log(2.0), np.log(3.0)])  # softmax -> [1/6, 2/6, 3/6]
    mix.gamma.assign(2.0)
    out = mix([np.full((1, 2), 6.0), np.full((1, 2), 12.0), np.zeros((1, 2))]).numpy()
    assert out[0].tolist() == pytest.approx([2 * (1 + 4 + 0)] * 2)
    assert mix.layer_weights().numpy().tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6])
    assert ScalarMix.from_config(mix.get_config()).num_layers == 3
    with pytest.raises(ValueError, match="expects 3 inputs"):
        ScalarMix(3)([np.ones((1, 2))] * 2)


def test_lstm_and_gru_parameter_counts():
    # SEED_CATALOGUE: LSTM 4(d_h^2 + d_h d_x + d_h), GRU 3(...) (+ d_h for Keras' reset_after second bias).
    d_h, d_x = 4, 3
    lstm = keras.layers.LSTM(d_h)
    lstm.build((None, 5, d_x))
    assert lstm.count_params() == 4 * (d_h * d_h + d_h * d_x + d_h)
    gru = keras.layers.GRU(d_h, reset_after=False)
    gru.build((None, 5, d_x))
    assert gru.count_params() == 3 * (d_h * d_h + d_h * d_x + d_h)
