"""What every classification app shares: readable predictions, the report table, the confusion-matrix and ROC
plots."""

from __future__ import annotations

import os

import numpy as np

from apps.base import text_of
from toolkit.metrics import format_report, plot_confusion_matrix, plot_roc_curves


class ClassificationOutputs:
    """Mixin for apps whose signatures return `scores`, `classes`, `labels` (image and text classifiers)."""

    def format_predictions(self, outputs, inputs, top_k=None, score_threshold=None, labels=None) -> list:
        """`label`, `class`, `score` of the best class, `scores` of every class by label, and with `top_k` the
        k best as `top` (label, score) pairs."""
        width = np.asarray(outputs["scores"]).shape[-1]
        names = ([text_of(n) for n in labels] if labels is not None and len(labels) == width
                 else [str(i) for i in range(width)])
        results = []
        for label, cls, score in zip(outputs["labels"], outputs["classes"], outputs["scores"]):
            result = {"label": text_of(label), "class": int(cls), "score": float(score[cls]),
                      "scores": {name: round(float(s), 6) for name, s in zip(names, score)}}
            if top_k and top_k > 1:
                order = np.argsort(-np.asarray(score))[:top_k]
                result["top"] = [{"label": names[i], "score": float(score[i])} for i in order]
            results.append(result)
        return results

    def summary(self, metrics) -> str:
        return format_report(metrics) if "per_class" in metrics else super().summary(metrics)

    def plot(self, run, ctx=None) -> dict:
        plots = super().plot(run, ctx)
        if run.metrics.get("confusion_matrix") and run.run_dir:
            plots["confusion_matrix"] = plot_confusion_matrix(
                run.metrics["confusion_matrix"], run.info["class_names"],
                os.path.join(run.run_dir, "confusion_matrix.png"),
            )
        if run.metrics.get("roc_curves") and run.run_dir:
            aucs = {name: row.get("roc_auc") for name, row in run.metrics.get("per_class", {}).items()}
            plots["roc_curves"] = plot_roc_curves(run.metrics["roc_curves"], os.path.join(run.run_dir, "roc.png"),
                                                  aucs=aucs)
        return plots
