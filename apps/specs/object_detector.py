"""The object-detector task's options and CLI facts, importable without TensorFlow (`toolkit object-detector --help`)."""

from __future__ import annotations

import dataclasses

from apps.config import BaseConfig, TaskSpec, option

MODELS = ("yolo", "ssd")


@dataclasses.dataclass
class Config(BaseConfig):
    """Object-detector options (every field is also a `--flag` of `toolkit object-detector train`)."""

    format: str = option("auto", "annotation format of --data: coco (JSON file), voc (XML folder), yolo "
                         "(images/ + labels/ + classes.txt), or auto (guess)", choices=("auto", "coco", "voc", "yolo"))
    model: str = option("yolo", "detector: yolo (S x S grid, anchors) or ssd (multi-scale default boxes)",
                        choices=MODELS)
    backbone: str = option("builtin", "builtin (multi-scale CNN) | small_cnn | a keras.applications name | .keras")
    weights: str = option("", "backbone weights for keras.applications: imagenet (online), a local file, or empty")
    width: int = option(16, "base width (filters) of the built-in backbone and heads")
    image_size: str = option("128x128", "model input HxW; images are resized (boxes with them)")
    channels: int = option(3, "1 (grey) or 3 (RGB)", choices=(1, 3))
    anchors: int = option(3, "YOLO: anchor boxes per cell (B), chosen by k-means on the training boxes")
    anchor_match: float = option(0.4, "YOLO: also make every anchor of the object's cell with shape IoU >= this "
                                 "responsible (more positives, faster training; met the mAP targets in "
                                 "BENCHMARKS.md); 0: one box per object, the lecture notes' encoding")
    ssd_levels: int = option(3, "SSD: feature maps used (strides 8, 16, 32, ...)")
    lambda_coord: float = option(5.0, "YOLO loss weight of the box terms")
    lambda_noobj: float = option(0.5, "YOLO loss weight of the no-object confidence term")
    neg_pos_ratio: float = option(3.0, "SSD hard negative mining: negatives kept per matched box")
    score_threshold: float = option(0.6, "NMS of the exported model (serving): drop detections scoring below this "
                                    "(seed: pc < 0.6)")
    eval_score_threshold: float = option(0.01, "NMS score threshold when scoring mAP (COCO-style: low, so the "
                                         "precision-recall curve is complete; the serving threshold stays separate)")
    iou_threshold: float = option(0.5, "NMS: suppress boxes with IoU above this against a kept box")
    max_detections: int = option(100, "detections returned per image")
    nms: str = option("auto", "NMS op: combined (tf.image.combined_non_max_suppression), padded "
                      "(tf.image.non_max_suppression_padded: also converts to TFLite and compiles with XLA), "
                      "auto (combined; padded when exporting tflite or tpu)", choices=("auto", "combined", "padded"))
    augment: str = option("flip,scale,color", "comma list of flip, scale (scale/crop), color; or none")
    lr_schedule: str = option("cosine", "constant | cosine", choices=("constant", "cosine"))
    repeat: int = option(1, "passes over the training data per epoch (tiny datasets: fewer, longer epochs)")
    strict: bool = option(False, "refuse any box past the image border (default: boxes past it by at most "
                          "max(2 px, 2 percent of the side) are clipped, with a warning)")
    max_minutes: float = option(0.0, "stop training after this many wall-clock minutes (0: no limit)")
    epochs: int = option(40, "training epochs")
    batch_size: int = option(32, "examples per batch")
    patience: int = option(-1, "early stopping patience on val_loss (-1 disables)")


class ObjectDetectorSpec(TaskSpec):
    name = "object-detector"
    description = "Object detection (YOLO or SSD) from COCO / Pascal VOC / YOLO annotations, NMS in the export."
    config_cls = Config
    model_names = MODELS


SPEC = ObjectDetectorSpec()
