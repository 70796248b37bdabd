"""The semantic-segmentation serving adapter: encoded image bytes of any size in, class masks out.

Raw signature (`serving_default`): `images` (tf.string `[B]`) -> `masks` (int32 `[B, H_max, W_max]`: each
image's class mask at its own input size, padded with -1 to the largest image of the batch) and
`image_sizes` (int32 `[B, 2]`, (height, width) of each input), plus `probabilities` (float32
`[B, H_max, W_max, K]`, padded with 0) when built with `probabilities=True`.
Dense signature (`serving_dense`): `pixels` (float32 `[B, h, w, C]` at the model's size, in [0, 255]) ->
`masks` (int32 `[B, h, w]`) and `probabilities` (float32 `[B, h, w, K]`).

The per-class probabilities are resized to the input size (bilinear) before the arg-max, so the mask
boundaries follow the probabilities rather than blocky nearest-neighbour upscaling of the small mask.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from toolkit.export.adapter import ServingAdapter
from toolkit.export.image import image_inputs
from toolkit.export.samples import png_samples


def _masks_at_sizes(probabilities, sizes, with_probabilities: bool):
    """Resizes each `[h, w, K]` probability map to its image's size, arg-maxes, pads to the batch maximum."""
    max_h, max_w = tf.reduce_max(sizes[:, 0]), tf.reduce_max(sizes[:, 1])
    num_classes = probabilities.shape[-1]

    def one(args):
        probs, size = args
        resized = tf.image.resize(probs, size, method="bilinear")
        mask = tf.argmax(resized, axis=-1, output_type=tf.int32)
        pad = [[0, max_h - size[0]], [0, max_w - size[1]]]
        mask = tf.pad(mask, pad, constant_values=-1)
        resized = tf.pad(resized, pad + [[0, 0]]) if with_probabilities else tf.zeros([0, 0, num_classes])
        return mask, resized

    masks, resized = tf.map_fn(
        one, (probabilities, sizes),
        fn_output_signature=(tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None, num_classes], tf.float32)),
    )
    return masks, resized


def segmentation_adapter(model, class_names, sample_images=None, probabilities: bool = False,
                         palette=None) -> ServingAdapter:
    """Serving adapter for a segmentation model taking `[B, h, w, C]` pixels in [0, 255] and returning softmax maps.

    Args:
        model: the Keras model (output `[B, h, w, K]` probabilities at the input's size).
        class_names: K names, index = class id (0 = background).
        sample_images: a few `[H, W, C]` arrays (any sizes) for the export parity check.
        probabilities: also return per-class `probabilities` at the input size from the raw signature.
        palette: `[K, 3]` overlay colours, recorded in the metadata.

    Examples:
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 1, activation="softmax")])
    >>> a = segmentation_adapter(m, ["background", "thing"])
    >>> sorted(a.raw_inputs), sorted(a.dense_inputs)
    (['images'], ['pixels'])
    """
    inputs = image_inputs(model, "segmenter")
    height, width, channels = inputs.height, inputs.width, inputs.channels
    out_h, out_w, num_classes = model.output_shape[1:]
    if num_classes != len(class_names):
        raise ValueError(f"the model predicts {num_classes} classes but {len(class_names)} class names were given")

    def postprocess(outputs):
        outputs = tf.cast(outputs, tf.float32)
        return {"masks": tf.argmax(outputs, axis=-1, output_type=tf.int32), "probabilities": outputs}

    def finalize(outputs, sizes):
        if sizes is None:  # dense signature: outputs stay at the model's size
            return outputs
        masks, resized = _masks_at_sizes(outputs["probabilities"], sizes, probabilities)
        result = {"masks": masks, "image_sizes": sizes}
        if probabilities:
            result["probabilities"] = resized
        return result

    return ServingAdapter(
        task="semantic_segmentation",
        raw_inputs=inputs.raw_inputs,
        dense_inputs=inputs.dense_inputs,
        preprocess=inputs.preprocess,
        postprocess=postprocess,
        finalize=finalize,
        labels=list(class_names),
        label_source="none",  # masks hold class ids; names are in the metadata, not a per-pixel string tensor
        sample_raw=png_samples(sample_images),
        metadata={
            "class_names": [str(c) for c in class_names],
            "palette": None if palette is None else np.asarray(palette).astype(int).tolist(),
            "input": {
                "images": "encoded image bytes (PNG/JPEG/BMP/GIF), any size",
                "pixels": f"float32 [batch, {height}, {width}, {channels}] in [0, 255]",
            },
            "outputs": {
                "serving_default": {
                    "masks": "int32 [batch, H_max, W_max] class ids at each input's size, padded with -1",
                    "image_sizes": "int32 [batch, 2] (height, width) of each input",
                    **({"probabilities": "float32 [batch, H_max, W_max, K], padded with 0"} if probabilities else {}),
                },
                "serving_dense": {
                    "masks": f"int32 [batch, {out_h}, {out_w}]",
                    "probabilities": f"float32 [batch, {out_h}, {out_w}, {num_classes}]",
                },
            },
            "preprocessing": {
                "decode_channels": int(channels),
                "resize": [int(height), int(width)],
                "resize_method": "bilinear",
                "normalization": "inside the model",
                "postprocessing": "probabilities resized (bilinear) to the input size, then arg-max",
            },
        },
    )
