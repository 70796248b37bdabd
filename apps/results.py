"""What apps make of model outputs: histories, held-out counts, input names, JSON-able values."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf


FEW_EXAMPLES = 20  # held-out metrics on fewer examples than this carry a warning


def held_out_size(dataset, limit: int = FEW_EXAMPLES) -> int | None:
    """Examples in a held-out set, counted up to `limit` (batched tf.data, `[(inputs, labels)]` lists, arrays
    with `.x`); None when the form is unknown.

    Examples:
    >>> held_out_size(tf.data.Dataset.range(7).batch(3)), held_out_size(tf.data.Dataset.range(99).batch(8), 20)
    (7, 24)
    """
    if isinstance(dataset, tf.data.Dataset):
        count = 0
        for batch in dataset:
            count += int(tf.nest.flatten(batch)[0].shape[0] or 0)
            if count >= limit:
                break
        return count
    if hasattr(dataset, "x"):
        return len(dataset.x)
    if isinstance(dataset, (list, tuple)) and all(isinstance(item, (list, tuple)) and item for item in dataset):
        return sum(len(item[0]) for item in dataset)
    return None


def merge_histories(*histories) -> dict:
    """Concatenates Keras History objects or history dicts (two-phase training) into one dict of floats."""
    merged: dict = {}
    for history in histories:
        if history is None:
            continue
        for key, values in getattr(history, "history", history).items():
            merged.setdefault(key, []).extend(float(v) for v in values)
    return merged


def input_name(item, index: int) -> str:
    """How a result names its input: the file path or text, else `input<index>`."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    return f"input{index}"


def output_stem(item, index: int) -> str:
    """A file-name stem for an input's output pictures (`cat` for `photos/cat.jpg`, else `input<index>`)."""
    if isinstance(item, (str, os.PathLike)):
        return os.path.splitext(os.path.basename(os.fspath(item)))[0]
    return f"input{index}"


def text_of(value) -> str:
    """bytes (what string tensors give back) or anything else -> str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def string_inputs(inputs, what: str) -> list:
    """A raw-text app's `predict` inputs (one string / bytes or a list of them) -> a list of str; anything else is
    a DataError naming `what` (e.g. "queries").

    >>> string_inputs([b"coffee", "tea"], "queries")
    ['coffee', 'tea']
    """
    from toolkit.data import DataError

    items = [inputs] if isinstance(inputs, (str, bytes)) else list(inputs)
    texts = [t.decode("utf-8") if isinstance(t, bytes) else t for t in items]
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise DataError(f"{what} must be strings. Received: {type(bad[0]).__name__}")
    return texts


def _at(values, index):
    return values[index] if index < len(values) else ""


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()] if value.dtype.kind in "SO" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
