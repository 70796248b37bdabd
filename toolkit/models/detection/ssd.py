"""SSD detector: multi-scale default boxes, IoU matching, Smooth-L1 + softmax loss with 3:1 hard negatives.

Output `[B, N, 4 + K + 1]`: per default box the offsets `(dx, dy, dw, dh)` (seed decode:
x = x_a + dx * w_a, w = w_a * exp(dw), scaled by the usual variances 0.1 / 0.2) and K + 1 class logits,
class 0 = background.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from toolkit.models.detection.anchors import ssd_default_boxes
from toolkit.models.detection.backbone import feature_maps
from toolkit.models.detection.boxes import IOU_THRESHOLD, NMS_METHODS, SCORE_THRESHOLD, box_iou

VARIANCE = (0.1, 0.1, 0.2, 0.2)


def build_ssd(input_shape, num_classes: int, boxes_per_position: int, levels: int = 3, backbone: str = "builtin",
              width: int = 16, weights: str | None = None, name: str = "ssd") -> keras.Model:
    """SSD: raw pixels `[B, H, W, C]` in [0, 255] -> `[B, N, 4 + K + 1]` (offsets, class logits incl. background).

    Args:
        input_shape: `(H, W, C)`.
        num_classes: K (background excluded).
        boxes_per_position: default boxes per feature-map position (`ssd_default_boxes(...)[1]`).
        levels: feature maps used (finest first).
        backbone: `"builtin"` or a `toolkit.models.transfer.build_backbone` spec.
        width: base filters.
        weights: transfer backbone weights.

    Examples:
    >>> m = build_ssd((64, 64, 3), 2, 4, levels=2)
    >>> tuple(m.output.shape)  # 8x8 and 4x4 maps, 4 boxes each
    (None, 320, 7)
    """
    inputs = keras.Input(input_shape, name="images")
    features = feature_maps(inputs, backbone, width, weights, levels=levels)
    locs, confs = [], []
    for k, feature in enumerate(features):
        loc = keras.layers.Conv2D(boxes_per_position * 4, 3, padding="same", name=f"ssd_loc{k}")(feature)
        conf = keras.layers.Conv2D(boxes_per_position * (num_classes + 1), 3, padding="same", name=f"ssd_conf{k}")(
            feature)
        locs.append(keras.layers.Reshape((-1, 4), name=f"ssd_loc{k}_flat")(loc))
        confs.append(keras.layers.Reshape((-1, num_classes + 1), name=f"ssd_conf{k}_flat")(conf))
    loc = keras.layers.Concatenate(axis=1, name="ssd_loc")(locs) if len(locs) > 1 else locs[0]
    conf = keras.layers.Concatenate(axis=1, name="ssd_conf")(confs) if len(confs) > 1 else confs[0]
    outputs = keras.layers.Concatenate(axis=-1, name="ssd_out")([loc, conf])
    return keras.Model(inputs, outputs, name=name)


def feature_sizes_of(model: keras.Model) -> list:
    """The `(fh, fw)` of each SSD level, read from the model's loc heads (finest first)."""
    sizes, k = [], 0
    while True:
        try:
            layer = model.get_layer(f"ssd_loc{k}")
        except ValueError:
            return sizes
        sizes.append(tuple(int(v) for v in layer.output.shape[1:3]))
        k += 1


def encode_offsets(boxes_xyxy, defaults_xywh):
    """Matched xyxy boxes -> SSD offsets w.r.t. centre-xywh default boxes (with the variances)."""
    boxes = tf.cast(boxes_xyxy, tf.float32)
    d = tf.cast(defaults_xywh, tf.float32)
    cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
    w = tf.maximum(boxes[..., 2] - boxes[..., 0], 1e-3)
    h = tf.maximum(boxes[..., 3] - boxes[..., 1], 1e-3)
    return tf.stack([(cx - d[..., 0]) / d[..., 2] / VARIANCE[0], (cy - d[..., 1]) / d[..., 3] / VARIANCE[1],
                     tf.math.log(w / d[..., 2]) / VARIANCE[2], tf.math.log(h / d[..., 3]) / VARIANCE[3]], -1)


def decode_offsets(offsets, defaults_xywh):
    """SSD offsets -> xyxy boxes: x = x_a + dx * w_a, w = w_a * exp(dw) (variance-scaled)."""
    o = tf.cast(offsets, tf.float32)
    d = tf.cast(defaults_xywh, tf.float32)
    cx = d[..., 0] + o[..., 0] * VARIANCE[0] * d[..., 2]
    cy = d[..., 1] + o[..., 1] * VARIANCE[1] * d[..., 3]
    w = d[..., 2] * tf.exp(tf.clip_by_value(o[..., 2] * VARIANCE[2], -8.0, 8.0))
    h = d[..., 3] * tf.exp(tf.clip_by_value(o[..., 3] * VARIANCE[3], -8.0, 8.0))
    return tf.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


class SSDMatcher:
    """Ground truth -> per-default-box targets `[N, 5]`: 4 offsets and the class (0 background, id + 1).

    Matching (SSD paper; the notes give no rule): every default box whose IoU with some ground-truth box is
    >= `iou_threshold` takes its best ground truth, and every ground-truth box also takes its single best
    default box, so no object goes unmatched.

    Args:
        default_boxes: `[N, 4]` centre-xywh pixel default boxes.
        iou_threshold: positive-match IoU (0.5).
    """

    def __init__(self, default_boxes, iou_threshold: float = 0.5):
        self.default_boxes = np.asarray(default_boxes, np.float32)
        self.iou_threshold = float(iou_threshold)
        d = self.default_boxes
        self._defaults_xyxy = np.concatenate([d[:, :2] - d[:, 2:] / 2, d[:, :2] + d[:, 2:] / 2], 1)

    def match(self, boxes, classes):
        """Returns `(matched gt index [N] (-1 = background), IoU with it [N])`."""
        boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
        n = self.default_boxes.shape[0]
        iou = box_iou(boxes, tf.constant(self._defaults_xyxy))  # [G, N]
        iou = tf.concat([iou, tf.zeros([1, n])], 0)  # a dummy row keeps argmax defined with no ground truth
        best_gt = tf.argmax(iou, axis=0, output_type=tf.int32)
        best_iou = tf.reduce_max(iou, axis=0)
        num_gt = tf.shape(boxes)[0]
        best_default = tf.argmax(iou[:num_gt], axis=1, output_type=tf.int32)  # [G]
        best_gt = tf.tensor_scatter_nd_update(best_gt, best_default[:, None], tf.range(num_gt))
        best_iou = tf.tensor_scatter_nd_update(best_iou, best_default[:, None], tf.ones([num_gt]))
        matched = tf.where(best_iou >= self.iou_threshold, best_gt, -1)
        return matched, best_iou

    def encode(self, boxes, classes):
        boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
        classes = tf.reshape(tf.cast(classes, tf.int32), [-1])
        matched, _ = self.match(boxes, classes)
        safe = tf.maximum(matched, 0)
        padded_boxes = tf.concat([boxes, tf.constant([[0.0, 0.0, 1.0, 1.0]])], 0)
        padded_classes = tf.concat([classes, [0]], 0)
        offsets = encode_offsets(tf.gather(padded_boxes, safe), self.default_boxes)
        labels = tf.where(matched >= 0, tf.gather(padded_classes, safe) + 1, 0)
        offsets = tf.where(matched[:, None] >= 0, offsets, 0.0)
        return tf.concat([offsets, tf.cast(labels, tf.float32)[:, None]], 1)


@keras.saving.register_keras_serializable(package="toolkit")
class SSDLoss(keras.losses.Loss):
    """SSD loss L = (1/N)(L_conf + alpha * L_loc) with 3:1 hard negative mining (seed section 4).

    L_loc is Smooth-L1 (Huber with delta 1: 0.5 x^2 if |x| < 1 else |x| - 0.5) over matched boxes;
    L_conf is softmax cross-entropy over the matched boxes plus, per image, the `neg_pos_ratio` x (matched
    count) background boxes with the highest confidence loss; N is the number of matched boxes in the batch.

    Args:
        num_classes: K (background excluded).
        alpha: weight of the localisation loss (1).
        neg_pos_ratio: negatives kept per positive (3).

    Examples:
    Two default boxes, one matched to class 1 (label 2; 0 = background), one background:

    >>> y_true = np.array([[[0, 0, 0, 0, 2], [0, 0, 0, 0, 0]]], "float32")   # [B, N, 4 offsets + label]
    >>> y_pred = np.zeros((1, 2, 4 + 2 + 1), "float32")
    >>> y_pred[0, 0, 0] = 0.5   # Smooth-L1: 0.5 * 0.5 ** 2 = 0.125
    >>> loss = SSDLoss(num_classes=2)   # conf: 2 boxes (1 positive + 1 hard negative) x ln 3, N = 1
    >>> round(float(loss(y_true, y_pred)), 4), round(float(2 * np.log(3) + 0.125), 4)
    (2.3222, 2.3222)
    >>> SSDLoss.from_config(loss.get_config()).neg_pos_ratio
    3.0
    """

    def __init__(self, num_classes: int, alpha: float = 1.0, neg_pos_ratio: float = 3.0, name: str = "ssd_loss",
                 **kwargs):
        kwargs["reduction"] = "sum"
        super().__init__(name=name, **kwargs)
        self.num_classes, self.alpha, self.neg_pos_ratio = int(num_classes), float(alpha), float(neg_pos_ratio)

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        y_pred = tf.cast(y_pred, tf.float32)
        labels = tf.cast(y_true[..., 4], tf.int32)
        positive = labels > 0
        pos_f = tf.cast(positive, tf.float32)
        num_pos = tf.reduce_sum(pos_f, axis=1)  # [B]
        diff = tf.abs(y_pred[..., :4] - y_true[..., :4])
        smooth_l1 = tf.reduce_sum(tf.where(diff < 1.0, 0.5 * diff**2, diff - 0.5), -1)
        loc = tf.reduce_sum(smooth_l1 * pos_f, axis=1)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, y_pred[..., 4:])
        negative_ce = tf.where(positive, -1.0, ce)
        rank = tf.argsort(tf.argsort(negative_ce, axis=1, direction="DESCENDING"), axis=1)
        num_neg = tf.minimum(self.neg_pos_ratio * num_pos, tf.cast(tf.shape(labels)[1], tf.float32) - num_pos)
        hard_negative = tf.cast(rank, tf.float32) < num_neg[:, None]
        conf_mask = tf.cast(positive | hard_negative, tf.float32)
        conf = tf.reduce_sum(ce * conf_mask, axis=1)
        total_pos = tf.maximum(tf.reduce_sum(num_pos), 1.0)
        return (conf + self.alpha * loc) / total_pos

    def get_config(self):
        config = super().get_config()
        config.pop("reduction", None)
        return {**config, "num_classes": self.num_classes, "alpha": self.alpha, "neg_pos_ratio": self.neg_pos_ratio}


def ssd_decode(raw, default_boxes):
    """Raw output `[B, N, 4 + K + 1]` -> `(boxes [B, N, 4] pixel xyxy, class scores [B, N, K])` (softmax, no bg)."""
    raw = tf.cast(raw, tf.float32)
    boxes = decode_offsets(raw[..., :4], tf.constant(np.asarray(default_boxes, np.float32))[None])
    return boxes, tf.nn.softmax(raw[..., 4:])[..., 1:]


def ssd_detect(raw, default_boxes, max_detections: int = 100, iou_threshold: float = IOU_THRESHOLD,
               score_threshold: float = SCORE_THRESHOLD, method: str = "combined"):
    """Decode + per-class NMS over all levels pooled: `boxes`, `scores`, `classes`, `num_detections`."""
    boxes, scores = ssd_decode(raw, default_boxes)
    if method not in NMS_METHODS:
        raise ValueError(f"method must be one of {tuple(NMS_METHODS)}. Received: method={method!r}")
    return NMS_METHODS[method](boxes, scores, max_detections, iou_threshold, score_threshold)


__all__ = ["SSDLoss", "SSDMatcher", "build_ssd", "decode_offsets", "encode_offsets", "feature_sizes_of",
           "ssd_decode", "ssd_default_boxes", "ssd_detect"]
