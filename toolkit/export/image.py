"""In-graph image decoding and the image-classification serving adapter."""

from __future__ import annotations

import typing

import tensorflow as tf

from toolkit.export.adapter import ServingAdapter, with_classify_signature
from toolkit.export.samples import png_samples


def decode_images(encoded, size, channels: int):
    """Batch of encoded PNG/JPEG/BMP/GIF bytes -> float32 `[B, H, W, C]` pixels in [0, 255] + original sizes.

    Any input size is accepted; each image is decoded, converted to `channels` and resized (bilinear)
    to `size` inside the graph. Returns `(images, original_sizes int32 [B, 2] as (height, width))`.
    """
    height, width = size

    def decode_one(data):
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        original = tf.shape(image)[:2]
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width))
        return image, original

    images, sizes = tf.map_fn(
        decode_one,
        encoded,
        fn_output_signature=(
            tf.TensorSpec([height, width, channels], tf.float32),
            tf.TensorSpec([2], tf.int32),
        ),
    )
    return images, sizes


class ImageInputs(typing.NamedTuple):
    """What every image task's serving adapter shares: sizes, input specs and the in-graph decoding."""

    height: int
    width: int
    channels: int
    raw_inputs: dict  # `images`: encoded bytes, any size
    dense_inputs: dict  # `pixels`: float32 [B, H, W, C] in [0, 255]
    preprocess: typing.Callable  # raw -> ({"pixels": ...}, original (height, width) per image)


def image_inputs(model, role: str = "model") -> ImageInputs:
    """The raw / dense image signatures of a model taking `[B, H, W, C]` pixels at a fixed size."""
    _, height, width, channels = model.input_shape
    if None in (height, width, channels):
        raise ValueError(f"the {role} needs a fixed input size to serve raw images. Received: {model.input_shape}")

    def preprocess(raw):
        images, sizes = decode_images(raw["images"], (height, width), channels)
        return {"pixels": images}, sizes

    return ImageInputs(
        height, width, channels,
        {"images": tf.TensorSpec([None], tf.string, name="images")},
        {"pixels": tf.TensorSpec([None, height, width, channels], tf.float32, name="pixels")},
        preprocess,
    )


MC_DROPOUT_SIGNATURE = "mc_dropout"


def with_mc_dropout_signature(adapter: ServingAdapter, samples: int = 20, seed: int = 0) -> ServingAdapter:
    """Adds the `mc_dropout` signature (`toolkit.training.mc_dropout`): `images` (tf.string `[B]`) -> `mean`
    (float32 `[B, K]`, the mean class probabilities over `samples` passes with dropout on), `variance` (float32
    `[B, K]`, their variance), `classes` (int32 `[B]`, the arg-max of the mean) and `labels`. Only the dropout
    layers are stochastic (BatchNorm stays in inference mode). T and the seed are fixed when the signature is
    built (`assets.extra/toolkit.json` records T as `mc_dropout_samples`): one raw input, like
    `serving_default`, so every TF Serving client and `toolkit predict --signature-name mc_dropout` can call
    it, and the same image always gets the same answer (the export's parity check relies on it)."""
    from toolkit.export.adapter import ExtraSignature
    from toolkit.training.mc_dropout import mc_dropout_predict

    if int(samples) < 1:
        raise ValueError(f"mc_dropout samples must be >= 1. Received: samples={samples}")
    raw_name = next(iter(adapter.raw_inputs))
    names = [str(label) for label in adapter.labels or []]

    def mc_dropout(model, inputs):
        dense, _ = adapter.preprocess({raw_name: inputs[raw_name]})
        out = mc_dropout_predict(model, next(iter(dense.values())), int(samples), int(seed))
        classes = tf.argmax(out["mean"], axis=-1, output_type=tf.int32)
        result = {**out, "classes": classes}
        if names:
            result["labels"] = tf.gather(tf.constant(names), classes)
        return result

    sample = None
    if adapter.sample_raw and raw_name in adapter.sample_raw:
        sample = {raw_name: list(adapter.sample_raw[raw_name])}
    adapter.extra_signatures[MC_DROPOUT_SIGNATURE] = ExtraSignature(
        inputs={raw_name: tf.TensorSpec([None], tf.string, name=raw_name)},
        function=mc_dropout,
        sample=sample,
        description=f"MC dropout (F3:4979-4983): encoded images -> mean and variance of the class probabilities "
                    f"over {int(samples)} passes with dropout on (BatchNorm in inference mode), classes, labels",
    )
    adapter.metadata["mc_dropout_samples"] = int(samples)
    return adapter


def image_classification_adapter(model, class_names, sample_images=None) -> ServingAdapter:
    """Serving adapter for a classifier taking `[B, H, W, C]` pixels in [0, 255] and returning probabilities.

    Raw signature: `images` (tf.string, encoded image bytes of any size) -> `scores` (float32 `[B, K]`
    probabilities), `classes` (int32 `[B]`, the arg-max), `labels` (tf.string `[B]`). With sample images,
    also `classify` (TF Serving's classification method): serialized `tf.Example`s with the encoded image
    in bytes feature `images` -> `classes` (tf.string `[B, K]`, every label name) and `scores`.

    Args:
        model: the Keras classifier.
        class_names: label names, index = class id.
        sample_images: a few `[H, W, C]` arrays used for the export parity check.
    """
    inputs = image_inputs(model, "classifier")
    height, width, channels = inputs.height, inputs.width, inputs.channels

    def postprocess(probabilities):
        probabilities = tf.cast(probabilities, tf.float32)
        return {"scores": probabilities, "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    adapter = ServingAdapter(
        task="image_classification",
        raw_inputs=inputs.raw_inputs,
        dense_inputs=inputs.dense_inputs,
        preprocess=inputs.preprocess,
        postprocess=postprocess,
        labels=list(class_names),
        sample_raw=png_samples(sample_images),
        metadata={
            "input": {
                "images": "encoded image bytes (PNG/JPEG/BMP/GIF), any size",
                "pixels": f"float32 [batch, {height}, {width}, {channels}] in [0, 255]",
            },
            "preprocessing": {
                "decode_channels": int(channels),
                "resize": [int(height), int(width)],
                "resize_method": "bilinear",
                "normalization": "inside the model",
            },
        },
    )
    return with_classify_signature(adapter, "images")


