"""Intersection over union of pixel xyxy boxes, in numpy: the toolkit's one IoU implementation.

Here, at the bottom of the import flow, so data code (scene generation) uses it without TensorFlow and
without importing the models; `toolkit.models.detection` builds its shape IoU (anchors) and its in-graph
`box_iou` on the same definition.
"""

from __future__ import annotations

import numpy as np


def numpy_iou(boxes1, boxes2, dtype=np.float64) -> np.ndarray:
    """Pairwise IoU `[N, M]` of xyxy boxes: Area(B1 n B2) / Area(B1 u B2) (the lecture notes' corner algorithm).

    Args:
        boxes1: `[N, 4]` (or one `[4]`) pixel `(x_min, y_min, x_max, y_max)` boxes.
        boxes2: `[M, 4]` (or one `[4]`) boxes.
        dtype: the arithmetic's dtype (float64 by default).

    Returns:
        `[N, M]` IoUs in [0, 1]; 0 where the union is empty.

    Examples:
    >>> float(numpy_iou([0, 0, 2, 2], [1, 1, 3, 3])[0, 0])  # 1 / (4 + 4 - 1)
    0.14285714285714285
    """
    a = np.asarray(boxes1, dtype).reshape(-1, 4)
    b = np.asarray(boxes2, dtype).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)

