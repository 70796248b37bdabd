"""COCO-style detection metrics: mAP@0.5, mAP@[0.5:0.95], per-class AP, via pycocotools behind an adapter.

pycocotools is the reference implementation (101-point interpolated precision, greedy matching by score,
IoU thresholds 0.50:0.05:0.95); wrapping it guarantees agreement instead of re-deriving its details.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np


def coco_map(ground_truth, detections, class_names, max_detections: int = 100) -> dict:
    """COCO mAP of `detections` against `ground_truth`.

    Args:
        ground_truth: per image `(boxes [k, 4] pixel xyxy, classes [k])`.
        detections: per image `(boxes [d, 4] pixel xyxy, scores [d], classes [d])` (padding rows with
            class < 0 are ignored).
        class_names: names, index = class id.
        max_detections: detections per image considered (COCO's 100).

    Returns:
        dict: `map_50`, `map_75`, `map` (mAP@[0.5:0.95]), `per_class` {name: {"ap": AP@[.5:.95],
        "ap_50": AP@0.5, "instances": n}}; classes without ground truth are left out of the means (as in
        pycocotools).

    Examples:
    >>> gt = [(np.array([[0, 0, 10, 10]]), np.array([0]))]
    >>> det = [(np.array([[0, 0, 10, 10]]), np.array([0.9]), np.array([0]))]
    >>> coco_map(gt, det, ["a"])["map"]
    1.0
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(ground_truth) != len(detections):
        raise ValueError(f"{len(ground_truth)} ground-truth images but {len(detections)} detection lists")
    images, annotations, results = [], [], []
    for image_id, ((gt_boxes, gt_classes), det) in enumerate(zip(ground_truth, detections), start=1):
        gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
        width = float(max(1.0, gt_boxes[:, 2].max(initial=1.0)))
        height = float(max(1.0, gt_boxes[:, 3].max(initial=1.0)))
        images.append({"id": image_id, "width": width, "height": height})
        for box, cls in zip(gt_boxes, np.asarray(gt_classes).reshape(-1)):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls) + 1,
                                "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": 0})
        boxes, scores, classes = (np.asarray(v) for v in det)
        boxes = boxes.reshape(-1, 4)
        for box, score, cls in zip(boxes, scores.reshape(-1), classes.reshape(-1)):
            if cls < 0:
                continue
            results.append({"image_id": image_id, "category_id": int(cls) + 1, "score": float(score),
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    categories = [{"id": i + 1, "name": str(n)} for i, n in enumerate(class_names)]
    instances = np.bincount([a["category_id"] - 1 for a in annotations], minlength=len(class_names))
    empty = {"map": 0.0, "map_50": 0.0, "map_75": 0.0,
             "per_class": {str(n): {"ap": 0.0, "ap_50": 0.0, "instances": int(instances[i])}
                           for i, n in enumerate(class_names) if instances[i]}}
    if not annotations or not results:
        return empty
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.maxDets = [1, 10, max_detections]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # [T, R, K] at area "all", max detections
    per_class = {}
    for k, name in enumerate(class_names):
        if not instances[k]:
            continue
        p = precision[:, :, k]
        per_class[str(name)] = {"ap": _mean_valid(p), "ap_50": _mean_valid(p[0]), "instances": int(instances[k])}
    stats = evaluator.stats
    return {"map": float(max(stats[0], 0.0)), "map_50": float(max(stats[1], 0.0)),
            "map_75": float(max(stats[2], 0.0)), "per_class": per_class}


def _mean_valid(values) -> float:
    values = np.asarray(values)
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else 0.0


def format_map(metrics: dict) -> str:
    """The mAP table as text: overall mAP@0.5 / @0.75 / @[.5:.95] and one row per class."""
    lines = [f"mAP@[.5:.95] {metrics['map']:.4f}   mAP@0.5 {metrics['map_50']:.4f}   "
             f"mAP@0.75 {metrics.get('map_75', 0.0):.4f}", f"{'class':>16} {'AP@[.5:.95]':>12} {'AP@0.5':>8} {'n':>6}"]
    for name, row in metrics.get("per_class", {}).items():
        lines.append(f"{name:>16} {row['ap']:>12.4f} {row['ap_50']:>8.4f} {row['instances']:>6d}")
    return "\n".join(lines)


def pr_curves(ground_truth, detections, class_names, iou_threshold: float = 0.5, points: int = 50) -> dict:
    """Per-class precision-recall curves at one IoU threshold (greedy matching by score, as in COCO).

    Args:
        ground_truth, detections: as for `coco_map` (the same lists the score step builds).
        class_names: names, index = class id.
        iou_threshold: a detection matches an unmatched ground-truth box of its class at IoU >= this.
        points: the curve is thinned to at most this many points (it goes into metrics.json).

    Returns:
        `{name: {"precision": [...], "recall": [...], "ap": all-point interpolated AP, "instances": n}}` for
        every class with ground truth.

    Examples:
    >>> gt = [(np.array([[0, 0, 10, 10]]), np.array([0]))]
    >>> det = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0.9, 0.5]), np.array([0, 0]))]
    >>> curve = pr_curves(gt, det, ["a"])["a"]
    >>> curve["precision"], curve["recall"], curve["ap"]
    ([1.0, 1.0, 0.5], [0.0, 1.0, 1.0], 1.0)
    """
    curves = {}
    for k, name in enumerate(class_names):
        truth = [np.asarray(b, np.float64).reshape(-1, 4)[np.asarray(c).reshape(-1) == k] for b, c in ground_truth]
        instances = sum(len(t) for t in truth)
        if not instances:
            continue
        found = []  # (score, image, box)
        for image, (boxes, scores, classes) in enumerate(detections):
            boxes, scores, classes = np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1), \
                np.asarray(classes).reshape(-1)
            found += [(float(s), image, b) for b, s, c in zip(boxes, scores, classes) if c == k]
        found.sort(key=lambda item: -item[0])
        matched = [np.zeros(len(t), bool) for t in truth]
        hits = []
        for _, image, box in found:
            gt = truth[image]
            overlap = np.where(matched[image], -1.0, _iou(box, gt)) if len(gt) else np.zeros(0)
            best = int(np.argmax(overlap)) if len(overlap) else -1
            hit = best >= 0 and overlap[best] >= iou_threshold
            if hit:
                matched[image][best] = True
            hits.append(hit)
        tp = np.cumsum(hits) if hits else np.zeros(0)
        precision = np.concatenate([[1.0], tp / np.arange(1, len(tp) + 1)])
        recall = np.concatenate([[0.0], tp / instances])
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        ap = float(np.sum(np.diff(recall) * envelope[1:]))
        keep = np.unique(np.linspace(0, len(precision) - 1, min(points, len(precision))).round().astype(int))
        curves[str(name)] = {"precision": [round(float(v), 4) for v in precision[keep]],
                             "recall": [round(float(v), 4) for v in recall[keep]], "ap": round(ap, 4),
                             "instances": int(instances)}
    return curves


def _iou(box, boxes) -> np.ndarray:
    box = np.asarray(box, np.float64)
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    return inter / np.maximum(union, 1e-9)
