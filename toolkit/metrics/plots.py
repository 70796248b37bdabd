"""PNG plots people would rather look at than read: training curves, confusion matrices."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_history(history: dict, path: str, title: str = "training", phase_boundaries=None) -> str:
    """Plots every `name` / `val_name` pair of a Keras history dict, one panel per metric.

    `phase_boundaries`: epochs after which a new training phase starts, as a list (labelled "phase 2", ...)
    or `{epoch: label}`; each is drawn as a labelled vertical line. Default: read from `history["phase"]`
    (the phase number of every epoch, as two-phase training records it).
    """
    if phase_boundaries is None:
        phase_boundaries = phase_boundaries_of(history.get("phase") or [])
    if not isinstance(phase_boundaries, dict):
        phase_boundaries = {int(e): f"phase {i + 2}" for i, e in enumerate(phase_boundaries)}
    names = [k for k in history if not k.startswith("val_") and k not in ("learning_rate", "lr", "phase")]
    if not names:
        raise ValueError("history has no metrics to plot")
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = np.arange(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], "o-", label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], "o-", label="validation")
        for epoch, label in phase_boundaries.items():
            ax.axvline(epoch + 0.5, color="grey", linestyle="--", linewidth=1)
            ax.text(epoch + 0.6, 0.98, str(label), transform=ax.get_xaxis_transform(), fontsize=8, color="grey",
                    va="top")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def phase_boundaries_of(phases) -> list:
    """The epochs (1-based) after which the phase number changes.

    Examples:
    >>> phase_boundaries_of([1, 1, 1, 2, 2])
    [3]
    """
    return [i for i in range(1, len(phases)) if phases[i] != phases[i - 1]]


def plot_pr_curves(curves: dict, path: str, title: str = "precision-recall at IoU 0.5") -> str:
    """One precision-recall line per class from `toolkit.metrics.detection.pr_curves` (AP in the legend)."""
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, curve in curves.items():
        ax.plot(curve["recall"], curve["precision"], "-", drawstyle="steps-post",
                label=f"{name} (AP {curve['ap']:.2f}, n={curve['instances']})")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_roc_curves(curves: dict, path: str, aucs: dict | None = None, title: str = "ROC (one-vs-rest)") -> str:
    """ROC curves `{name: {"fpr": [...], "tpr": [...]}}` (a `classification_report`'s `roc_curves`), AUC in the
    legend, the chance diagonal dashed."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, curve in curves.items():
        auc = (aucs or {}).get(name)
        ax.plot(curve["fpr"], curve["tpr"], lw=1.5, label=f"{name} (AUC {auc:.3f})" if auc is not None else name)
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false-positive rate", ylabel="true-positive rate", title=title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_confusion_matrix(matrix, class_names, path: str, title: str = "confusion matrix") -> str:
    """Row-normalised confusion matrix heatmap with counts in the cells."""
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: str) -> str:
    """Writes a matplotlib figure as PNG (creating folders) and closes it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
