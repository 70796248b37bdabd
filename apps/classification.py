"""What every classification app shares: readable predictions, the report table, the confusion-matrix and ROC
plots."""

from __future__ import annotations

import os

import numpy as np

from apps.base import input_name, text_of
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


def mc_dropout_results(app, path_or_run, inputs, samples: int, top_k=None) -> list:
    """MC-dropout predictions (`toolkit.training.mc_dropout`) for a classifier app: a live Run gets an
    `mc_dropout` signature of `samples` passes on the fly; an export must have one (`--mc-samples T` at
    training) with the same T."""
    from toolkit.export.image import MC_DROPOUT_SIGNATURE, with_mc_dropout_signature

    if samples < 1:
        raise ValueError(f"mc_samples must be >= 1. Received: mc_samples={samples}")
    predictor = app.predictor(path_or_run)
    adapter = getattr(predictor, "adapter", None)
    if adapter is not None:  # a live Run: any T, on a copy (the run's own adapter, and so its exports, keep theirs)
        import dataclasses

        predictor.adapter = with_mc_dropout_signature(dataclasses.replace(
            adapter, extra_signatures=dict(adapter.extra_signatures), metadata=dict(adapter.metadata)), samples)
    else:
        if MC_DROPOUT_SIGNATURE not in getattr(predictor, "signatures", {}):
            raise ValueError(f"this export has no {MC_DROPOUT_SIGNATURE!r} signature: train (or re-export the run) "
                             "with --mc-samples T to add one")
        exported = predictor.metadata.get("mc_dropout_samples")
        if exported != samples:
            raise ValueError(f"this export's {MC_DROPOUT_SIGNATURE!r} signature runs T={exported} passes (fixed at "
                             f"export); ask for --mc-samples {exported}, or re-export with --mc-samples {samples}")
    items = app.input_items(inputs)
    raw = app.raw_inputs(items, app._info_of(predictor))
    outputs = predictor(raw, signature=MC_DROPOUT_SIGNATURE)
    results = app.format_predictions({"scores": outputs["mean"], "classes": outputs["classes"],
                                      "labels": outputs["labels"]}, items, top_k=top_k,
                                     labels=getattr(predictor, "labels", None))
    for index, (item, result, variance) in enumerate(zip(items, results, outputs["variance"])):
        names = list(result["scores"])
        result.update(input=input_name(item, index), mc_samples=samples,
                      variance={name: float(v) for name, v in zip(names, variance)})
    return results

