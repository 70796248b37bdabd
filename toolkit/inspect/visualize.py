"""What a CNN looks at (lecture notes, SEED_CATALOGUE.md section 3): filters, occlusion, top-k images,
gradient ascent, Grad-CAM, reconstruction from a layer's code. Each returns arrays; `path=` saves a PNG.

Images are in the model's input units (raw pixels in [0, 255] for the toolkit's classifiers: `value_range`).
"""

from __future__ import annotations

import heapq

import keras
import numpy as np
import tensorflow as tf

from toolkit.inspect.common import (
    as_batch, class_log_probability, first_conv_layer, input_shape, last_feature_layer, tap_model,
)
from toolkit.inspect.plots import save_grid, save_heatmap
from toolkit.inspect.statistics.statistics import iterate_inputs, select_layers


def first_layer_filters(model: keras.Model, path: str | None = None, layer: str | None = None) -> np.ndarray:
    """The first conv layer's kernels as images `[filters, kh, kw, 1 or 3]`, each min-max scaled to [0, 1].

    Kernels with 3 input channels show as RGB; others are averaged over input channels.
    """
    conv = first_conv_layer(model) if layer is None else _find(model, layer)
    kernel = np.asarray(conv.kernel)  # [kh, kw, in, out]
    if kernel.ndim != 4:
        raise ValueError(f"layer {conv.name!r} has no 2-D convolution kernel (shape {kernel.shape})")
    filters = np.moveaxis(kernel, -1, 0)
    if filters.shape[-1] != 3:
        filters = filters.mean(axis=-1, keepdims=True)
    lo = filters.min(axis=(1, 2, 3), keepdims=True)
    hi = filters.max(axis=(1, 2, 3), keepdims=True)
    filters = (filters - lo) / np.maximum(hi - lo, 1e-12)
    if path:
        save_grid(filters, path, titles=list(range(len(filters))), title=f"{conv.name} filters", scale=1.0)
    return filters


def _find(model, name):
    return select_layers(model, [name])[0][1]


def occlusion_map(model: keras.Model, image, class_index: int | None = None, patch: int = 8, stride: int = 4,
                  fill: float | str = "mean", batch_size: int = 64, path: str | None = None) -> dict:
    """Zeiler & Fergus occlusion: slide a `patch` square (grey `fill`) and record the class-probability drop.

    Args:
        model: a classifier returning class scores.
        image: `[H, W, C]` in the model's input units.
        class_index: class to explain (default: the predicted class).
        patch, stride: occluder size and step in pixels (the notes give none; settable).
        fill: the occluder's value, or "mean" for the image's mean.

    Returns:
        `{"map": [H, W] mean drop over the patches covering each pixel, "grid": [rows, cols] drop per
        position, "class_index", "baseline"}`; the largest values mark the most important region.
    """
    if patch < 1 or stride < 1:
        raise ValueError(f"patch and stride must be >= 1. Received: patch={patch}, stride={stride}")
    image = np.asarray(image, "float32")
    height, width = image.shape[:2]
    base = model(image[None], training=False).numpy()[0]
    class_index = int(np.argmax(base)) if class_index is None else int(class_index)
    value = float(image.mean()) if fill == "mean" else float(fill)
    rows = list(range(0, max(height - patch, 0) + 1, stride))
    cols = list(range(0, max(width - patch, 0) + 1, stride))
    if rows[-1] + patch < height:
        rows.append(height - patch)
    if cols[-1] + patch < width:
        cols.append(width - patch)
    positions = [(r, c) for r in rows for c in cols]
    scores = []
    for start in range(0, len(positions), batch_size):
        batch = np.repeat(image[None], len(positions[start:start + batch_size]), axis=0)
        for k, (r, c) in enumerate(positions[start:start + batch_size]):
            batch[k, r:r + patch, c:c + patch] = value
        scores.append(model(batch, training=False).numpy()[:, class_index])
    drop = base[class_index] - np.concatenate(scores)
    total, hits = np.zeros((height, width)), np.zeros((height, width))
    for d, (r, c) in zip(drop, positions):
        total[r:r + patch, c:c + patch] += d
        hits[r:r + patch, c:c + patch] += 1
    result = {"map": total / np.maximum(hits, 1), "grid": drop.reshape(len(rows), len(cols)),
              "class_index": class_index, "baseline": float(base[class_index])}
    if path:
        save_heatmap(image, result["map"], path, title=f"occlusion: drop of class {class_index}")
    return result


def top_activating(model: keras.Model, data, layer: str, channel: int, k: int = 9, batch_size: int = 128,
                   path: str | None = None) -> dict:
    """The `k` dataset images that activate `channel` of `layer` most (spatial mean), streamed with a heap.

    Returns:
        `{"indices": [k], "scores": [k], "images": [k, H, W, C]}`, best first.
    """
    tapped = tap_model(model, layer)
    channels = tapped.outputs[0].shape[-1]
    if not 0 <= channel < channels:
        raise ValueError(f"channel must be in [0, {channels}) for layer {layer!r}. Received: {channel}")

    @tf.function(reduce_retracing=True)
    def score(x):
        out = tf.cast(tapped(x, training=False), tf.float32)[..., channel]
        return tf.reduce_mean(tf.reshape(out, (tf.shape(out)[0], -1)), axis=1)

    heap: list = []
    offset = 0
    for batch in iterate_inputs(data, batch_size):
        values = score(batch).numpy()
        batch = np.asarray(batch)
        for i, v in enumerate(values):
            item = (float(v), -(offset + i), batch[i])
            if len(heap) < k:
                heapq.heappush(heap, item)
            elif item[:2] > heap[0][:2]:
                heapq.heapreplace(heap, item)
        offset += len(values)
    best = sorted(heap, key=lambda t: (t[0], t[1]), reverse=True)
    result = {"indices": np.array([-t[1] for t in best]), "scores": np.array([t[0] for t in best]),
              "images": np.stack([t[2] for t in best])}
    if path:
        save_grid(result["images"], path, titles=[f"#{i} {s:.2f}" for i, s in
                                                  zip(result["indices"], result["scores"])],
                  title=f"top-{k} images for {layer}[{channel}]")
    return result


def _objective(model, layer, channel, class_index):
    if class_index is not None:
        log_prob = class_log_probability(model)
        return lambda x: log_prob(model(x, training=False), class_index)
    if layer is None or channel is None:
        raise ValueError("give class_index, or layer and channel")
    tapped = tap_model(model, layer)
    return lambda x: tf.reduce_mean(tf.reshape(tf.cast(tapped(x, training=False), tf.float32)[..., channel],
                                               (tf.shape(x)[0], -1)), axis=1)


def gradient_ascent(model: keras.Model, layer: str | None = None, channel: int | None = None,
                    class_index: int | None = None, steps: int = 100, step_size: float = 1.0, l2: float = 1e-4,
                    image_shape=None, value_range=(0.0, 255.0), seed: int = 0, path: str | None = None) -> dict:
    """Feature visualisation: x <- x + eta * d objective / dx from noise (normalised gradient, L2 penalty).

    The objective is the mean activation of `layer[..., channel]`, or the log probability of `class_index`.

    Returns:
        `{"image": [H, W, C], "objective": [steps + 1] values (before each step and at the end)}`.
    """
    objective = _objective(model, layer, channel, class_index)
    shape = tuple(image_shape or input_shape(model))
    lo, hi = value_range
    rng = np.random.default_rng(seed)
    mid, spread = (lo + hi) / 2, (hi - lo) * 0.1
    x = tf.Variable(rng.normal(mid, spread, size=(1, *shape)).astype("float32"))
    scale = (hi - lo) / 255.0

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = objective(x)[0]
            loss = value - l2 * tf.reduce_mean(tf.square((x - mid) / (hi - lo)))
        grad = tape.gradient(loss, x)
        grad = grad / (tf.math.reduce_std(grad) + 1e-8)
        x.assign(tf.clip_by_value(x + step_size * scale * grad, lo, hi))
        return value

    history = [float(step()) for _ in range(steps)]
    history.append(float(objective(x)[0]))
    target = f"class {class_index}" if class_index is not None else f"{layer}[{channel}]"
    result = {"image": x.numpy()[0], "objective": np.array(history)}
    if path:
        save_grid([result["image"]], path, title=f"gradient ascent: {target}", scale=3.0)
    return result


def grad_cam(model: keras.Model, image, class_index: int | None = None, layer: str | None = None,
             path: str | None = None) -> dict:
    """Grad-CAM: ReLU(sum_k alpha_k A_k), alpha_k = spatial mean of d score / d A_k, at a 4-D feature layer.

    `layer` must be a top-level layer of `model` (a backbone sub-model counts: its output feature map is the
    default, the last 4-D output); the score is the class's log probability.

    Returns:
        `{"map": [h, w] in [0, 1] at the layer's resolution, "class_index", "weights": [K]}`.
    """
    layer = layer or last_feature_layer(model)
    try:
        target = model.get_layer(layer)
        # A nested model's `.output` lives in its own graph; its call node in `model` gives the outer tensor.
        features = target._inbound_nodes[0].output_tensors[0] if isinstance(target, keras.Model) else target.output
    except ValueError:
        raise ValueError(f"Grad-CAM layer {layer!r} is not a top-level layer of {model.name!r}; use one of "
                         f"{[l.name for l in model.layers]}") from None
    if len(features.shape) != 4:
        raise ValueError(f"Grad-CAM needs a 4-D feature map; layer {layer!r} outputs {features.shape}")
    both = keras.Model(model.inputs, [features, model.outputs[0]])
    x = as_batch(image)
    log_prob = class_log_probability(model)
    with tf.GradientTape() as tape:
        maps, outputs = both(x, training=False)
        if class_index is None:
            class_index = int(tf.argmax(outputs[0]))
        score = log_prob(outputs, class_index)[0]
    grads = tape.gradient(score, maps)[0]
    weights = tf.reduce_mean(grads, axis=(0, 1))
    cam = tf.nn.relu(tf.reduce_sum(maps[0] * weights, axis=-1)).numpy()
    cam = cam / cam.max() if cam.max() > 0 else cam
    result = {"map": cam, "class_index": int(class_index), "weights": weights.numpy()}
    if path:
        save_heatmap(np.asarray(image), cam, path, title=f"Grad-CAM class {class_index} at {layer}")
    return result


def total_variation(x):
    """Mean squared difference of neighbouring pixels (the smoothness prior R(x))."""
    return (tf.reduce_mean(tf.square(x[:, 1:] - x[:, :-1])) + tf.reduce_mean(tf.square(x[:, :, 1:] - x[:, :, :-1])))


def reconstruct(model: keras.Model, image, layer: str, steps: int = 200, learning_rate: float = 2.0,
                tv_weight: float = 1e-3, value_range=(0.0, 255.0), seed: int = 0, path: str | None = None) -> dict:
    """Mahendran & Vedaldi: x* = argmin ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + lambda TV(x), by Adam on x.

    Returns:
        `{"image": [H, W, C], "loss": [steps] total loss per step, "code_error": final relative code error}`.
    """
    tapped = tap_model(model, layer)
    x0 = as_batch(image)
    target = tf.cast(tapped(x0, training=False), tf.float32)
    norm = tf.reduce_sum(tf.square(target)) + 1e-12
    lo, hi = value_range
    rng = np.random.default_rng(seed)
    x = tf.Variable(rng.uniform(lo, hi, size=x0.shape).astype("float32") * 0.2 + 0.4 * (lo + hi))
    optimizer = keras.optimizers.Adam(learning_rate)
    scale = ((hi - lo) / 255.0) ** 2

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            code = tf.reduce_sum(tf.square(tf.cast(tapped(x, training=False), tf.float32) - target)) / norm
            loss = code + tv_weight * total_variation(x) / scale
        optimizer.apply_gradients([(tape.gradient(loss, x), x)])
        x.assign(tf.clip_by_value(x, lo, hi))
        return loss, code

    losses, code = [], None
    for _ in range(steps):
        loss, code = step()
        losses.append(float(loss))
    result = {"image": x.numpy()[0], "loss": np.array(losses), "code_error": float(code)}
    if path:
        save_grid([np.asarray(image), result["image"]], path, titles=["original", f"from {layer}"],
                  columns=2, scale=3.0)
    return result
