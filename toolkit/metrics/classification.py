"""Classification report: accuracy, per-class precision / recall / F1, confusion matrix.

scikit-learn computes the numbers; this module only shapes them into a JSON-friendly dict and a table.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def classification_report(y_true, y_pred, class_names=None) -> dict:
    """Metrics for integer labels `y_true` against predicted ids `y_pred` (or probabilities `[N, K]`).

    Returns:
        dict with `accuracy`, `macro_f1`, `per_class` (`{name: {precision, recall, f1, support}}`) and
        `confusion_matrix` (list of lists, rows = true class).

    Examples:
    >>> r = classification_report([0, 1, 1, 0], [0, 1, 0, 0], ["a", "b"])
    >>> r["accuracy"], r["per_class"]["b"]["recall"]
    (0.75, 0.5)
    """
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    y_pred = y_pred.reshape(-1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if class_names is None:
        class_names = [str(i) for i in range(int(max(y_true.max(), y_pred.max())) + 1)]
    labels = list(range(len(class_names)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "class_names": list(class_names),
    }


def format_report(report: dict) -> str:
    """A one-screen text table of a `classification_report` dict."""
    width = max(12, *(len(n) for n in report["per_class"]))
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for name, row in report["per_class"].items():
        lines.append(
            f"{name:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1']:5.3f}  {row['support']:7d}"
        )
    lines.append(f"{'accuracy':<{width}}  {report['accuracy']:9.4f}   macro F1 {report['macro_f1']:.4f}")
    return "\n".join(lines)
