"""The anomaly detector's serving adapter: image bytes (or pixels) -> anomaly score, flag and threshold.

Signatures: `serving_default` (encoded image bytes, any size, decoded and resized in the graph) and
`serving_dense` (float32 pixels in [0, 255]) both return `score` (float32 `[B]`: the reconstruction MSE on [0, 1],
or the negative ELBO in nats for a VAE), `is_anomaly` (int32 `[B]`, 1 when `score > threshold`), `threshold`
(float32 `[B]`, the decision threshold the model holds) and `labels` (`"normal"` / `"anomalous"`). The threshold,
the false-positive rate it was picked at and the score's name are also in `assets.extra/toolkit.json`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from toolkit.data.images import encode_png
from toolkit.export.adapter import ServingAdapter
from toolkit.export.image import decode_images

LABELS = ["normal", "anomalous"]


class AnomalyAdapter(ServingAdapter):
    """Calls an `AnomalyDetector` and adds its threshold as an output."""

    def call_model(self, model, dense):
        outputs = model(dense["pixels"], training=False)
        score = tf.cast(outputs["score"], tf.float32)
        threshold = tf.fill(tf.shape(score), tf.cast(model.threshold, tf.float32))
        return {"score": score, "is_anomaly": tf.cast(outputs["is_anomaly"], tf.int32), "threshold": threshold}


def anomaly_adapter(model, sample_images, target_fpr: float | None = None) -> AnomalyAdapter:
    """The serving adapter of an `AnomalyDetector` (see the module docstring).

    Args:
        model: a calibrated `toolkit.models.autoencoders.AnomalyDetector`.
        sample_images: a few `[H, W, C]` arrays in [0, 255] for the export parity check.
        target_fpr: the false-positive rate the threshold was picked at (recorded in the metadata).
    """
    height, width, channels = model.image_shape
    threshold = float(model.threshold.numpy())
    if not np.isfinite(threshold):
        raise ValueError("the anomaly detector has no threshold yet (it flags nothing); calibrate it on normal "
                         "data first (AnomalyDetector.calibrate)")

    def preprocess(raw):
        return {"pixels": decode_images(raw["images"], (height, width), channels)[0]}, None

    return AnomalyAdapter(
        task="anomaly_detection",
        raw_inputs={"images": tf.TensorSpec([None], tf.string, name="images")},
        dense_inputs={"pixels": tf.TensorSpec([None, height, width, channels], tf.float32, name="pixels")},
        preprocess=preprocess,
        postprocess=lambda outputs: outputs,
        labels=list(LABELS),
        label_source="is_anomaly",
        sample_raw={"images": [encode_png(np.asarray(im)) for im in sample_images]},
        metadata={
            "input": {"images": "encoded image bytes (PNG/JPEG/BMP/GIF), any size",
                      "pixels": f"float32 [batch, {height}, {width}, {channels}] in [0, 255]"},
            "preprocessing": {"decode_channels": int(channels), "resize": [int(height), int(width)],
                              "resize_method": "bilinear", "normalization": "inside the model"},
            "anomaly": {"score": model.score_name, "threshold": threshold, "target_fpr": target_fpr,
                        "flag": "is_anomaly = score > threshold (1: anomalous)"},
        },
    )
