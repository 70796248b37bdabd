"""Training utilities: regularisation, schedules, losses, callbacks, distribution strategies."""

from toolkit.training.callbacks import default_callbacks
from toolkit.training.losses import SmoothedSparseCategoricalCrossentropy
from toolkit.training.regularizers import apply_weight_regularization
from toolkit.training.schedules import CyclicalLearningRate

__all__ = [
    "CyclicalLearningRate",
    "SmoothedSparseCategoricalCrossentropy",
    "apply_weight_regularization",
    "default_callbacks",
]
