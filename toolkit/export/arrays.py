"""The serving adapter of a classifier of numeric arrays (sequences `[B, T, C]`, volumes `[B, D, H, W, C]`):
raw float arrays in, class probabilities, the arg-max class and its label out (the array-classifier app's export).
"""

from __future__ import annotations

import tensorflow as tf

from toolkit.export.adapter import ServingAdapter
from toolkit.export.samples import random_samples

INPUT = "arrays"


def array_classification_adapter(model, class_names) -> ServingAdapter:
    """Serving adapter for a classifier of float arrays `[B, *sample_shape]` returning probabilities.

    Raw and dense signature: `arrays` (float32 `[B, T, C]` or `[B, D, H, W, C]`, raw values: any standardization
    is inside the model) -> `scores` (float32 `[B, K]` probabilities), `classes` (int32 `[B]`, the arg-max),
    `labels` (tf.string `[B]`).
    """
    shape = tuple(model.input_shape[1:])
    spec = {INPUT: tf.TensorSpec([None, *shape], tf.float32, name=INPUT)}

    def postprocess(probabilities):
        probabilities = tf.cast(probabilities, tf.float32)
        return {"scores": probabilities, "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    return ServingAdapter(
        task="array_classification", raw_inputs=spec, dense_inputs=spec, preprocess=lambda raw: (raw, None),
        postprocess=postprocess, labels=list(class_names),
        sample_raw={INPUT: random_samples(shape, 3, kind="normal")},
        metadata={"input": {INPUT: f"float32 [batch, {', '.join(str(d) for d in shape)}], raw values"},
                  "preprocessing": {"normalization": "inside the model"}})

