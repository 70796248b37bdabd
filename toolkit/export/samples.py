"""Parity samples: the inputs an export is checked on against the live model.

`random_samples` is the one generator of random sample inputs (images or dense arrays) for parity checks;
`png_samples` turns images into a raw image signature's inputs; `parity_inputs` gives an adapter's
`(raw, dense)` sample tensors, padded to the static batch of a tpu export (`pad_to_batch`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from toolkit.data.images import encode_png
from toolkit.export.errors import ExportError

PIXELS, NORMAL = "pixels", "normal"


def random_samples(shape, count: int = 3, *, kind: str = PIXELS, dtype=None, sizes=None, seed=0):
    """Random sample inputs for an export's parity check (any valid input does: parity compares outputs).

    Args:
        shape: one sample's shape without the batch axis, e.g. `(H, W, C)`; `None` dimensions become 1.
        count: number of samples (ignored when `sizes` is given).
        kind: `"pixels"`: uniform integers in [0, 255] (`dtype` default uint8); `"normal"`: standard
            normal values (`dtype` default float32).
        dtype: the samples' dtype.
        sizes: a list of `(height, width)`: one image of each size with `shape[-1]` channels (varied sizes
            exercise the raw signature's decoding and resizing); a list is returned.
        seed: an int, or a `np.random.Generator` to draw several inputs from one stream.

    Returns:
        an array `[count, *shape]`, or with `sizes` a list of `[h, w, C]` arrays.

    Examples:
    >>> random_samples((4, 5, 3)).shape
    (3, 4, 5, 3)
    >>> [im.shape for im in random_samples((8, 8, 1), sizes=[(8, 8), (16, 4)])]
    [(8, 8, 1), (16, 4, 1)]
    >>> random_samples((None, 2), 2, kind="normal").dtype
    dtype('float32')
    """
    if kind not in (PIXELS, NORMAL):
        raise ValueError(f"kind must be {PIXELS!r} or {NORMAL!r}. Received: kind={kind!r}")
    rng = np.random.default_rng(seed)
    dtype = dtype or ("uint8" if kind == PIXELS else "float32")

    def draw(size):
        values = rng.integers(0, 256, size=size) if kind == PIXELS else rng.normal(size=size)
        return values.astype(dtype)

    if sizes is not None:
        return [draw((h, w, shape[-1])) for h, w in sizes]
    return draw([count, *[d or 1 for d in shape]])


def png_samples(sample_images) -> dict | None:
    """A few `[H, W, C]` arrays -> the raw image signature's parity-check inputs (`{"images": PNG bytes}`)."""
    if sample_images is None:
        return None
    return {"images": [encode_png(image) for image in sample_images]}


def parity_inputs(adapter, batch: int | None = None):
    """`(raw, dense)` sample tensors of `adapter` (its `sample_raw`, preprocessed), `batch` rows when given.

    Raises:
        ExportError: when the adapter has no sample inputs.
    """
    if adapter.sample_raw is None:
        raise ExportError("the adapter has no sample inputs for the parity check")
    raw = {k: tf.constant(v) for k, v in adapter.sample_raw.items()}
    if batch:
        raw = {k: pad_to_batch(v, batch) for k, v in raw.items()}
    dense, _ = adapter.preprocess(raw)
    return raw, dense


def pad_to_batch(tensor, batch: int):
    """Exactly `batch` rows: the first `batch` rows, or the last row repeated (a tpu export's static batch)."""
    n = int(tensor.shape[0])
    if n >= batch:
        return tensor[:batch]
    repeats = [batch - n] + [1] * (len(tensor.shape) - 1)
    return tf.concat([tensor, tf.tile(tensor[-1:], repeats)], axis=0)
