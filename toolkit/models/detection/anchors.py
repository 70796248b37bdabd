"""Anchor (default / prior) boxes: seed sizes `(s*sqrt(r), s/sqrt(r))`, grids, SSD default boxes, k-means anchors."""

from __future__ import annotations

import numpy as np

from toolkit.data.iou import numpy_iou


def anchor_sizes(scales=(32, 64, 128, 256, 512), ratios=(0.5, 1.0, 2.0)) -> np.ndarray:
    """Anchor `(w, h)` pairs for every scale s and ratio r = w / h: `(s * sqrt(r), s / sqrt(r))` (seed section 4).

    Examples:
    >>> anchor_sizes((32,), (1.0, 4.0)).tolist()
    [[32.0, 32.0], [64.0, 16.0]]
    """
    return np.array([[s * np.sqrt(r), s / np.sqrt(r)] for s in scales for r in ratios], np.float32)


def grid_anchors(feature_size, image_size, sizes) -> np.ndarray:
    """Centre-xywh pixel anchors `[fh * fw * A, 4]` on a feature grid (row-major, anchors innermost).

    Args:
        feature_size: `(fh, fw)` of the feature map.
        image_size: `(H, W)` of the model input.
        sizes: `[A, 2]` anchor `(w, h)` in pixels.
    """
    fh, fw = feature_size
    height, width = image_size
    sizes = np.asarray(sizes, np.float32).reshape(-1, 2)
    ys = (np.arange(fh, dtype=np.float32) + 0.5) * (height / fh)
    xs = (np.arange(fw, dtype=np.float32) + 0.5) * (width / fw)
    cy, cx = np.meshgrid(ys, xs, indexing="ij")
    centres = np.stack([cx, cy], -1)[:, :, None, :].repeat(len(sizes), axis=2)
    wh = np.broadcast_to(sizes, centres.shape)
    return np.concatenate([centres, wh], -1).reshape(-1, 4).astype(np.float32)


def ssd_scales(levels: int, s_min: float = 0.1, s_max: float = 0.6) -> list:
    """SSD paper scales s_k = s_min + (s_max - s_min)(k - 1)/(m - 1), as fractions of the image side.

    The lecture notes give no scale formula (SEED_CATALOGUE section 14), so this is the SSD paper's.
    """
    if levels == 1:
        return [float(s_min)]
    return [float(s_min + (s_max - s_min) * k / (levels - 1)) for k in range(levels)]


def ssd_box_sizes(scale: float, next_scale: float, aspect_ratios, image_size) -> np.ndarray:
    """Default-box `(w, h)` pixels of one level: each ratio at `scale`, plus ratio 1 at sqrt(s_k * s_k+1)."""
    height, width = image_size
    sizes = [(scale * np.sqrt(r), scale / np.sqrt(r)) for r in aspect_ratios]
    extra = np.sqrt(scale * next_scale)
    sizes.append((extra, extra))
    return np.array([(w * width, h * height) for w, h in sizes], np.float32)


def ssd_default_boxes(image_size, feature_sizes, scales=None, aspect_ratios=(1.0, 2.0, 0.5, 3.0, 1 / 3)):
    """All SSD default boxes (centre xywh pixels), level by level, and the boxes-per-position count.

    Args:
        image_size: `(H, W)` of the model input.
        feature_sizes: `[(fh, fw), ...]` of the prediction feature maps, finest first.
        scales: per-level scales (fractions of the image side); default `ssd_scales(len(feature_sizes))`.
        aspect_ratios: width / height ratios at every level (an extra ratio-1 box is added per level).

    Returns:
        `(boxes [N, 4], boxes_per_position)`.

    Examples:
    >>> boxes, per = ssd_default_boxes((64, 64), [(4, 4), (2, 2)], aspect_ratios=(1.0,))
    >>> boxes.shape, per
    ((40, 4), 2)
    """
    scales = list(scales) if scales is not None else ssd_scales(len(feature_sizes))
    if len(scales) != len(feature_sizes):
        raise ValueError(f"need one scale per feature map: {len(feature_sizes)} maps, {len(scales)} scales")
    out = []
    for k, size in enumerate(feature_sizes):
        next_scale = scales[k + 1] if k + 1 < len(scales) else min(1.0, scales[k] * 1.5)
        out.append(grid_anchors(size, image_size, ssd_box_sizes(scales[k], next_scale, aspect_ratios, image_size)))
    return np.concatenate(out, 0), len(aspect_ratios) + 1


def kmeans_anchors(wh, k: int, iterations: int = 50, seed: int = 0) -> np.ndarray:
    """k-means on box `(w, h)` with 1 - IoU distance (YOLOv2's anchor choice); `[k, 2]` sorted by area.

    Args:
        wh: `[N, 2]` box widths and heights.
        k: number of anchors.
    """
    wh = np.asarray(wh, np.float32).reshape(-1, 2)
    if len(wh) == 0:
        raise ValueError("kmeans_anchors needs at least one box")
    rng = np.random.default_rng(seed)
    centres = wh[rng.choice(len(wh), size=min(k, len(wh)), replace=False)]
    while len(centres) < k:
        centres = np.concatenate([centres, centres[:1] * (1.0 + 0.1 * len(centres))])
    for _ in range(iterations):
        assign = np.argmax(shape_iou(wh, centres), axis=1)
        new = np.array([np.median(wh[assign == j], 0) if np.any(assign == j) else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return centres[np.argsort(centres[:, 0] * centres[:, 1])].astype(np.float32)


def shape_iou(wh1, wh2) -> np.ndarray:
    """IoU of boxes sharing one centre, from `(w, h)` only: `[N, M]`."""
    a = np.asarray(wh1, np.float32).reshape(-1, 2)
    b = np.asarray(wh2, np.float32).reshape(-1, 2)
    return numpy_iou(np.concatenate([-a / 2, a / 2], 1), np.concatenate([-b / 2, b / 2], 1))
