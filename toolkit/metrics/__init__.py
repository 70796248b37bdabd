"""Evaluation metrics and their plots."""

from toolkit.metrics.classification import classification_report, format_report
from toolkit.metrics.plots import plot_confusion_matrix, plot_history, plot_roc_curves

__all__ = ["classification_report", "format_report", "plot_confusion_matrix", "plot_history", "plot_roc_curves"]
