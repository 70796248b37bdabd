"""Training utilities: regularisation, schedules, losses, callbacks, distribution strategies.

Submodules are imported lazily, so `toolkit.training.strategies` (the names `--help` lists) is read without
importing TensorFlow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "default_callbacks": "toolkit.training.callbacks",
    "SmoothedSparseCategoricalCrossentropy": "toolkit.training.losses",
    "apply_weight_regularization": "toolkit.training.regularizers",
    "CyclicalLearningRate": "toolkit.training.schedules",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'toolkit.training' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
