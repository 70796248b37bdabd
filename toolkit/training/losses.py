"""Losses that Keras does not ship in the form the apps need."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing.

    Keras' `SparseCategoricalCrossentropy` has no `label_smoothing`, so integer labels are one-hot
    encoded here. Two forms:
    `"keras"`: y = onehot * (1 - eps) + eps / K (as keras' CategoricalCrossentropy);
    `"seed"`: y = 1 - eps for the true class, eps / (K - 1) elsewhere (SEED_CATALOGUE.md section 2).

    Args:
        smoothing: float in [0, 1). eps.
        form: str. `"keras"` or `"seed"`.
        from_logits: bool. predictions are logits.

    Examples:
    >>> import numpy as np
    >>> loss = SmoothedSparseCategoricalCrossentropy(0.0)
    >>> round(float(loss(np.array([1]), np.array([[0.5, 0.5]]))), 4)
    0.6931
    """

    def __init__(self, smoothing: float = 0.1, form: str = "keras", from_logits: bool = False,
                 name: str = "smoothed_sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1). Received: smoothing={smoothing}")
        if form not in ("keras", "seed"):
            raise ValueError(f"form must be 'keras' or 'seed'. Received: form={form!r}")
        self.smoothing, self.form, self.from_logits = smoothing, form, from_logits

    def call(self, y_true, y_pred):
        num_classes = ops.shape(y_pred)[-1]
        onehot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), num_classes, dtype=y_pred.dtype)
        k = ops.cast(num_classes, y_pred.dtype)
        if self.form == "keras":
            target = onehot * (1.0 - self.smoothing) + self.smoothing / k
        else:
            target = onehot * (1.0 - self.smoothing) + (1.0 - onehot) * self.smoothing / (k - 1.0)
        return keras.losses.categorical_crossentropy(target, y_pred, from_logits=self.from_logits)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing, "form": self.form, "from_logits": self.from_logits}
