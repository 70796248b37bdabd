"""COCO mAP (pycocotools behind an adapter) against hand-computed average precision."""

import numpy as np
import pytest

from toolkit.metrics.detection import coco_map, format_map

GT = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 0]))]


def test_perfect_detections_score_one():
    det = [(GT[0][0], np.array([0.9, 0.8]), np.array([0, 0]))]
    m = coco_map(GT, det, ["a"])
    assert m["map"] == m["map_50"] == m["per_class"]["a"]["ap"] == 1.0


def test_false_positive_ranked_between_hits():
    # TP 0.9, FP 0.8, TP 0.7: precision 1 up to recall 0.5, then 2/3 at recall 1. COCO's 101-point
    # interpolation: (51 * 1 + 50 * 2/3) / 101 at every IoU threshold (the hits are exact).
    det = [(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]]), np.array([0.9, 0.8, 0.7]), np.zeros(3))]
    expected = (51 + 50 * 2 / 3) / 101
    m = coco_map(GT, det, ["a"])
    assert m["map_50"] == pytest.approx(expected, abs=1e-9)
    assert m["map"] == pytest.approx(expected, abs=1e-9)


def test_iou_thresholds_average():
    # [1, 0, 10, 9] vs [0, 0, 10, 10]: I = 81, U = 100 -> IoU 0.81
    det = [(np.array([[1, 0, 10, 9], [20, 20, 30, 30]]), np.array([0.9, 0.8]), np.zeros(2))]
    m = coco_map(GT, det, ["a"])
    # box 0 matches at thresholds 0.50..0.80 (7 of 10) and box 1 at all 10: AP = 1 at those 7. At 0.85..0.95
    # only the second-ranked box is a hit: precision 1/2 at recall 0.5, nothing beyond -> 51 * 0.5 / 101
    assert m["map_50"] == 1.0
    only_second = 51 * 0.5 / 101
    assert m["map"] == pytest.approx((7 * 1.0 + 3 * only_second) / 10, abs=1e-9)


def test_wrong_class_and_per_class_table():
    gt = [(np.array([[0, 0, 10, 10]]), np.array([0])), (np.array([[0, 0, 10, 10]]), np.array([1]))]
    det = [(np.array([[0, 0, 10, 10]]), np.array([0.8]), np.array([1])),
           (np.array([[0, 0, 10, 10], [0, 0, 5, 5]]), np.array([0.9, 0.5]), np.array([1, -1]))]
    m = coco_map(gt, det, ["a", "b", "c"])
    assert m["per_class"]["a"]["ap"] == 0.0  # its only object was called "b"
    assert m["per_class"]["b"]["ap"] == pytest.approx(1.0)  # b's hit (0.9) outranks its false positive (0.8)
    assert "c" not in m["per_class"]  # no ground truth: left out of the mean, as in pycocotools
    assert "AP@0.5" in format_map(m) and "b" in format_map(m)


def test_no_detections_is_zero():
    m = coco_map(GT, [(np.zeros((0, 4)), np.zeros(0), np.zeros(0))], ["a"])
    assert m["map"] == 0.0 and m["per_class"]["a"]["instances"] == 2
