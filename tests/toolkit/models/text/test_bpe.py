"""BPE: the notes' merge oracle and its tie, learned-order inference, keras-hub graph/SavedModel parity, markings."""

import io

import numpy as np
import pytest

from toolkit.models.text.bpe import END, byte_to_unicode, learn_bpe, pretokenize

NOTES = "low low low lower lower lowest"
# The notes' "lowering -> [low, er, ing</w>]" needs i, n, g and "er" in training: their corpus has neither, so we
# add words with "er" and "ing" (the notes' own "lower -> [low, er</w>]" then holds too).
EXTENDED = NOTES + " newer newer wider wider sing sing ring ring king"


def test_notes_oracle_merges_counts_and_the_tie():
    bpe = learn_bpe(NOTES, num_merges=4)
    assert bpe.merges[:3] == [("l", "o"), ("lo", "w"), ("low", END)]
    assert bpe.counts[:3] == [6, 6, 3]
    # (low, e) had count 3 too: the tie went to the pair seen first ("low" precedes "lower") ...
    assert bpe.merges[3] == ("low", "e") and bpe.counts[3] == 3
    # ... so with "lowest" first in the corpus, the same tie goes the other way.
    assert learn_bpe("lowest lower lower low low low", 3).merges[2] == ("low", "e")
    assert bpe.tokenize("low lowest") == ["low</w>", "lowe", "s", "t", END]


def test_lowering_with_merges_applied_in_learned_order():
    bpe = learn_bpe(EXTENDED, num_merges=8)
    assert bpe.tokenize("lowering") == ["low", "er", "ing</w>"]
    assert bpe.tokenize("lower") == ["low", "er</w>"] and bpe.tokenize("low") == ["low</w>"]
    assert ("er", END) in bpe.merges and ("ing", END) in bpe.merges
    assert bpe.encode("lowering") == [bpe.vocabulary[p] for p in ("low", "er", "ing</w>")]
    assert learn_bpe("aaa", 10).merges == [("a", "a"), ("aa", "a"), ("aaa", END)]  # stops: nothing left
    with pytest.raises(ValueError, match="not in the BPE vocabulary"):
        bpe.encode("zebra")
    with pytest.raises(ValueError, match="no words"):
        learn_bpe("   ", 3)


def test_byte_level_words_match_keras_hub():
    from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

    bs, cs = bytes_to_unicode()
    assert byte_to_unicode() == {b[0] if isinstance(b, bytes) else b: c for b, c in zip(bs, cs)}
    assert pretokenize("café!") == ["caf" + byte_to_unicode()[0xC3] + byte_to_unicode()[0xA9], "!"]


def _module(bpe):
    import tensorflow as tf

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = bpe.to_keras_hub(sequence_length=12)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, text):
            return self.tokenizer(text)

    return Module()


def _assert_padded(ids, expected):
    for row, want in zip(ids, expected):
        assert row[:len(want)].tolist() == want and not row[len(want):].any()  # padded with 0


TEXTS = ["lowering lower", "king sing newest", "low"]


def test_keras_hub_tokenizer_in_a_graph_gives_the_python_ids():
    import tensorflow as tf

    bpe = learn_bpe(EXTENDED, num_merges=12)
    expected = [bpe.encode(t) for t in TEXTS]
    tokenizer = bpe.to_keras_hub()
    assert [[int(i) for i in row] for row in tokenizer(tf.constant(TEXTS))] == expected  # eager (TF path)
    _assert_padded(_module(bpe)(tf.constant(TEXTS)).numpy(), expected)                   # tf.function


@pytest.mark.slow  # ~15 s idle, ~55 s on the loaded 2-core machine: tracing keras-hub's merge loop for export
def test_keras_hub_tokenizer_survives_a_savedmodel_round_trip(tmp_path):
    import tensorflow as tf

    bpe = learn_bpe(EXTENDED, num_merges=12)
    tf.saved_model.save(_module(bpe), str(tmp_path / "bpe"))
    reloaded = tf.saved_model.load(str(tmp_path / "bpe"))
    _assert_padded(reloaded(tf.constant(TEXTS)).numpy(), [bpe.encode(t) for t in TEXTS])


def test_keras_hub_tokenizer_config_round_trip():
    import keras

    tokenizer = learn_bpe(EXTENDED, num_merges=8).to_keras_hub()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tokenizer))
    assert type(clone).__name__ == "EndOfWordBytePairTokenizer"
    clone.set_vocabulary_and_merges(tokenizer.vocabulary, tokenizer.merges)
    assert clone("lowering").numpy().tolist() == tokenizer("lowering").numpy().tolist()


def _strings(pieces):
    return [p.decode() if isinstance(p, bytes) else str(p) for p in np.asarray(pieces).tolist()]


def test_three_markings_of_one_word():
    import keras_hub
    import sentencepiece as spm

    bpe = learn_bpe(NOTES + " newest newest", num_merges=12)
    assert bpe.tokenize("lowest")[-1].endswith(END)                       # BPE: the end is marked
    wordpiece = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=["[UNK]", "low", "##est", "##er", "new"],
                                                        dtype="string")
    assert _strings(wordpiece("lowest")) == ["low", "##est"]   # WordPiece: continuations
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter([NOTES + " newest newest"] * 20), model_writer=model,
                                   vocab_size=16, hard_vocab_limit=False, model_type="bpe", minloglevel=2)
    sentencepiece = keras_hub.tokenizers.SentencePieceTokenizer(proto=model.getvalue(), dtype="string")
    pieces = _strings(sentencepiece("lowest"))
    assert pieces[0].startswith("\u2581") and not any(p.startswith("\u2581") for p in pieces[1:])  # start marked
    assert "".join(pieces).replace("\u2581", "") == "lowest" and np.all([END not in p for p in pieces])
