"""The object-detection serving adapter: image bytes in; boxes, scores, classes, labels, count out.

preprocess decodes and resizes the bytes (string ops, outside the compute); postprocess runs the model's
box decoding and NMS (`tf.image.combined_non_max_suppression`) on dense tensors, so NMS is inside every
exported graph; finalize rescales boxes from model-input pixels to each original image's pixels using the
sizes preprocess recorded.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from toolkit.export.adapter import ExtraSignature, ServingAdapter
from toolkit.export.image import image_inputs
from toolkit.export.samples import png_samples, random_samples


def detection_adapter(model, class_names, detect_fn: Callable, sample_images=None, metadata: dict | None = None,
                      detect_at: Callable | None = None) -> ServingAdapter:
    """Serving adapter for a detector taking `[B, H, W, C]` pixels in [0, 255].

    Raw signature `images` (tf.string, encoded bytes, any size) -> `boxes` float32 `[B, D, 4]` pixel
    `(x_min, y_min, x_max, y_max)` in the input image, `scores` `[B, D]`, `classes` int32 `[B, D]` (-1 =
    padding), `labels` string `[B, D]` ("" for padding), `num_detections` int32 `[B]`. The dense signature
    (`pixels`) returns boxes in model-input pixels.

    Args:
        model: the Keras detector.
        class_names: label names, index = class id.
        detect_fn: `fn(model output) -> {"boxes", "scores", "classes", "num_detections"}` (decode + NMS).
        sample_images: a few `[h, w, C]` arrays (any sizes) for the export parity check.
        metadata: extra facts for `toolkit.json` (model kind, thresholds, anchors, ...).
        detect_at: optional `fn(model output, score_threshold) -> detections`; adds the `detect` signature
            (`pixels` + a per-row `score_threshold` -> the dense outputs with NMS at the batch's lowest
            threshold), which evaluation uses to score mAP COCO-style, below the serving threshold.
    """
    inputs = image_inputs(model, "detector")
    height, width, channels = inputs.height, inputs.width, inputs.channels

    def typed(result):
        return {"boxes": tf.cast(result["boxes"], tf.float32), "scores": tf.cast(result["scores"], tf.float32),
                "classes": tf.cast(result["classes"], tf.int32),
                "num_detections": tf.cast(result["num_detections"], tf.int32)}

    def postprocess(outputs):
        return typed(detect_fn(outputs))

    def finalize(outputs, sizes):
        if sizes is None:
            return outputs
        return {**outputs, "boxes": rescale_boxes(outputs["boxes"], sizes, (height, width))}

    extra = {}
    if detect_at is not None:
        def detect(m, values):
            result = detect_at(m(values["pixels"]), tf.reduce_min(values["score_threshold"]))
            return typed(result)

        rows = len(sample_images) if sample_images is not None else 3
        extra["detect"] = ExtraSignature(
            {"pixels": inputs.dense_inputs["pixels"],
             "score_threshold": tf.TensorSpec([None], tf.float32, name="score_threshold")}, detect,
            {"pixels": random_samples((height, width, channels), rows).astype("float32"),
             "score_threshold": [0.01] * rows},
            "pixels + score_threshold per row -> boxes (model-input pixels), scores, classes, num_detections with "
            "NMS at the lowest threshold of the batch (mAP evaluation)")

    return ServingAdapter(
        task="object_detection",
        raw_inputs=inputs.raw_inputs,
        dense_inputs=inputs.dense_inputs,
        preprocess=inputs.preprocess,
        postprocess=postprocess,
        finalize=finalize,
        labels=list(class_names),
        sample_raw=png_samples(sample_images),
        extra_signatures=extra,
        metadata={
            "input": {"images": "encoded image bytes (PNG/JPEG/BMP/GIF), any size",
                      "pixels": f"float32 [batch, {height}, {width}, {channels}] in [0, 255]"},
            "outputs": {"boxes": "float32 [batch, max_detections, 4] (x_min, y_min, x_max, y_max) in input-image "
                                 "pixels (serving_dense: model-input pixels)",
                        "scores": "float32 [batch, max_detections]", "classes": "int32, -1 = padding",
                        "labels": "string, '' = padding", "num_detections": "int32 [batch]"},
            "preprocessing": {"decode_channels": int(channels), "resize": [int(height), int(width)],
                              "resize_method": "bilinear", "normalization": "inside the model"},
            **(metadata or {}),
        },
    )


def rescale_boxes(boxes, sizes, model_size):
    """Boxes in model-input pixels -> original-image pixels (`sizes` int `[B, 2]` as (height, width)), clipped."""
    sizes = tf.cast(sizes, tf.float32)
    factor = tf.stack([sizes[:, 1] / model_size[1], sizes[:, 0] / model_size[0]] * 2, axis=1)[:, None, :]
    limits = tf.stack([sizes[:, 1], sizes[:, 0]] * 2, axis=1)[:, None, :]
    return tf.clip_by_value(tf.cast(boxes, tf.float32) * factor, 0.0, limits)


def sample_images(shape, count: int = 3, seed: int = 0) -> list:
    """Parity-check images of varied sizes around `shape` (so the raw path's rescaling is exercised)."""
    height, width, _ = shape
    sizes = [(height, width), (height * 2, width), (max(8, height // 2), width + 7)][:count]
    return random_samples(shape, sizes=sizes, seed=seed)
