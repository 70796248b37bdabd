"""The VAE's serving adapter: encode from image bytes or pixels, plus decode / sample / reconstruct / log_weights.

Signatures (see the README's VAE section): `serving_default` (image bytes) and `serving_dense` (pixels) encode
to `mu`, `log_var`, the reconstruction decoded from mu and its error; `encode`, `encode_pixels`, `decode`,
`sample` (one prior draw per int seed), `reconstruct` and `log_weights` (importance log-weights for the
negative ELBO and the IWAE bound).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from toolkit.data.images import encode_png
from toolkit.export.adapter import ExtraSignature, ServingAdapter
from toolkit.export.image import decode_images
from toolkit.export.samples import random_samples


class VaeAdapter(ServingAdapter):
    """`serving_default` / `serving_dense` encode: outputs `mu`, `log_var`, `reconstruction` (pixels in
    [0, 255], decoded from mu) and `reconstruction_error` (per-image mean squared error on [0, 1])."""

    def call_model(self, model, dense):
        pixels = dense["pixels"]
        mu, log_var = model.encode(pixels)
        mean = model.decode(mu)
        error = tf.reduce_mean(tf.reshape(tf.square(mean - model.targets(pixels)), [tf.shape(mean)[0], -1]), -1)
        return {"mu": mu, "log_var": log_var, "reconstruction": 255.0 * mean, "reconstruction_error": error}


def _png(images):
    return tf.map_fn(lambda im: tf.io.encode_png(tf.cast(tf.round(im), tf.uint8)), images,
                     fn_output_signature=tf.TensorSpec([], tf.string))


def vae_adapter(model, sample_images) -> VaeAdapter:
    """The VAE's serving adapter: encode from bytes or pixels, plus `encode`, `encode_pixels`, `decode`,
    `sample`, `reconstruct` and `log_weights` signatures (see the README's VAE section)."""
    height, width, channels = model.image_shape
    d = model.latent_dim
    bytes_spec = {"images": tf.TensorSpec([None], tf.string, name="images")}
    pixels_spec = {"pixels": tf.TensorSpec([None, height, width, channels], tf.float32, name="pixels")}
    sample_bytes = {"images": [encode_png(im) for im in sample_images]}
    sample_pixels = {"pixels": np.asarray(sample_images, "float32")}

    def preprocess(raw):
        return {"pixels": decode_images(raw["images"], (height, width), channels)[0]}, None

    def encode(m, inputs):
        mu, log_var = m.encode(preprocess(inputs)[0]["pixels"])
        return {"mu": mu, "log_var": log_var}

    def encode_pixels(m, inputs):
        mu, log_var = m.encode(inputs["pixels"])
        return {"mu": mu, "log_var": log_var}

    def images_out(mean):
        pixels = 255.0 * mean
        return {"images": pixels, "png": _png(pixels)}

    def decode(m, inputs):
        return images_out(m.decode(inputs["z"]))

    def sample(m, inputs):
        z = m.prior_latents(inputs["seed"])
        return {"z": z, **images_out(m.decode(z))}

    def reconstruct(m, inputs):
        mu, _ = m.encode(preprocess(inputs)[0]["pixels"])
        return {"mu": mu, **images_out(m.decode(mu))}

    log_weights_fn = tf.function(lambda pixels, noise: model.log_weights(pixels, noise), reduce_retracing=True)

    def log_weights(m, inputs):
        return {"log_weights": log_weights_fn(inputs["pixels"], inputs["noise"])}

    rng = np.random.default_rng(0)
    extra = {
        "encode": ExtraSignature(bytes_spec, encode, sample_bytes, "image bytes -> mu, log_var"),
        "encode_pixels": ExtraSignature(pixels_spec, encode_pixels, sample_pixels,
                                        "float32 pixels in [0, 255] -> mu, log_var"),
        "decode": ExtraSignature({"z": tf.TensorSpec([None, d], tf.float32, name="z")}, decode,
                                 {"z": random_samples((d,), 3, kind="normal", seed=rng)},
                                 "z -> images (float32 [0, 255]) and png bytes"),
        "sample": ExtraSignature({"seed": tf.TensorSpec([None], tf.int32, name="seed")}, sample,
                                 {"seed": np.array([0, 1, 2], "int32")},
                                 "one prior sample per int seed (count = number of seeds; same seed, same "
                                 "image) -> z, images, png"),
        "reconstruct": ExtraSignature(bytes_spec, reconstruct, sample_bytes,
                                      "image bytes -> mu, images decoded from mu, png"),
        "log_weights": ExtraSignature(
            {**pixels_spec, "noise": tf.TensorSpec([None, None, d], tf.float32, name="noise")}, log_weights,
            {**sample_pixels, "noise": random_samples((4, d), len(sample_images), kind="normal", seed=rng)},
            "pixels, standard normal noise [B, K, latent] -> importance log-weights [B, K] "
            "(-mean: negative ELBO; -(logsumexp - log K): IWAE bound)"),
    }
    return VaeAdapter(
        task="vae", raw_inputs=bytes_spec, dense_inputs=pixels_spec, preprocess=preprocess,
        postprocess=lambda outputs: outputs, sample_raw=sample_bytes, extra_signatures=extra,
        metadata={"input": {"images": "encoded image bytes, any size", "pixels": f"float32 [batch, {height}, "
                            f"{width}, {channels}] in [0, 255]"},
                  "latent_dim": d, "likelihood": model.likelihood, "binarize": model.binarize},
    )
