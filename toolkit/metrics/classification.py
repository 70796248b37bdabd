"""Classification report: accuracy, per-class precision / recall / F1, micro and macro averages, F-beta,
ROC curves and AUC (binary, and one-vs-rest per class), confusion matrix — the metrics the notes list
(F3:4174-4274).

scikit-learn computes the numbers; this module only shapes them into a JSON-friendly dict and a table.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


ROC_POINTS = 101  # ROC curves are stored thinned to about this many points (metrics.json stays small)


def classification_report(y_true, y_pred, class_names=None, beta: float = 2.0) -> dict:
    """Metrics for integer labels `y_true` against predicted ids `y_pred` (or probabilities `[N, K]`).

    Returns:
        dict with `accuracy`, `macro_f1`, `macro_precision`, `macro_recall`, `micro_precision`,
        `micro_recall` (for single-label classes both equal the accuracy), `macro_fbeta` and `beta`
        (F-beta = (1 + b^2) P R / (b^2 P + R); b = 2 weighs recall higher), `per_class`
        (`{name: {precision, recall, f1, support}}`), `confusion_matrix` (rows = true class); with
        probabilities also `roc_auc` (binary: of the second class; else the macro mean of the classes'
        one-vs-rest AUCs), `per_class[name]["roc_auc"]` and `roc_curves` (`{name: {fpr, tpr}}`).

    Examples:
    >>> r = classification_report([0, 1, 1, 0], [0, 1, 0, 0], ["a", "b"])
    >>> r["accuracy"], r["per_class"]["b"]["recall"], round(r["macro_fbeta"], 4)
    (0.75, 0.5, 0.7323)
    >>> classification_report([0, 0, 1, 1], np.array([[.9, .1], [.6, .4], [.65, .35], [.2, .8]]))["roc_auc"]
    0.75
    """
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred)
    scores = y_pred if y_pred.ndim == 2 else None
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    y_pred = y_pred.reshape(-1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if class_names is None:
        count = scores.shape[1] if scores is not None else int(max(y_true.max(), y_pred.max())) + 1
        class_names = [str(i) for i in range(count)]
    labels = list(range(len(class_names)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    micro = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="micro", zero_division=0)
    report = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_f1": float(np.mean(f1)),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "micro_precision": float(micro[0]),
        "micro_recall": float(micro[1]),
        "macro_fbeta": float(skm.fbeta_score(y_true, y_pred, beta=beta, labels=labels, average="macro",
                                             zero_division=0)),
        "beta": float(beta),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "class_names": list(class_names),
    }
    if scores is not None and scores.shape[1] == len(class_names):
        _add_roc(report, y_true, scores, class_names)
    return report


def _add_roc(report: dict, y_true, scores, class_names) -> None:
    """One-vs-rest ROC per class with both positives and negatives in `y_true` (others get no AUC)."""
    curves, aucs = {}, {}
    for k, name in enumerate(class_names):
        positive = y_true == k
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = skm.roc_curve(positive, scores[:, k])
        aucs[name] = float(skm.auc(fpr, tpr))
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().astype(int))
        curves[name] = {"fpr": np.round(fpr[keep], 5).tolist(), "tpr": np.round(tpr[keep], 5).tolist()}
    if not aucs:
        return
    for name, value in aucs.items():
        report["per_class"][name]["roc_auc"] = value
    binary = len(class_names) == 2 and class_names[1] in aucs
    report["roc_auc"] = aucs[class_names[1]] if binary else float(np.mean(list(aucs.values())))
    report["roc_curves"] = {class_names[1]: curves[class_names[1]]} if binary else curves


def format_report(report: dict) -> str:
    """A one-screen text table of a `classification_report` dict."""
    width = max(12, *(len(n) for n in report["per_class"]))
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for name, row in report["per_class"].items():
        lines.append(
            f"{name:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1']:5.3f}  {row['support']:7d}"
        )
    lines.append(f"{'accuracy':<{width}}  {report['accuracy']:9.4f}   macro F1 {report['macro_f1']:.4f}")
    if "macro_precision" in report:
        lines.append(f"{'macro':<{width}}  {report['macro_precision']:9.3f}  {report['macro_recall']:6.3f}   "
                     f"F{report['beta']:g} {report['macro_fbeta']:.4f}")
    if "roc_auc" in report:
        kind = "ROC AUC" if len(report["per_class"]) == 2 else "ROC AUC (one-vs-rest, macro)"
        lines.append(f"{kind:<{width}}  {report['roc_auc']:9.4f}")
    return "\n".join(lines)
