"""Re-batching for compiled programs that need every step at the same batch size (TPU / XLA)."""

from __future__ import annotations

import tensorflow as tf


def needs_static_batches(strategy) -> bool:
    """True for TPU strategies: XLA compiles one program per input shape, so every step needs the same batch."""
    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy))


def static_batches(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """A batched `dataset` re-batched to exactly `batch_size` examples a step, the short remainder dropped.

    Examples:
    >>> ds = static_batches(tf.data.Dataset.range(10).batch(3), 4)
    >>> ds.element_spec.shape, [len(b) for b in ds]
    (TensorShape([4]), [4, 4])
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    # not `rebatch(..., drop_remainder=True)`: in TF 2.21 it passes a short last batch through when the input
    # is already batched at `batch_size`
    return dataset.unbatch().batch(batch_size, drop_remainder=True)


def steps_per_epoch(dataset) -> int | None:
    """Batches in one pass over a finite `tf.data.Dataset` (None when TF cannot tell, or for other inputs)."""
    if not isinstance(dataset, tf.data.Dataset):
        return None
    count = int(dataset.cardinality())
    return count if count > 0 else None
