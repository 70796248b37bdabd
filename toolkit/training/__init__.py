"""Training utilities: regularisation, schedules, losses, callbacks, distribution strategies.

Submodules are imported lazily, so `toolkit.training.strategies` (the names `--help` lists) is read without
importing TensorFlow.
"""

from __future__ import annotations

from toolkit.lazy import lazy_exports

_EXPORTS = {
    "default_callbacks": "toolkit.training.callbacks",
    "SmoothedSparseCategoricalCrossentropy": "toolkit.training.losses",
    "apply_weight_regularization": "toolkit.training.regularizers",
    "CyclicalLearningRate": "toolkit.training.schedules",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
