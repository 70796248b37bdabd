"""IoU, box formats and NMS against hand-computed cases, including the lecture-notes NMS walk-through."""

import numpy as np
import tensorflow as tf

from toolkit.models.detection import (
    box_iou, combined_nms, nms, numpy_iou, padded_nms, xywh_to_xyxy, xyxy_to_xywh,
)


def test_iou_hand_computed_and_properties():
    a = [[0.0, 0.0, 2.0, 2.0]]
    b = [[1.0, 1.0, 3.0, 3.0]]
    assert np.isclose(float(box_iou(a, b)[0, 0]), 1 / 7)  # I = 1, U = 4 + 4 - 1
    assert np.isclose(float(box_iou([[0, 0, 4, 2]], [[2, 0, 6, 2]])[0, 0]), 4 / 12)
    assert float(box_iou(a, a)[0, 0]) == 1.0  # identical -> 1
    assert float(box_iou(a, [[5.0, 5.0, 6.0, 6.0]])[0, 0]) == 0.0  # disjoint -> 0 (max(0, .) clamps)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (6, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (6, 2))], 1).astype("float32")
    m = box_iou(boxes, boxes).numpy()
    np.testing.assert_allclose(m, m.T, atol=1e-6)  # symmetric
    np.testing.assert_allclose(m, numpy_iou(boxes, boxes), atol=1e-5)
    assert m.min() >= 0 and m.max() <= 1 + 1e-6


def test_box_formats():
    xyxy = np.array([[0.0, 0.0, 4.0, 2.0], [10.0, 20.0, 30.0, 60.0]], "float32")
    np.testing.assert_allclose(xyxy_to_xywh(xyxy).numpy(), [[2, 1, 4, 2], [20, 40, 20, 40]])
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(xyxy)).numpy(), xyxy)


def test_nms_lecture_walk_through():
    # SEED_CATALOGUE section 13 oracle 6: scores 0.9, 0.85, 0.7, 0.6, 0.5; IoU with the 0.9 box 0.8, 0.3, 0.7,
    # 0.2; IoU(0.7, 0.5) = 0.1; tau = 0.5 -> keep {0.9, 0.7, 0.5}.
    scores = tf.constant([0.9, 0.85, 0.7, 0.6, 0.5])
    overlaps = np.eye(5, dtype="float32")
    for j, v in zip([1, 2, 3, 4], [0.8, 0.3, 0.7, 0.2]):
        overlaps[0, j] = overlaps[j, 0] = v
    overlaps[2, 4] = overlaps[4, 2] = 0.1
    kept = tf.image.non_max_suppression_overlaps(overlaps, scores, 5, overlap_threshold=0.5)
    np.testing.assert_allclose(tf.gather(scores, kept).numpy(), [0.9, 0.7, 0.5])
    # oracle 7 (slide rule): drop pc < 0.6 first -> the 0.5 box goes too
    kept = tf.image.non_max_suppression_overlaps(overlaps, scores, 5, overlap_threshold=0.5, score_threshold=0.6)
    np.testing.assert_allclose(tf.gather(scores, kept).numpy(), [0.9, 0.7])


def test_nms_on_boxes_hand_computed():
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [6, 0, 16, 10], [20, 0, 30, 10], [40, 0, 50, 10]]
    # IoU(0, 1) = 90 / 110 = 0.82 -> suppressed; IoU(0, 2) = 40 / 160 = 0.25 -> kept; box 4 scores 0.55 < 0.6
    scores = [0.9, 0.8, 0.7, 0.65, 0.55]
    assert nms(boxes, scores).numpy().tolist() == [0, 2, 3]
    assert nms(boxes, scores, iou_threshold=0.9).numpy().tolist() == [0, 1, 2, 3]


def test_batched_nms_per_class_and_padding():
    boxes = np.array([[[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [30, 30, 40, 40]]], "float32")
    scores = np.array([[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.1, 0.2]]], "float32")
    for fn in (combined_nms, padded_nms):
        out = fn(boxes, scores, max_detections=5)
        n = int(out["num_detections"][0])
        assert n == 2  # box 1 suppressed by box 0 (same class); box 2 is another class: kept; box 3 < 0.6
        np.testing.assert_allclose(out["scores"][0, :n].numpy(), [0.9, 0.7])
        assert out["classes"][0].numpy().tolist() == [0, 1, -1, -1, -1]
        np.testing.assert_allclose(out["boxes"][0, :n].numpy(), [[0, 0, 10, 10], [0, 0, 10, 10]])


def test_padded_matches_combined_on_random_detections():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (2, 60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (2, 60, 2))], -1).astype("float32")
    onehot = np.eye(3)[rng.integers(0, 3, (2, 60))]
    scores = (onehot * rng.uniform(0, 1, (2, 60, 1))).astype("float32")  # one class per box, as padded assumes
    a = combined_nms(boxes, scores, 20, score_threshold=0.3)
    b = padded_nms(boxes, scores, 20, score_threshold=0.3)
    np.testing.assert_array_equal(a["num_detections"].numpy(), b["num_detections"].numpy())
    np.testing.assert_allclose(a["scores"].numpy(), b["scores"].numpy(), atol=1e-6)
    np.testing.assert_allclose(a["boxes"].numpy(), b["boxes"].numpy(), atol=1e-4)
