import os

import numpy as np
import pytest

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


def test_micro_macro_fbeta_and_roc_match_their_definitions(tmp_path):
    from sklearn.metrics import roc_auc_score

    from toolkit.metrics import plot_roc_curves

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    scores = rng.dirichlet(np.ones(3), 300) + np.eye(3)[y] * rng.uniform(0, 1, (300, 1))
    scores /= scores.sum(1, keepdims=True)
    report = classification_report(y, scores, ["a", "b", "c"], beta=2.0)
    per = report["per_class"]
    p, r = np.array([per[n]["precision"] for n in "abc"]), np.array([per[n]["recall"] for n in "abc"])
    assert report["macro_precision"] == pytest.approx(p.mean()) and report["macro_recall"] == pytest.approx(r.mean())
    assert report["micro_precision"] == report["micro_recall"] == pytest.approx(report["accuracy"])
    f2 = np.where(p + r > 0, 5 * p * r / np.maximum(4 * p + r, 1e-12), 0)
    assert report["macro_fbeta"] == pytest.approx(f2.mean(), abs=1e-9)
    for k, name in enumerate("abc"):  # one-vs-rest AUC per class, macro mean overall
        assert per[name]["roc_auc"] == pytest.approx(roc_auc_score(y == k, scores[:, k]))
    assert report["roc_auc"] == pytest.approx(roc_auc_score(y, scores, multi_class="ovr", average="macro"))
    curve = report["roc_curves"]["b"]
    assert curve["fpr"][0] == 0 and curve["tpr"][-1] == 1 and len(curve["fpr"]) <= 101
    assert "ROC AUC (one-vs-rest, macro)" in format_report(report) and "F2 " in format_report(report)
    path = plot_roc_curves(report["roc_curves"], str(tmp_path / "roc.png"), {n: per[n]["roc_auc"] for n in "abc"})
    assert (tmp_path / "roc.png").stat().st_size > 1000 and path.endswith("roc.png")


def test_binary_auc_is_the_positive_class_and_a_missing_class_gets_none():
    report = classification_report([0, 0, 1, 1], np.array([[.9, .1], [.6, .4], [.65, .35], [.2, .8]]), ["no", "yes"])
    assert report["roc_auc"] == 0.75 and list(report["roc_curves"]) == ["yes"]
    only_two = classification_report([0, 1, 0, 1], np.array([[.8, .1, .1], [.1, .8, .1], [.7, .2, .1], [.3, .6, .1]]))
    assert "roc_auc" not in only_two["per_class"]["2"] and only_two["roc_auc"] == 1.0
