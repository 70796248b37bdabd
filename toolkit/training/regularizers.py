"""Per-layer L1/L2 weight regularisation that leaves biases alone (SEED_CATALOGUE.md section 2)."""

from __future__ import annotations

import fnmatch

import keras

# Layers whose `kernel` (or depthwise/pointwise kernel) is a weight matrix worth regularising.
_KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")


def apply_weight_regularization(
    model: keras.Model,
    l1: float = 0.0,
    l2: float = 0.0,
    per_layer: dict | None = None,
) -> list:
    """Attaches L1/L2 penalties to the kernels of a built model's layers; biases are never penalised.

    The penalty is attached to the kernel variables themselves, so it counts in `model.losses` from the
    next forward pass on and survives re-compiling. Nested models are walked.

    Args:
        model: a built Keras model.
        l1: default L1 weight for every layer with a kernel.
        l2: default L2 weight for every layer with a kernel.
        per_layer: `{layer name or glob pattern: (l1, l2)}` overriding the default for matching layers
            (seed: "different layers can have different lambda").

    Returns:
        names of the layers that received a penalty.

    Examples:
    >>> import keras
    >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    >>> apply_weight_regularization(m, l2=0.01)
    ['d']
    """
    for name, value in (("l1", l1), ("l2", l2)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value}")
    per_layer = per_layer or {}
    touched = []
    for layer in _walk(model):
        factors = (l1, l2)
        for pattern, override in per_layer.items():
            if fnmatch.fnmatchcase(layer.name, pattern):
                factors = tuple(override)
        if not any(factors):
            continue
        for attribute in _KERNEL_ATTRIBUTES:
            variable = getattr(layer, attribute, None)
            if variable is not None and hasattr(variable, "regularizer"):
                variable.regularizer = keras.regularizers.L1L2(l1=factors[0], l2=factors[1])
                if layer.name not in touched:
                    touched.append(layer.name)
    return touched


def _walk(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer
