"""Object detection: box utilities, anchors, YOLO and SSD detectors with their encoders, losses and NMS."""

from toolkit.data.iou import numpy_iou
from toolkit.models.detection.anchors import (
    anchor_sizes,
    grid_anchors,
    kmeans_anchors,
    shape_iou,
    ssd_default_boxes,
    ssd_scales,
)
from toolkit.models.detection.boxes import (
    IOU_THRESHOLD,
    SCORE_THRESHOLD,
    box_iou,
    clip_boxes,
    combined_nms,
    nms,
    padded_nms,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from toolkit.models.detection.ssd import SSDLoss, SSDMatcher, build_ssd, ssd_decode, ssd_detect
from toolkit.models.detection.yolo import YoloEncoder, YoloLoss, build_yolo, cell_anchors, yolo_decode, yolo_detect

__all__ = [
    "IOU_THRESHOLD", "SCORE_THRESHOLD", "SSDLoss", "SSDMatcher", "YoloEncoder", "YoloLoss", "anchor_sizes",
    "box_iou", "build_ssd", "build_yolo", "cell_anchors", "clip_boxes", "combined_nms", "grid_anchors",
    "kmeans_anchors", "nms", "padded_nms", "numpy_iou", "shape_iou", "ssd_decode", "ssd_default_boxes", "ssd_detect",
    "ssd_scales", "xywh_to_xyxy", "xyxy_to_xywh", "yolo_decode", "yolo_detect",
]
