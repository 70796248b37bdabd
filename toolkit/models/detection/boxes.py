"""Box utilities: format conversion, in-graph IoU, NMS (on keras.utils.bounding_boxes and tf.image).

Boxes are pixel `(x_min, y_min, x_max, y_max)` ("xyxy") unless a function says otherwise; `xywh` here means
centre x, centre y, width, height (keras calls it "center_xywh").
"""

from __future__ import annotations

import keras
import tensorflow as tf

SCORE_THRESHOLD = 0.6  # seed NMS: drop boxes with pc < 0.6 ...
IOU_THRESHOLD = 0.5  # ... then suppress boxes with IoU > 0.5 against a kept one


def xyxy_to_xywh(boxes):
    """`(x1, y1, x2, y2)` -> `(xc, yc, w, h)`: x_c = (x1 + x2) / 2, w = x2 - x1.

    Examples:
    >>> xyxy_to_xywh([[0.0, 0.0, 4.0, 2.0]]).numpy().tolist()
    [[2.0, 1.0, 4.0, 2.0]]
    """
    return keras.utils.bounding_boxes.convert_format(tf.cast(boxes, tf.float32), "xyxy", "center_xywh")


def xywh_to_xyxy(boxes):
    """`(xc, yc, w, h)` -> `(x1, y1, x2, y2)`."""
    return keras.utils.bounding_boxes.convert_format(tf.cast(boxes, tf.float32), "center_xywh", "xyxy")


def box_iou(boxes1, boxes2):
    """Pairwise IoU `[N, M]` of xyxy boxes, in the graph: `toolkit.data.iou.numpy_iou`'s definition on keras'
    compute_iou (which adds 1e-7 to the union).

    Args:
        boxes1: `[N, 4]` xyxy boxes (or `[B, N, 4]`).
        boxes2: `[M, 4]` xyxy boxes (or `[B, M, 4]`).

    Examples:
    >>> float(box_iou([[0., 0., 2., 2.]], [[1., 1., 3., 3.]])[0, 0])  # 1 / (4 + 4 - 1)
    0.1428571492433548
    """
    return keras.utils.bounding_boxes.compute_iou(
        tf.cast(boxes1, tf.float32), tf.cast(boxes2, tf.float32), bounding_box_format="xyxy"
    )


def nms(boxes, scores, iou_threshold: float = IOU_THRESHOLD, score_threshold: float = SCORE_THRESHOLD,
        max_output: int = 100):
    """Single-class NMS (seed rule): drop scores < `score_threshold`, keep the best, suppress IoU > threshold.

    Returns the kept indices (descending score), via `tf.image.non_max_suppression`.

    Examples:
    >>> b = [[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]]
    >>> nms(b, [0.9, 0.8, 0.7]).numpy().tolist()
    [0, 2]
    """
    # tf.image keeps scores >= score_threshold; the seed drops pc < 0.6, i.e. keeps pc >= 0.6: the same.
    return tf.image.non_max_suppression(
        tf.cast(boxes, tf.float32), tf.cast(scores, tf.float32), max_output,
        iou_threshold=iou_threshold, score_threshold=score_threshold,
    )


def combined_nms(boxes, class_scores, max_detections: int = 100, iou_threshold: float = IOU_THRESHOLD,
                 score_threshold: float = SCORE_THRESHOLD, max_per_class: int | None = None):
    """Batched per-class NMS with `tf.image.combined_non_max_suppression` (stays in the exported graph).

    Args:
        boxes: `[B, N, 4]` xyxy boxes (any units; NMS is scale-invariant).
        class_scores: `[B, N, K]` per-class scores.
        max_detections: detections kept per image (outputs are padded to this size).
        iou_threshold: suppress a box whose IoU with a kept box of its class exceeds this.
        score_threshold: drop boxes whose score is below this.
        max_per_class: candidates per class (default `max_detections`).

    Returns:
        dict: `boxes` `[B, D, 4]` xyxy, `scores` `[B, D]`, `classes` int32 `[B, D]` (-1 for padding),
        `num_detections` int32 `[B]`.
    """
    boxes = tf.cast(boxes, tf.float32)
    # combined_nms works on (y1, x1, y2, x2) with any scale; we pass xyxy reordered, then reorder back.
    yxyx = tf.gather(boxes, [1, 0, 3, 2], axis=-1)[:, :, None, :]
    out_boxes, scores, classes, valid = tf.image.combined_non_max_suppression(
        yxyx, tf.cast(class_scores, tf.float32), max_output_size_per_class=max_per_class or max_detections,
        max_total_size=max_detections, iou_threshold=iou_threshold, score_threshold=score_threshold,
        clip_boxes=False,
    )
    mask = tf.range(max_detections)[None, :] < valid[:, None]
    classes = tf.where(mask, tf.cast(classes, tf.int32), -1)
    return {
        "boxes": tf.gather(out_boxes, [1, 0, 3, 2], axis=-1),
        "scores": scores,
        "classes": classes,
        "num_detections": tf.cast(valid, tf.int32),
    }


def clip_boxes(boxes, height, width):
    """Clips xyxy pixel boxes to the image `[0, width] x [0, height]`."""
    boxes = tf.cast(boxes, tf.float32)
    limits = tf.cast(tf.stack([width, height, width, height]), tf.float32)
    return tf.clip_by_value(boxes, 0.0, limits)


def padded_nms(boxes, class_scores, max_detections: int = 100, iou_threshold: float = IOU_THRESHOLD,
               score_threshold: float = SCORE_THRESHOLD, class_offset: float = 1e4):
    """Batched class-aware NMS with `tf.image.non_max_suppression_padded`: same outputs as `combined_nms`.

    Each box takes its best class (arg-max score); boxes are shifted by `class id * class_offset` so boxes of
    different classes never overlap, then one padded NMS runs per image. Unlike
    `combined_non_max_suppression` (no TFLite builtin, no XLA kernel), this converts to TFLite builtins and
    ONNX and compiles with XLA, so NMS stays inside every exported format. `class_offset` must exceed the
    largest coordinate.
    """
    boxes = tf.cast(boxes, tf.float32)
    class_scores = tf.cast(class_scores, tf.float32)
    scores = tf.reduce_max(class_scores, -1)
    classes = tf.argmax(class_scores, -1, output_type=tf.int32)
    shifted = boxes + tf.cast(classes, tf.float32)[..., None] * class_offset
    index, valid = tf.image.non_max_suppression_padded(
        tf.gather(shifted, [1, 0, 3, 2], axis=-1), scores, max_detections, iou_threshold=iou_threshold,
        score_threshold=score_threshold, pad_to_max_output_size=True)
    mask = tf.range(max_detections)[None, :] < valid[:, None]
    return {
        "boxes": tf.where(mask[..., None], tf.gather(boxes, index, batch_dims=1), 0.0),
        "scores": tf.where(mask, tf.gather(scores, index, batch_dims=1), 0.0),
        "classes": tf.where(mask, tf.gather(classes, index, batch_dims=1), -1),
        "num_detections": tf.cast(valid, tf.int32),
    }


NMS_METHODS = {"combined": combined_nms, "padded": padded_nms}
