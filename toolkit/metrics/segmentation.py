"""Segmentation metrics: confusion matrix, per-class IoU and Dice, mean IoU, pixel accuracy.

IoU_k = TP / (TP + FP + FN) (Jaccard, SEED_CATALOGUE.md section 5); Dice_k = 2 TP / (2 TP + FP + FN)
(= F1). Means run over the classes that occur in the ground truth or the prediction (a class absent from
both has no defined IoU), which is also what `keras.metrics.MeanIoU` does. The seeds define neither mIoU
nor pixel accuracy; these are the standard (PASCAL VOC) definitions.
"""

from __future__ import annotations

import keras
import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """`[K, K]` pixel counts, rows = true class, columns = predicted class.

    Args:
        y_true: integer class map(s) of any shape.
        y_pred: integer class map(s) of the same shape, or probabilities with one extra trailing axis `K`.
        num_classes: K.

    Examples:
    >>> confusion_matrix([[0, 1], [1, 1]], [[0, 1], [0, 1]], 2).tolist()
    [[1, 0], [1, 2]]
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == y_true.ndim + 1:
        y_pred = y_pred.argmax(axis=-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    t, p = y_true.reshape(-1).astype(np.int64), y_pred.reshape(-1).astype(np.int64)
    bad = (t < 0) | (t >= num_classes) | (p < 0) | (p >= num_classes)
    if bad.any():
        raise ValueError(f"class ids must be in [0, {num_classes}); found {sorted(set(t[bad]) | set(p[bad]))[:5]}")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def _per_class(matrix):
    matrix = np.asarray(matrix, np.float64)
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    return tp, fp, fn


def iou_per_class(matrix) -> np.ndarray:
    """Per-class IoU from a confusion matrix; NaN for a class absent from truth and prediction."""
    tp, fp, fn = _per_class(matrix)
    denominator = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, tp / denominator, np.nan)


def dice_per_class(matrix) -> np.ndarray:
    """Per-class Dice (F1) from a confusion matrix; NaN for a class absent from truth and prediction."""
    tp, fp, fn = _per_class(matrix)
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def pixel_accuracy(matrix) -> float:
    """Fraction of pixels whose predicted class is right."""
    matrix = np.asarray(matrix, np.float64)
    return float(np.trace(matrix) / max(matrix.sum(), 1.0))


def segmentation_report(y_true=None, y_pred=None, class_names=None, matrix=None) -> dict:
    """Mean IoU, mean Dice, pixel accuracy and per-class IoU / Dice / support.

    Args:
        y_true: integer masks (any shape), or None when `matrix` is given.
        y_pred: predicted masks or probabilities (`[..., K]`).
        class_names: names, index = class id (background included); defines K.
        matrix: a precomputed confusion matrix (accumulated over batches).

    Returns:
        dict with `mean_iou`, `mean_dice`, `pixel_accuracy`, `per_class` (`{name: {iou, dice, support}}`,
        NaN-free: an absent class gets None) and `confusion_matrix`.

    Examples:
    >>> r = segmentation_report([[0, 1], [1, 1]], [[0, 1], [0, 1]], ["bg", "fg"])
    >>> round(r["mean_iou"], 4), round(r["per_class"]["fg"]["dice"], 4)
    (0.5833, 0.8)
    """
    if matrix is None:
        matrix = confusion_matrix(y_true, y_pred, len(class_names))
    matrix = np.asarray(matrix)
    if class_names is None:
        class_names = [str(i) for i in range(len(matrix))]
    iou, dice = iou_per_class(matrix), dice_per_class(matrix)
    per_class = {
        str(name): {"iou": _num(iou[k]), "dice": _num(dice[k]), "support": int(matrix[k].sum())}
        for k, name in enumerate(class_names)
    }
    return {
        "mean_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
        "mean_dice": float(np.nanmean(dice)) if np.isfinite(dice).any() else 0.0,
        "pixel_accuracy": pixel_accuracy(matrix),
        "per_class": per_class,
        "confusion_matrix": matrix.astype(int).tolist(),
    }


def _num(value):
    return None if not np.isfinite(value) else float(value)


def format_segmentation_report(report: dict) -> str:
    """The report as a terminal table (per-class IoU / Dice, then the means)."""
    lines = [f"{'class':>16} {'IoU':>8} {'Dice':>8} {'pixels':>10}"]
    for name, row in report["per_class"].items():
        iou = "-" if row["iou"] is None else f"{row['iou']:.4f}"
        dice = "-" if row["dice"] is None else f"{row['dice']:.4f}"
        lines.append(f"{name:>16} {iou:>8} {dice:>8} {row['support']:>10}")
    lines.append(f"{'mean':>16} {report['mean_iou']:>8.4f} {report['mean_dice']:>8.4f}")
    lines.append(f"{'pixel accuracy':>16} {report['pixel_accuracy']:>8.4f}")
    return "\n".join(lines)


@keras.saving.register_keras_serializable(package="toolkit")
class MeanDice(keras.metrics.MeanIoU):
    """Streaming mean Dice over classes, from keras' MeanIoU confusion matrix (Dice = 2 IoU / (1 + IoU)).

    Takes the same arguments as `keras.metrics.MeanIoU` (`num_classes`, `sparse_y_pred=False` for
    probability outputs, ...); classes absent from truth and prediction are left out of the mean.

    Examples:
    >>> m = MeanDice(num_classes=2)
    >>> _ = m.update_state([0, 1, 1, 1], [0, 1, 0, 1])
    >>> round(float(m.result()), 4)  # (2/3 + 4/5) / 2
    0.7333
    """

    def __init__(self, num_classes, name="mean_dice", **kwargs):
        super().__init__(num_classes=num_classes, name=name, **kwargs)

    def result(self):
        from keras import ops

        matrix = ops.cast(self.total_cm, "float32")
        tp = ops.diagonal(matrix)
        denominator = ops.sum(matrix, axis=0) + ops.sum(matrix, axis=1)
        present = ops.cast(ops.greater(denominator, 0), "float32")
        dice = ops.divide_no_nan(2.0 * tp, denominator)
        return ops.divide_no_nan(ops.sum(dice * present), ops.sum(present))


def segmentation_metrics(num_classes: int) -> list:
    """Keras metrics for `compile`: mean IoU, mean Dice and pixel accuracy on softmax outputs."""
    return [
        keras.metrics.MeanIoU(num_classes=num_classes, sparse_y_pred=False, name="mean_iou"),
        MeanDice(num_classes=num_classes, sparse_y_pred=False),
        keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
    ]
