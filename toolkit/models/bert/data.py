"""Tokenise and pack text for BERT, with padding per batch (or length buckets) instead of max length.

Tokenising and packing is keras-hub's `BertTextClassifierPreprocessor` (WordPiece + [CLS]/[SEP] packing,
single sentences or pairs). What keras-hub lacks is dynamic padding: its preprocessor always pads to
`sequence_length` (256 for MiniLM's preset), so every step pays for 256 tokens. Here each batch is cut to
its longest sequence (rounded up to a multiple of 8 so the number of traced shapes stays small), or
examples are grouped into length buckets; `padding="max"` keeps the static shapes the tpu target needs.
"""

from __future__ import annotations

import keras_hub
import numpy as np
import tensorflow as tf

PADDINGS = ("batch", "bucket", "max")
FEATURES = ("token_ids", "segment_ids", "padding_mask")


def make_preprocessor(tokenizer, sequence_length: int = 128, backbone=None):
    """keras-hub's BERT packer (`[CLS] a [SEP] (b [SEP])`, padded to `sequence_length`).

    `sequence_length` is capped at the backbone's position table (`backbone.max_sequence_length`).
    """
    if backbone is not None:
        sequence_length = min(int(sequence_length), int(backbone.max_sequence_length))
    return keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=int(sequence_length))


def as_segments(texts):
    """One text column (list of str) or a pair `(first, second)` -> tuple of 1-D tf.string tensors."""
    if isinstance(texts, tuple) and len(texts) == 2 and not isinstance(texts[0], str):
        first, second = (tf.constant(_strings(t)) for t in texts)
        if first.shape[0] != second.shape[0]:
            raise ValueError(f"sentence pairs need as many first as second sentences ({first.shape[0]} vs "
                             f"{second.shape[0]})")
        return first, second
    return (tf.constant(_strings(texts)),)


def _strings(texts):
    if isinstance(texts, str):
        texts = [texts]
    values = [t.decode("utf-8") if isinstance(t, bytes) else t for t in texts]
    bad = [i for i, t in enumerate(values) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be strings; item {bad[0]} is {type(values[bad[0]]).__name__}")
    return values


def pack(preprocessor, segments):
    """Raw string tensor(s) -> int32 `token_ids`, `segment_ids`, `padding_mask` padded to sequence_length."""
    # keras-hub's tokenizer + MultiSegmentPacker, called directly: the preprocessor's own __call__ reads a
    # tuple of segments as (x, y) inside tf.function, which breaks sentence pairs.
    if preprocessor.packer is None:
        preprocessor.build(None)
    segments = segments if isinstance(segments, (tuple, list)) else (segments,)
    token_ids, segment_ids = preprocessor.packer(tuple(preprocessor.tokenizer(s) for s in segments))
    token_ids = tf.cast(token_ids, tf.int32)
    padding_mask = tf.cast(token_ids != preprocessor.tokenizer.pad_token_id, tf.int32)
    return {"token_ids": token_ids, "segment_ids": tf.cast(segment_ids, tf.int32), "padding_mask": padding_mask}


def trim_to_longest(features: dict, multiple: int = 8) -> dict:
    """Cuts packed features to the batch's longest sequence, rounded up to `multiple` (dynamic padding)."""
    full = tf.shape(features["token_ids"])[1]
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(features["padding_mask"], tf.int32), axis=1))
    length = tf.minimum(full, ((longest + multiple - 1) // multiple) * multiple)
    return {name: value[:, :length] for name, value in features.items()}


def text_dataset(texts, labels=None, preprocessor=None, batch_size: int = 16, shuffle: bool = False,
                 seed: int = 0, padding: str = "batch", pad_to_multiple_of: int = 8):
    """Texts (+ labels) -> batched tf.data of `(features, labels)` ready for `fit`/`predict`.

    Args:
        texts: list of strings, or `(first_sentences, second_sentences)` for sentence pairs.
        labels: int class ids (or per-token tag arrays padded to sequence_length), or None.
        preprocessor: from `make_preprocessor`.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (keras-hub's `Task.fit(list)` does not shuffle: do it here).
        seed: shuffle seed.
        padding: `"batch"` (pad to the batch's longest), `"bucket"` (group similar lengths, then pad per
            batch) or `"max"` (always `sequence_length`: static shapes, e.g. for TPU).
        pad_to_multiple_of: round dynamic lengths up to this multiple (fewer traced shapes).

    Examples:
    >>> from toolkit.models.bert import tiny_bert
    >>> _, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"], hidden_dim=8)
    >>> preprocessor = make_preprocessor(tokenizer, sequence_length=32)
    >>> ds = text_dataset(["good", "bad film"], [1, 0], preprocessor, batch_size=2)
    >>> features, labels = next(iter(ds))
    >>> features["token_ids"].shape, labels.numpy().tolist()   # padded to 8 (longest: 4 tokens), not 32
    (TensorShape([2, 8]), [1, 0])
    >>> features["padding_mask"].numpy().sum(axis=1).tolist()
    [3, 4]
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}. Received: padding={padding!r}")
    segments = as_segments(texts)
    n = int(segments[0].shape[0])
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != n:
            raise ValueError(f"got {n} texts but {len(labels)} labels")
    elements = segments if labels is None else (segments, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)

    def packed(batch):
        if labels is None:
            return pack(preprocessor, batch)
        segs, y = batch
        return pack(preprocessor, segs), y

    if padding == "bucket":
        dataset = _bucketed(dataset, preprocessor, batch_size, labels is not None, pad_to_multiple_of)
    else:
        dataset = dataset.batch(batch_size).map(lambda *b: packed(b),
                                                num_parallel_calls=tf.data.AUTOTUNE)
        if padding == "batch":
            trim = (lambda f: trim_to_longest(f, pad_to_multiple_of)) if labels is None else (
                lambda f, y: (trim_to_longest(f, pad_to_multiple_of), _trim_labels(y, f, pad_to_multiple_of)))
            dataset = dataset.map(trim)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _trim_labels(y, features, multiple):
    if y.shape.rank == 2:  # per-token labels follow the token dimension
        full = tf.shape(features["token_ids"])[1]
        longest = tf.reduce_max(tf.reduce_sum(tf.cast(features["padding_mask"], tf.int32), axis=1))
        return y[:, : tf.minimum(full, ((longest + multiple - 1) // multiple) * multiple)]
    return y


def _bucketed(dataset, preprocessor, batch_size, has_labels, multiple):
    """Length buckets: examples of similar length share a batch (less padding than random batches)."""
    full = preprocessor.sequence_length

    def one(*element):
        segs, y = (element[0], element[1]) if has_labels else (element, None)
        features = pack(preprocessor, tuple(tf.expand_dims(s, 0) for s in segs))
        length = tf.reduce_sum(features["padding_mask"])
        features = {k: v[0, :length] for k, v in features.items()}
        return (features, y) if has_labels else features

    dataset = dataset.map(one, num_parallel_calls=tf.data.AUTOTUNE)
    boundaries = [b for b in range(multiple * 2, full, multiple * 2)]
    padded = (tf.cast(preprocessor.tokenizer.pad_token_id, tf.int32)
              if getattr(preprocessor.tokenizer, "pad_token_id", None) is not None else 0)
    padding_values = {"token_ids": padded, "segment_ids": 0, "padding_mask": 0}
    return dataset.bucket_by_sequence_length(
        lambda *e: tf.shape(e[0]["token_ids"] if has_labels else e[0]["token_ids"])[0],
        bucket_boundaries=boundaries, bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(padding_values, None) if has_labels else padding_values, pad_to_bucket_boundary=False,
    )


def sequence_lengths(texts, preprocessor) -> np.ndarray:
    """Packed length (special tokens included) of every text or pair: for statistics and FLOP counts."""
    segments = as_segments(texts)
    features = pack(preprocessor, segments)
    return features["padding_mask"].numpy().sum(axis=1)
