import pytest

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a cat dog sat on mat good bad great awful film movie plot was is and very not fun dull ."
).split()


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def tiny(vocab_file):
    import keras

    from toolkit.models import bert

    keras.utils.set_random_seed(0)
    backbone, tokenizer = bert.tiny_bert(vocab_file, hidden_dim=16, num_heads=2, max_sequence_length=32)
    return backbone, tokenizer, bert.make_preprocessor(tokenizer, 32, backbone)


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory, tiny):
    """A native keras-hub preset folder of the tiny BERT (what save_to_preset writes)."""
    backbone, tokenizer, _ = tiny
    path = str(tmp_path_factory.mktemp("preset") / "tiny_bert")
    backbone.save_to_preset(path)
    tokenizer.save_to_preset(path)
    return path
