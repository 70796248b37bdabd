import os

import numpy as np

from toolkit.metrics import classification_report, format_report, plot_confusion_matrix, plot_history


def test_report_numbers_by_hand():
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 2, 2]
    report = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert report["accuracy"] == 4 / 6
    b = report["per_class"]["b"]
    assert (b["precision"], b["recall"], b["support"]) == (2 / 3, 2 / 3, 3)
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    assert "macro F1" in format_report(report)


def test_report_accepts_probabilities():
    report = classification_report([1, 0], np.array([[0.2, 0.8], [0.9, 0.1]]))
    assert report["accuracy"] == 1.0


def test_plots_are_written(tmp_path):
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]}
    path = plot_history(history, str(tmp_path / "h.png"))
    matrix = plot_confusion_matrix([[3, 1], [0, 4]], ["x", "y"], str(tmp_path / "cm.png"))
    for file in (path, matrix):
        with open(file, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(file) > 1000
