"""Box-aware augmentation for detection (tf ops, runs in tf.data): flip, scale/crop, colour.

Pixels and boxes move together (seed section 4): a horizontal flip maps x to W - x; scale/crop scales the
image, pastes or crops it at a random offset, clips boxes to the new frame and drops a box unless more than
`keep_fraction` (50%) of its area remains; colour jitter changes pixels only.

Why not Keras' image preprocessing layers with a `bounding_boxes` input (checked against Keras 3.15):
`RandomFlip(bounding_box_format="xyxy")` flips pixel-xyxy boxes correctly, and `RandomZoom` /
`RandomTranslation` move and clip them, but Keras lacks what the scale/crop step needs:
  * a random window position for a scale: `RandomZoom` always scales about the image centre, and a
    `RandomTranslation` after a zoom-out pushes part of the scaled image off the frame (here the whole
    zoomed-out image is pasted inside it);
  * dropping boxes: Keras keeps a clipped box however little of it remains (only a zero-area box gets
    label -1), has no keep-fraction rule, and never removes a box: its outputs are dense `[N, 4]` boxes
    (ragged batches are padded with label -1), while our detection examples and encoders take exactly the
    surviving boxes `[k', 4]` with their classes `[k']`;
  * class dtype: inside `tf.data` the layers return the labels as float32.
The flip alone Keras would do; it stays a plain tf op because it is one step of this per-example function
(`augment_example` runs inside `dataset.map`, and a Keras random layer cannot be created there: its
`SeedGenerator` makes a variable, which a tf.data trace refuses), and the colour step uses `tf.image`'s random ops, which need no box handling.
"""

from __future__ import annotations

import tensorflow as tf


def flip_horizontal(image, boxes):
    """Mirrors the image; x_new = W - x_old (x_min and x_max swap)."""
    width = tf.cast(tf.shape(image)[1], tf.float32)
    boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
    return tf.image.flip_left_right(image), tf.stack(
        [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)


def scale_crop(image, boxes, classes, scale, offset, keep_fraction: float = 0.5):
    """Scales the image by `scale`, then pads / crops it back to its size with `offset` in [0, 1]^2.

    Args:
        image: `[H, W, C]` float.
        boxes: `[k, 4]` pixel xyxy.
        classes: `[k]`.
        scale: scale factor (> 1 zooms in and crops, < 1 zooms out and pads with zeros).
        offset: `(oy, ox)` in [0, 1]: where the crop / paste window sits (0 = top-left, 1 = bottom-right).
        keep_fraction: keep a clipped box only if more than this fraction of its area remains.

    Returns:
        `(image [H, W, C], boxes [k', 4], classes [k'])`.
    """
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    new_h = tf.maximum(1, tf.cast(tf.round(tf.cast(height, tf.float32) * scale), tf.int32))
    new_w = tf.maximum(1, tf.cast(tf.round(tf.cast(width, tf.float32) * scale), tf.int32))
    resized = tf.image.resize(image, tf.stack([new_h, new_w]))
    pad_y = tf.cast(tf.round(tf.cast(tf.maximum(0, height - new_h), tf.float32) * offset[0]), tf.int32)
    pad_x = tf.cast(tf.round(tf.cast(tf.maximum(0, width - new_w), tf.float32) * offset[1]), tf.int32)
    crop_y = tf.cast(tf.round(tf.cast(tf.maximum(0, new_h - height), tf.float32) * offset[0]), tf.int32)
    crop_x = tf.cast(tf.round(tf.cast(tf.maximum(0, new_w - width), tf.float32) * offset[1]), tf.int32)
    canvas = tf.image.pad_to_bounding_box(resized, pad_y, pad_x, tf.maximum(new_h, height), tf.maximum(new_w, width))
    out = tf.image.crop_to_bounding_box(canvas, crop_y, crop_x, height, width)
    scale_xy = tf.stack([tf.cast(new_w, tf.float32) / tf.cast(width, tf.float32),
                         tf.cast(new_h, tf.float32) / tf.cast(height, tf.float32)] * 2)
    shift = tf.cast(tf.stack([pad_x - crop_x, pad_y - crop_y] * 2), tf.float32)
    moved = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4]) * scale_xy + shift
    limits = tf.cast(tf.stack([width, height, width, height]), tf.float32)
    clipped = tf.clip_by_value(moved, 0.0, limits)
    area = lambda b: tf.maximum(b[:, 2] - b[:, 0], 0.0) * tf.maximum(b[:, 3] - b[:, 1], 0.0)  # noqa: E731
    keep = (area(clipped) > keep_fraction * area(moved)) & (clipped[:, 2] - clipped[:, 0] >= 1.0) & (
        clipped[:, 3] - clipped[:, 1] >= 1.0)
    return out, tf.boolean_mask(clipped, keep), tf.boolean_mask(classes, keep)


def color_jitter(image, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2, seed=None):
    """Random brightness (fraction of 255), contrast and saturation on [0, 255] pixels; boxes unaffected."""
    image = tf.image.random_brightness(image, brightness * 255.0, seed=seed) if brightness else image
    image = tf.image.random_contrast(image, 1 - contrast, 1 + contrast, seed=seed) if contrast else image
    if saturation and image.shape[-1] == 3:
        image = tf.image.random_saturation(image, 1 - saturation, 1 + saturation, seed=seed)
    return tf.clip_by_value(image, 0.0, 255.0)


def augment_example(example: dict, flip: bool = True, scale=(0.75, 1.25), color: float = 0.2,
                    keep_fraction: float = 0.5) -> dict:
    """Randomly augments one `{"images", "boxes", "classes"}` example (use in `dataset.map`).

    Args:
        example: an unbatched example of `toolkit.data.annotations.detection_dataset`.
        flip: random horizontal flip (p = 0.5).
        scale: `(min, max)` random scale factor for scale/crop, or None to skip.
        color: strength of brightness / contrast / saturation jitter (0 skips).
        keep_fraction: see `scale_crop`.

    Examples:
    >>> import numpy as np
    >>> ex = {"images": np.zeros((8, 8, 3), "float32"), "boxes": np.array([[0, 0, 4, 4]], "float32"),
    ...       "classes": np.array([1], "int32")}
    >>> augment_example(ex, flip=False, scale=None, color=0.0)["boxes"].numpy().tolist()
    [[0.0, 0.0, 4.0, 4.0]]
    """
    image = tf.cast(example["images"], tf.float32)
    boxes = tf.reshape(tf.cast(example["boxes"], tf.float32), [-1, 4])
    classes = example["classes"]
    if flip:
        image, boxes = tf.cond(tf.random.uniform([]) < 0.5, lambda: flip_horizontal(image, boxes),
                               lambda: (image, boxes))
    if scale is not None:
        factor = tf.random.uniform([], scale[0], scale[1])
        image, boxes, classes = scale_crop(image, boxes, classes, factor, tf.random.uniform([2]), keep_fraction)
    if color:
        image = color_jitter(image, color, color, color)
    return {**example, "images": image, "boxes": boxes, "classes": classes}
