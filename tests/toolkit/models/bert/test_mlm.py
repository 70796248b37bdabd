"""Masked-LM domain adaptation: the 15% / 80-10-10 masking, loss going down, adapted weights in a classifier."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.models import bert
from toolkit.models.bert import mlm

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(60)]


def test_mask_statistics_on_a_large_random_batch():
    keras.utils.set_random_seed(0)
    _, tokenizer = bert.tiny_bert(VOCAB, hidden_dim=8)
    rng = np.random.default_rng(0)
    length, rows = 64, 1500
    lengths = rng.integers(20, length - 2, rows)  # ragged documents: padding is never masked
    texts = [" ".join(f"w{i}" for i in rng.integers(0, 60, n)) for n in lengths]
    preprocessor = mlm.masked_lm_preprocessor(tokenizer, length, mask_selection_length=length)
    x, y, weights = preprocessor(tf.constant(texts))
    packed = bert.pack(bert.make_preprocessor(tokenizer, length), tf.constant(texts))
    original = packed["token_ids"].numpy()
    candidates = original >= 5  # not [PAD] / [UNK] / [CLS] / [SEP] / [MASK]
    stats = mlm.mask_statistics(original, x["token_ids"].numpy(), x["mask_positions"].numpy(), weights.numpy(),
                                candidates, tokenizer.mask_token_id)
    selected = int(weights.numpy().sum())
    assert selected > 8_000  # 1,500 documents of ~40 tokens
    assert stats["selected"] == pytest.approx(0.15, abs=0.005)  # 15% of the real tokens
    assert stats["mask"] == pytest.approx(0.80, abs=0.01)
    assert stats["random"] == pytest.approx(0.10 * (1 - 1 / len(VOCAB)), abs=0.01)  # a random draw can hit itself
    assert stats["unchanged"] == pytest.approx(0.10, abs=0.01)
    np.testing.assert_array_equal(  # the labels are the original ids at the masked positions
        np.take_along_axis(original, x["mask_positions"].numpy(), 1)[weights.numpy() > 0], y.numpy()[weights.numpy() > 0])
    positions = x["mask_positions"].numpy()[weights.numpy() > 0]
    rows_ = np.repeat(np.arange(rows)[:, None], length, 1)[weights.numpy() > 0]
    assert candidates[rows_, positions].all()  # never [CLS], [SEP] or padding
    with pytest.raises(ValueError, match="mask_token_rate"):
        mlm.masked_lm_preprocessor(tokenizer, 8, mask_token_rate=0.95, random_token_rate=0.1)


@pytest.mark.slow  # ~85 s wall at load average 10 on the shared 2-core machine (tracing the masked-LM step)
def test_adaptation_lowers_the_loss_and_the_weights_load_into_a_classifier(tmp_path):
    keras.utils.set_random_seed(0)
    words = VOCAB[5:25]
    corpus = [" ".join(words[(i + j) % 20] for j in range(10)) for i in range(20)]  # a repetitive tiny domain
    backbone, tokenizer = bert.tiny_bert(VOCAB, hidden_dim=16, num_heads=2, max_sequence_length=16, dropout=0.0)
    before = [w.copy() for w in backbone.get_weights()]
    history = mlm.adapt_backbone(backbone, tokenizer, corpus, epochs=10, batch_size=10, learning_rate=2e-2,
                                 sequence_length=16, warmup_fraction=0.0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0] and losses[-1] < np.log(len(VOCAB))  # below chance, ln 65
    assert any(not np.allclose(a, b) for a, b in zip(before, backbone.get_weights()))
    path = mlm.save_adapted(backbone, tokenizer, str(tmp_path / "adapted"))
    loaded, _ = bert.load_bert(path)
    classifier = bert.build_text_classifier(loaded, 2)
    inner = bert.find_backbone(classifier)
    assert all(np.array_equal(a, b) for a, b in zip(inner.get_weights(), backbone.get_weights()))


def test_read_texts(tmp_path):
    (tmp_path / "a.txt").write_text("first doc\n\nsecond doc\n")
    assert mlm.read_texts(str(tmp_path / "a.txt")) == ["first doc", "second doc"]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.txt").write_text("one\nfile\n")
    assert mlm.read_texts(str(tmp_path / "docs")) == ["one\nfile"]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        mlm.read_texts(str(tmp_path / "missing.txt"))
