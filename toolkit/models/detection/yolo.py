"""YOLO-style detector: S x S grid, B anchor boxes per cell, the lecture notes' cell encoding and loss.

Target / prediction layout per cell and box (seed section 4): `[pc, bx, by, bw, bh, c1..ck]` with
`bx, by` in [0, 1] relative to the cell (grid origin top-left) and `bw, bh` in cell units (may exceed 1).
The network predicts raw values `[t_o, t_x, t_y, t_w, t_h, logits...]`: `pc = sigmoid(t_o)`,
`bx = sigmoid(t_x)`, `bw = anchor_w * exp(t_w)` (anchor sizes in cell units), classes = softmax(logits).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from toolkit.models.detection.anchors import shape_iou
from toolkit.models.detection.backbone import _conv, feature_maps
from toolkit.models.detection.boxes import IOU_THRESHOLD, NMS_METHODS, SCORE_THRESHOLD, box_iou


def build_yolo(input_shape, num_classes: int, anchors, backbone: str = "builtin", width: int = 16,
               weights: str | None = None, name: str = "yolo") -> keras.Model:
    """YOLO detector: raw pixels `[B, H, W, C]` in [0, 255] -> raw grid `[B, S, S, A, 5 + K]`.

    The built-in backbone predicts on its stride-8 map fused with the upsampled stride-16 map
    (S = H / 8); a transfer backbone predicts on its last feature map.

    Args:
        input_shape: `(H, W, C)`.
        num_classes: K.
        anchors: `[A, 2]` anchor `(w, h)` in pixels (e.g. `kmeans_anchors` of the training boxes).
        backbone: `"builtin"` or a `toolkit.models.transfer.build_backbone` spec.
        width: base filters.
        weights: transfer backbone weights.

    Examples:
    >>> m = build_yolo((64, 64, 3), 3, [[16, 16], [32, 32]])
    >>> tuple(m.output.shape)
    (None, 8, 8, 2, 8)
    """
    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    inputs = keras.Input(input_shape, name="images")
    if backbone == "builtin":
        c3, c4 = feature_maps(inputs, backbone, width, weights, levels=2)
        up = keras.layers.UpSampling2D(2, name="yolo_up")(c4)
        x = keras.layers.Concatenate(name="yolo_fuse")([c3, up])
    else:
        x = feature_maps(inputs, backbone, width, weights, levels=1)[0]
    x = _conv(x, width * 8, "yolo_head1")
    x = _conv(x, width * 8, "yolo_head2")
    depth = len(anchors) * (5 + num_classes)
    x = keras.layers.Conv2D(depth, 1, name="yolo_out", bias_initializer=keras.initializers.Constant(0.0))(x)
    grid = x.shape[1]
    outputs = keras.layers.Reshape((grid, x.shape[2], len(anchors), 5 + num_classes), name="yolo_grid")(x)
    return keras.Model(inputs, outputs, name=name)


class YoloEncoder:
    """Pixel xyxy boxes + class ids -> the YOLO target grid `[S, S, A, 5 + K]` (TF ops: runs in tf.data).

    Each object is assigned to the cell holding its centre and, in that cell, to the anchor whose shape
    overlaps it most (the "responsible" box of the YOLO loss).

    Args:
        image_size: `(H, W)` of the model input.
        grid: `(S_h, S_w)`.
        anchors: `[A, 2]` anchor `(w, h)` in pixels.
        num_classes: K.
        match_iou: also make every other anchor of the centre cell whose shape IoU with the object is >= this
            responsible for it (more positives per object, as YOLOv4/v5 do); 0 keeps the notes' single box.
    """

    def __init__(self, image_size, grid, anchors, num_classes: int, match_iou: float = 0.0):
        self.match_iou = float(match_iou)
        self.image_size = tuple(int(v) for v in image_size)
        self.grid = tuple(int(v) for v in grid)
        self.anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
        self.num_classes = int(num_classes)
        self.cell = (self.image_size[0] / self.grid[0], self.image_size[1] / self.grid[1])  # (h, w) px

    def encode(self, boxes, classes):
        boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
        classes = tf.cast(tf.reshape(classes, [-1]), tf.int32)
        cell_h, cell_w = self.cell
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 / cell_w
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 / cell_h
        w = (boxes[:, 2] - boxes[:, 0]) / cell_w
        h = (boxes[:, 3] - boxes[:, 1]) / cell_h
        col = tf.clip_by_value(tf.cast(tf.floor(cx), tf.int32), 0, self.grid[1] - 1)
        row = tf.clip_by_value(tf.cast(tf.floor(cy), tf.int32), 0, self.grid[0] - 1)
        shape_ious = _tf_shape_iou(tf.stack([w * cell_w, h * cell_h], 1), self.anchors)  # [n, A]
        anchor = tf.argmax(shape_ious, axis=1, output_type=tf.int32)
        if self.match_iou > 0:  # extra (object, anchor) pairs; the best anchor is written last so it wins ties
            extra = tf.where((shape_ious >= self.match_iou) & (tf.one_hot(anchor, len(self.anchors)) < 0.5))
            objects = tf.concat([tf.cast(extra[:, 0], tf.int32), tf.range(tf.shape(anchor)[0])], 0)
            anchor = tf.concat([tf.cast(extra[:, 1], tf.int32), anchor], 0)
            boxes, classes = tf.gather(boxes, objects), tf.gather(classes, objects)
            cx, cy, w, h, col, row = (tf.gather(v, objects) for v in (cx, cy, w, h, col, row))
        values = tf.concat([
            tf.ones_like(cx)[:, None],
            (cx - tf.cast(col, tf.float32))[:, None], (cy - tf.cast(row, tf.float32))[:, None],
            w[:, None], h[:, None], tf.one_hot(classes, self.num_classes),
        ], axis=1)
        shape = [*self.grid, len(self.anchors), 5 + self.num_classes]
        return tf.tensor_scatter_nd_update(tf.zeros(shape), tf.stack([row, col, anchor], 1), values)

    def decode(self, target, score_threshold: float = 0.5):
        """A target grid back to `(boxes [n, 4] pixel xyxy, classes [n])` (cells with pc >= threshold)."""
        target = np.asarray(target)
        rows, cols, anchors = np.nonzero(target[..., 0] >= score_threshold)
        cell_h, cell_w = self.cell
        values = target[rows, cols, anchors]
        cx, cy = (cols + values[:, 1]) * cell_w, (rows + values[:, 2]) * cell_h
        w, h = values[:, 3] * cell_w, values[:, 4] * cell_h
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        return boxes.astype(np.float32), np.argmax(values[:, 5:], 1).astype(np.int32)


def _tf_shape_iou(wh, anchors):
    """`shape_iou` in the graph: `box_iou` of boxes sharing one centre, from `(w, h)` only: `[N, A]`."""
    anchors = tf.constant(anchors, tf.float32)
    return box_iou(tf.concat([-wh / 2, wh / 2], 1), tf.concat([-anchors / 2, anchors / 2], 1))


@keras.saving.register_keras_serializable(package="toolkit")
class YoloLoss(keras.losses.Loss):
    """The lecture notes' YOLO loss on the cell encoding, summed over cells and averaged over the batch.

    `lambda_coord * sum_obj [(x - x^)^2 + (y - y^)^2 + (sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]`
    `+ sum_obj conf_loss(1, pc) + lambda_noobj * sum_noobj conf_loss(0, pc) + sum_obj class_loss`.

    With `classic=True` the confidence and class terms are the notes' squared errors; by default they are
    binary / categorical cross-entropy (YOLOv3's choice: squared error on a sigmoid has vanishing
    gradients and trains markedly slower), the coordinate terms stay as in the notes.

    Args:
        anchors: `[A, 2]` anchor sizes in cell units (pixel size / cell size).
        lambda_coord: weight of the coordinate terms (5).
        lambda_noobj: weight of the no-object confidence term (0.5).
        classic: use the notes' squared errors for confidence and classes.

    Examples:
    One 1 x 1 grid cell, one anchor (1 x 1 cell), two classes; the object is centred, anchor-sized, class 0:

    >>> y_true = np.array([1, 0.5, 0.5, 1, 1, 1, 0], "float32").reshape(1, 1, 1, 1, 7)
    >>> y_pred = np.zeros((1, 1, 1, 1, 7), "float32")   # sigmoid(0) = 0.5, exp(0) = 1: coordinates exact
    >>> loss = YoloLoss(anchors=[[1.0, 1.0]])   # confidence BCE ln 2 + class CE ln 2
    >>> round(float(loss(y_true, y_pred)), 4), round(float(2 * np.log(2)), 4)
    (1.3863, 1.3863)
    >>> round(float(YoloLoss([[1.0, 1.0]], classic=True)(y_true, y_pred)), 4)   # (1 - 0.5)^2 + 2 x 0.5^2
    0.75
    """

    def __init__(self, anchors, lambda_coord: float = 5.0, lambda_noobj: float = 0.5, classic: bool = False,
                 name: str = "yolo_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.anchors = np.asarray(anchors, np.float32).reshape(-1, 2).tolist()
        self.lambda_coord, self.lambda_noobj, self.classic = float(lambda_coord), float(lambda_noobj), bool(classic)

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        y_pred = tf.cast(y_pred, tf.float32)
        anchors = tf.constant(self.anchors, tf.float32)
        obj = y_true[..., 0]
        noobj = 1.0 - obj
        xy = tf.sigmoid(y_pred[..., 1:3])
        wh = anchors * tf.exp(tf.clip_by_value(y_pred[..., 3:5], -8.0, 8.0))
        coord = tf.reduce_sum(tf.square(xy - y_true[..., 1:3]), -1)
        coord += tf.reduce_sum(tf.square(tf.sqrt(wh) - tf.sqrt(tf.maximum(y_true[..., 3:5], 0.0))), -1)
        if self.classic:
            pc = tf.sigmoid(y_pred[..., 0])
            conf_pos, conf_neg = tf.square(1.0 - pc), tf.square(pc)
            classes = tf.reduce_sum(tf.square(y_true[..., 5:] - tf.nn.softmax(y_pred[..., 5:])), -1)
        else:
            conf_pos = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(obj), y_pred[..., 0])
            conf_neg = tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(obj), y_pred[..., 0])
            classes = tf.nn.softmax_cross_entropy_with_logits(y_true[..., 5:], y_pred[..., 5:])
        per_cell = obj * (self.lambda_coord * coord + conf_pos + classes) + self.lambda_noobj * noobj * conf_neg
        return tf.reduce_sum(tf.reshape(per_cell, [tf.shape(per_cell)[0], -1]), axis=1)

    def get_config(self):
        return {**super().get_config(), "anchors": self.anchors, "lambda_coord": self.lambda_coord,
                "lambda_noobj": self.lambda_noobj, "classic": self.classic}


def yolo_decode(raw, anchors, image_size):
    """Raw grid `[B, S, S, A, 5 + K]` -> `(boxes [B, N, 4] pixel xyxy, class scores [B, N, K])`.

    Class scores are P(class | object) * P(object) (the notes' class-specific confidence).

    Args:
        raw: the model output.
        anchors: `[A, 2]` anchor `(w, h)` in pixels.
        image_size: `(H, W)` of the model input.
    """
    raw = tf.cast(raw, tf.float32)
    grid_h, grid_w, num_anchors = raw.shape[1], raw.shape[2], raw.shape[3]
    cell_h, cell_w = image_size[0] / grid_h, image_size[1] / grid_w
    rows, cols = tf.meshgrid(tf.range(grid_h, dtype=tf.float32), tf.range(grid_w, dtype=tf.float32), indexing="ij")
    cx = (cols[None, :, :, None] + tf.sigmoid(raw[..., 1])) * cell_w
    cy = (rows[None, :, :, None] + tf.sigmoid(raw[..., 2])) * cell_h
    anchors = tf.constant(np.asarray(anchors, np.float32).reshape(-1, 2))
    w = anchors[:, 0] * tf.exp(tf.clip_by_value(raw[..., 3], -8.0, 8.0))
    h = anchors[:, 1] * tf.exp(tf.clip_by_value(raw[..., 4], -8.0, 8.0))
    boxes = tf.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    scores = tf.sigmoid(raw[..., :1]) * tf.nn.softmax(raw[..., 5:])
    n = grid_h * grid_w * num_anchors
    return tf.reshape(boxes, [-1, n, 4]), tf.reshape(scores, [-1, n, raw.shape[-1] - 5])


def yolo_detect(raw, anchors, image_size, max_detections: int = 100, iou_threshold: float = IOU_THRESHOLD,
                score_threshold: float = SCORE_THRESHOLD, method: str = "combined"):
    """Decode + per-class NMS: dict of `boxes` (input pixels), `scores`, `classes`, `num_detections`."""
    boxes, scores = yolo_decode(raw, anchors, image_size)
    if method not in NMS_METHODS:
        raise ValueError(f"method must be one of {tuple(NMS_METHODS)}. Received: method={method!r}")
    return NMS_METHODS[method](boxes, scores, max_detections, iou_threshold, score_threshold)


def cell_anchors(anchors, image_size, grid) -> np.ndarray:
    """Pixel anchor sizes -> cell units (what `YoloLoss` takes)."""
    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    return anchors / np.array([image_size[1] / grid[1], image_size[0] / grid[0]], np.float32)


__all__ = ["YoloEncoder", "YoloLoss", "build_yolo", "cell_anchors", "shape_iou", "yolo_decode", "yolo_detect"]
