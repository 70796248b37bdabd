"""Whether a training step is XLA-compiled: Keras' `jit_compile="auto"` turns XLA on for every model whose layers
support it, but on a CPU XLA's convolutions run its own kernels instead of oneDNN's, and the convolutional apps
train 2-4x slower with it (measured side by side on this 2-core x86 machine, TF 2.21: the built-in CNN, width 16,
batch 128: 120-135 images/s with XLA vs 266-503 without; `benchmarks/image_classifier.py --parts throughput`).
On a GPU or TPU XLA usually wins, so "auto" stays there."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def has_accelerator() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))


def conv_jit_compile():
    """The `jit_compile` for `model.compile` of a convolutional model: False on a CPU-only machine, else "auto".

    >>> conv_jit_compile() in (False, "auto")
    True
    """
    return "auto" if has_accelerator() else False
