"""Masked-LM domain adaptation (F3:14276-14314): continue BERT's pretraining on unlabelled in-domain text.

Mask 15% of the (non-special) tokens; of those, 80% become [MASK], 10% a random token, 10% stay as they were;
the loss is L = -sum_{i in M} log P(x_i | x_without_M) over the masked positions only. All of it is keras-hub:
`BertMaskedLMPreprocessor` (tokenise, pack, `MaskedLMMaskGenerator`), `BertMaskedLM` (the backbone plus a
masked-LM head tied to the token embedding). The masking is dynamic (drawn again every epoch, as RoBERTa).
`adapt_backbone` trains the backbone in place; `save_adapted` writes a keras-hub preset folder that
`load_bert` (and `toolkit text-classifier train --checkpoint`) reads.

    backbone, tokenizer = load_bert(checkpoint)
    adapt_backbone(backbone, tokenizer, unlabelled_texts, epochs=2)
    model = build_text_classifier(backbone, num_classes=2)    # then fine-tune as usual
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import tensorflow as tf


def masked_lm_preprocessor(tokenizer, sequence_length: int = 128, mask_selection_rate: float = 0.15,
                           mask_token_rate: float = 0.8, random_token_rate: float = 0.1,
                           mask_selection_length: int | None = None):
    """keras-hub's `BertMaskedLMPreprocessor` with the notes' rates (15%; 80% [MASK] / 10% random / 10% kept).

    `mask_selection_length` (the most masked positions a sequence keeps; default ceil(0.25 x length))
    bounds the masked-LM head's work: it scores only those positions against the vocabulary.

    Examples:
    >>> from toolkit.models.bert import tiny_bert
    >>> _, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"], hidden_dim=8)
    >>> x, y, weights = masked_lm_preprocessor(tokenizer, 8)(tf.constant(["good bad good bad good bad"]))
    >>> sorted(x), x["token_ids"].shape, y.shape   # y: the original ids at mask_positions
    (['mask_positions', 'padding_mask', 'segment_ids', 'token_ids'], TensorShape([1, 8]), TensorShape([1, 2]))
    """
    import keras_hub

    for name, value in (("mask_selection_rate", mask_selection_rate), ("mask_token_rate", mask_token_rate),
                        ("random_token_rate", random_token_rate)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]. Received: {name}={value}")
    if mask_token_rate + random_token_rate > 1.0:
        raise ValueError(f"mask_token_rate + random_token_rate must be <= 1. Received: {mask_token_rate} + "
                         f"{random_token_rate}")
    length = mask_selection_length or max(1, math.ceil(0.25 * sequence_length))
    return keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer, sequence_length=int(sequence_length), mask_selection_rate=mask_selection_rate,
        mask_selection_length=int(length), mask_token_rate=mask_token_rate, random_token_rate=random_token_rate)


def mask_statistics(original, masked, mask_positions, mask_weights, candidates, mask_token_id) -> dict:
    """Shares of the notes' masking: selected / candidate tokens, and [MASK] / random / unchanged among selected.

    Args:
        original, masked: int `[B, L]` token ids before and after masking.
        mask_positions, mask_weights: the generator's `[B, M]` positions and 0/1 weights (1 = a real selection).
        candidates: bool `[B, L]`, the tokens that could be selected (not special, not padding).
    """
    original, masked = np.asarray(original), np.asarray(masked)
    positions, weights = np.asarray(mask_positions), np.asarray(mask_weights) > 0
    rows = np.repeat(np.arange(original.shape[0])[:, None], positions.shape[1], axis=1)[weights]
    cols = positions[weights]
    before, after = original[rows, cols], masked[rows, cols]
    selected = len(cols)
    return {"selected": selected / max(int(np.sum(candidates)), 1),
            "mask": float(np.mean(after == mask_token_id)),
            "random": float(np.mean((after != mask_token_id) & (after != before))),
            "unchanged": float(np.mean(after == before))}


def masked_lm_dataset(texts, preprocessor, batch_size: int = 16, shuffle: bool = True, seed: int = 0):
    """Unlabelled texts -> batches of `(features with mask_positions, original ids, weights)`, freshly masked."""
    texts = [str(t) for t in texts if str(t).strip()]
    if not texts:
        raise ValueError("masked-LM adaptation needs at least one non-empty text")
    dataset = tf.data.Dataset.from_tensor_slices(texts)
    if shuffle:
        dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def build_masked_lm(backbone):
    """keras-hub's `BertMaskedLM` on `backbone` (shared, not copied): `[B, mask_selection_length, vocab]` logits."""
    import keras_hub

    return keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)


def adapt_backbone(backbone, tokenizer, texts, epochs: int = 1, batch_size: int = 16, learning_rate: float = 5e-5,
                   sequence_length: int = 128, warmup_fraction: float = 0.1, seed: int = 0, verbose: int = 0,
                   mask_selection_rate: float = 0.15, callbacks=None):
    """Continues masked-LM pretraining of `backbone` on `texts` (in place); returns the keras History.

    AdamW with linear warmup + decay (`finetune_optimizer`); sparse cross-entropy on the masked positions
    only (the generator's weights are 0 on the padding of `mask_positions`).

    Args:
        backbone: a keras-hub `BertBackbone` (e.g. from `load_bert`); its weights change.
        tokenizer: its `BertTokenizer`.
        texts: unlabelled in-domain strings (one document each).
        sequence_length: tokens per text (capped at the backbone's position table).

    Example (prose, not a doctest: tracing the masked-LM step takes ~25 s, so it runs in the slow test
    `tests/toolkit/models/bert/test_mlm.py::test_adaptation_lowers_the_loss_and_the_weights_load_into_a_classifier`;
    the mask statistics are checked in the default run):

        backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"], hidden_dim=8)
        history = adapt_backbone(backbone, tokenizer, ["good bad good"], epochs=1, sequence_length=8)
        sorted(history.history)   # ['accuracy', 'loss']
    """
    from toolkit.models.bert.training import finetune_optimizer

    length = min(int(sequence_length), int(backbone.max_sequence_length))
    preprocessor = masked_lm_preprocessor(tokenizer, length, mask_selection_rate=mask_selection_rate)
    dataset = masked_lm_dataset(texts, preprocessor, batch_size, shuffle=True, seed=seed)
    model = build_masked_lm(backbone)
    steps = max(1, int(dataset.cardinality().numpy()) * int(epochs))
    model.compile(optimizer=finetune_optimizer(steps, learning_rate, warmup_fraction),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model.fit(dataset, epochs=int(epochs), verbose=verbose, callbacks=callbacks)


def save_adapted(backbone, tokenizer, directory: str) -> str:
    """Writes the adapted backbone + tokenizer as a keras-hub preset folder (`load_bert(directory)` reads it)."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    backbone.save_to_preset(directory)
    tokenizer.save_to_preset(directory)
    return directory


def read_texts(path: str, encoding: str = "utf-8") -> list:
    """Unlabelled texts from a .txt file (one document a line, blank lines skipped) or a folder of .txt files."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                       if name.endswith(".txt"))
        if not files:
            raise ValueError(f"folder {path!r} holds no .txt files for masked-LM adaptation")
        texts = []
        for name in files:
            with open(name, encoding=encoding) as f:
                texts.append(f.read().strip())
        return [t for t in texts if t]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"adaptation text {path!r} does not exist (a .txt file, one document a line, or a "
                                "folder of .txt files)")
    with open(path, encoding=encoding) as f:
        texts = [line.strip() for line in f if line.strip()]
    if not texts:
        raise ValueError(f"adaptation text {path!r} is empty")
    return texts
