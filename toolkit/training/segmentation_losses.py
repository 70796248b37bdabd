"""Segmentation losses: soft multi-class Dice, focal, and cross-entropy + Dice (SEED_CATALOGUE.md section 5).

All losses take `y_true` as integer class maps `[B, H, W]` / `[B, H, W, 1]` or one-hot `[B, H, W, K]`
and `y_pred` as softmax probabilities `[B, H, W, K]`; each returns one value per example. They one-hot
sparse targets themselves, since the Keras losses used here take one-hot targets:

* cross-entropy: `keras.losses.categorical_crossentropy` (or `SparseCategoricalCrossentropy`, per pixel).
* focal: `keras.losses.categorical_focal_crossentropy` (per-class `alpha` list, `gamma`), averaged over pixels.
* Dice: our own `soft_dice`, not `keras.losses.Dice`. Keras' Dice is `1 - 2 sum(p g) / (sum(p) + sum(g) + 1e-7)`
  over `axis`; with `axis=(1, 2)` on one-hot targets it is the per-example, per-class Dice, but it has no
  smoothing term: a class absent from an example's mask (sum(g) = 0) scores Dice 0, i.e. a loss of 1 for that
  class however well the model predicts it absent. Our `smooth` (default 1) is added to numerator and
  denominator, so an absent, unpredicted class scores ~1 and per-image class means are not dominated by the
  classes an image does not contain. With `smooth=0` the two agree (same 1e-7 denominator epsilon).
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
    """Per-example, per-class soft Dice `(2 sum(p g) + s) / (sum(p) + sum(g) + s + 1e-7)`, shape `[B, K]`.

    Kept instead of `keras.losses.Dice`, which has no smoothing term `s` (see the module docstring); the
    1e-7 (`keras.config.epsilon()`, as in Keras' Dice) keeps `smooth=0` finite for an absent class.
    """
    y_pred = ops.cast(y_pred, "float32")
    target = _one_hot(y_true, y_pred)
    axes = list(range(1, len(y_pred.shape) - 1))
    intersection = ops.sum(target * y_pred, axis=axes)
    total = ops.sum(target, axis=axes) + ops.sum(y_pred, axis=axes)
    return (2.0 * intersection + smooth) / (total + smooth + keras.config.epsilon())


@keras.saving.register_keras_serializable(package="toolkit")
class DiceLoss(keras.losses.Loss):
    """Soft multi-class Dice loss: `1 - mean_k Dice_k` per example (seed: L = 1 - (2 sum pg + eps)/(sum p + sum g + eps)).

    Unlike `keras.losses.Dice` (no smoothing: an absent class costs a full 1), see `soft_dice`.

    Args:
        smooth: eps added to numerator and denominator (keeps absent classes at Dice ~1, not 0).
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

    The per-pixel value is `keras.losses.categorical_focal_crossentropy` on one-hot targets; this class adds
    sparse targets, the pixel mean, and the seed's default of no alpha (gamma = 2) where Keras' default
    alpha is 0.25.

    Args:
        gamma: focusing parameter (0 gives cross-entropy).
        alpha: None (weight 1) or a list of per-class weights.
        epsilon: probability clip `[epsilon, 1 - epsilon]` that keeps `log` finite (Keras then renormalises
            the probabilities to sum to 1 and clips at `keras.config.epsilon()`, 1e-7, itself).

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
        alpha = 1.0 if self.alpha is None else ops.convert_to_tensor(self.alpha, dtype=y_pred.dtype)
        per_pixel = keras.losses.categorical_focal_crossentropy(target, y_pred, alpha=alpha, gamma=self.gamma)
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
