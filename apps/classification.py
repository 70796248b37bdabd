"""What every classification app shares: readable predictions, the report table, the confusion-matrix plot."""

from __future__ import annotations

import os

from apps.base import text_of
from toolkit.metrics import format_report, plot_confusion_matrix


class ClassificationOutputs:
    """Mixin for apps whose signatures return `scores`, `classes`, `labels` (image and text classifiers)."""

    def format_predictions(self, outputs, inputs) -> list:
        return [
            {"label": text_of(label), "class": int(cls), "score": float(score[cls])}
            for label, cls, score in zip(outputs["labels"], outputs["classes"], outputs["scores"])
        ]

    def summary(self, metrics) -> str:
        return format_report(metrics) if "per_class" in metrics else super().summary(metrics)

    def plot(self, run, ctx=None) -> dict:
        plots = super().plot(run, ctx)
        if run.metrics.get("confusion_matrix") and run.run_dir:
            plots["confusion_matrix"] = plot_confusion_matrix(
                run.metrics["confusion_matrix"], run.info["class_names"],
                os.path.join(run.run_dir, "confusion_matrix.png"),
            )
        return plots
