"""Segmentation losses: soft multi-class Dice, focal, and cross-entropy + Dice (SEED_CATALOGUE.md section 5).

Keras ships pixel-wise cross-entropy (`SparseCategoricalCrossentropy` works per pixel) and a binary
focal loss, but no multi-class Dice loss and no sparse multi-class focal loss, so those are written here.
All losses take `y_true` as integer class maps `[B, H, W]` / `[B, H, W, 1]` or one-hot `[B, H, W, K]`
and `y_pred` as softmax probabilities `[B, H, W, K]`; each returns one value per example.
"""

from __future__ import annotations

import keras
from keras import ops

LOSSES = ("ce", "dice", "focal", "ce+dice")


def _one_hot(y_true, y_pred):
    """Integer or one-hot labels -> one-hot float `[B, H, W, K]` matching `y_pred`."""
    num_classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == num_classes and num_classes != 1:
        return ops.cast(y_true, y_pred.dtype)
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    return ops.one_hot(ops.cast(y_true, "int32"), num_classes, dtype=y_pred.dtype)


def soft_dice(y_true, y_pred, smooth: float = 1.0):
    """Per-example, per-class soft Dice `(2 sum(p g) + eps) / (sum(p) + sum(g) + eps)`, shape `[B, K]`."""
    y_pred = ops.cast(y_pred, "float32")
    target = _one_hot(y_true, y_pred)
    axes = list(range(1, len(y_pred.shape) - 1))
    intersection = ops.sum(target * y_pred, axis=axes)
    total = ops.sum(target, axis=axes) + ops.sum(y_pred, axis=axes)
    return (2.0 * intersection + smooth) / (total + smooth)


@keras.saving.register_keras_serializable(package="toolkit")
class DiceLoss(keras.losses.Loss):
    """Soft multi-class Dice loss: `1 - mean_k Dice_k` per example (seed: L = 1 - (2 sum pg + eps)/(sum p + sum g + eps)).

    Args:
        smooth: eps added to numerator and denominator (keeps absent classes at Dice ~1, not 0/0).
        ignore_background: leave class 0 out of the class mean.

    Examples:
    >>> import numpy as np
    >>> y = np.array([[[0, 1]]]); p = np.array([[[[1.0, 0.0], [0.0, 1.0]]]])
    >>> float(DiceLoss(smooth=0.0)(y, p))
    0.0
    """

    def __init__(self, smooth: float = 1.0, ignore_background: bool = False, name: str = "dice_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth, self.ignore_background = float(smooth), bool(ignore_background)

    def call(self, y_true, y_pred):
        dice = soft_dice(y_true, y_pred, self.smooth)
        if self.ignore_background:
            dice = dice[:, 1:]
        return 1.0 - ops.mean(dice, axis=-1)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "ignore_background": self.ignore_background}


@keras.saving.register_keras_serializable(package="toolkit")
class FocalLoss(keras.losses.Loss):
    """Multi-class focal loss `-sum_c alpha_c y_c (1 - p_c)^gamma log p_c`, averaged over pixels.

    The seed's form has no alpha (gamma = 2); `alpha` (one weight per class) is optional.

    Args:
        gamma: focusing parameter (0 gives cross-entropy).
        alpha: None or a list of per-class weights.
        epsilon: probability clip that keeps `log` finite.

    Examples:
    >>> import numpy as np
    >>> y = np.array([[[1]]]); p = np.array([[[[0.5, 0.5]]]])
    >>> round(float(FocalLoss(gamma=2.0)(y, p)), 4)  # 0.25 * ln 2
    0.1733
    """

    def __init__(self, gamma: float = 2.0, alpha=None, epsilon: float = 1e-7, name: str = "focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma, self.epsilon = float(gamma), float(epsilon)
        self.alpha = None if alpha is None else [float(a) for a in alpha]

    def call(self, y_true, y_pred):
        y_pred = ops.clip(ops.cast(y_pred, "float32"), self.epsilon, 1.0 - self.epsilon)
        target = _one_hot(y_true, y_pred)
        per_class = -target * ops.power(1.0 - y_pred, self.gamma) * ops.log(y_pred)
        if self.alpha is not None:
            per_class = per_class * ops.convert_to_tensor(self.alpha, dtype=per_class.dtype)
        per_pixel = ops.sum(per_class, axis=-1)
        return ops.mean(per_pixel, axis=list(range(1, len(per_pixel.shape))))

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="toolkit")
class CEDiceLoss(keras.losses.Loss):
    """Pixel-wise cross-entropy + Dice (the seed's general-purpose choice): `ce_weight * CE + dice_weight * L_Dice`.

    Args:
        ce_weight: weight of the mean pixel-wise cross-entropy.
        dice_weight: weight of the soft Dice loss.
        smooth: Dice smoothing eps.

    Examples:
    >>> import numpy as np
    >>> y = np.array([[[0, 1]]]); p = np.array([[[[0.5, 0.5], [0.5, 0.5]]]])
    >>> round(float(CEDiceLoss(smooth=0.0)(y, p)), 4)  # ln 2 + (1 - 0.5)
    1.1931
    """

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0,
                 name: str = "ce_dice_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ce_weight, self.dice_weight, self.smooth = float(ce_weight), float(dice_weight), float(smooth)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        target = _one_hot(y_true, y_pred)
        ce = keras.losses.categorical_crossentropy(target, y_pred)
        ce = ops.mean(ce, axis=list(range(1, len(ce.shape))))
        dice = 1.0 - ops.mean(soft_dice(target, y_pred, self.smooth), axis=-1)
        return self.ce_weight * ce + self.dice_weight * dice

    def get_config(self):
        return {**super().get_config(), "ce_weight": self.ce_weight, "dice_weight": self.dice_weight,
                "smooth": self.smooth}


def get_segmentation_loss(name: str) -> keras.losses.Loss:
    """`"ce"`, `"dice"`, `"focal"` or `"ce+dice"` -> a loss instance.

    Examples:
    >>> type(get_segmentation_loss("ce+dice")).__name__
    'CEDiceLoss'
    """
    if name == "ce":
        return keras.losses.SparseCategoricalCrossentropy()
    if name == "dice":
        return DiceLoss()
    if name == "focal":
        return FocalLoss()
    if name == "ce+dice":
        return CEDiceLoss()
    raise ValueError(f"loss must be one of {LOSSES}. Received: loss={name!r}")
