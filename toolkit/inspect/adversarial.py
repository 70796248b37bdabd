"""Adversarial robustness: FGSM, its iterated form, and an accuracy-vs-epsilon curve.

FGSM (lecture notes, SEED_CATALOGUE.md section 3): x_adv = x + eps * sign(grad_x L(x, y_true)), so
||x_adv - x||_inf <= eps. Epsilons are in the model's input units (pixels in [0, 255] for the toolkit's
classifiers); results are clipped to `value_range`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from toolkit.inspect.common import outputs_probabilities
from toolkit.inspect.plots import save_curve
from toolkit.inspect.statistics.statistics import iterate_inputs


def _loss_gradient(model):
    probabilities = outputs_probabilities(model)

    @tf.function(reduce_retracing=True)
    def gradient(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = tf.cast(model(x, training=False), tf.float32)
            loss = keras.losses.sparse_categorical_crossentropy(y, outputs, from_logits=not probabilities)
        return tape.gradient(loss, x), outputs

    return gradient


def fgsm(model: keras.Model, x, y, epsilon: float, value_range=(0.0, 255.0), _gradient=None) -> np.ndarray:
    """One FGSM step: `clip(x + epsilon * sign(grad_x L(x, y)))`.

    Args:
        model: a classifier (probabilities or logits).
        x: inputs `[B, ...]`; y: integer labels `[B]`.
        epsilon: step in input units (>= 0; 0 returns x unchanged).
        value_range: valid input range to clip to (None: no clipping).

    Examples:
    >>> net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    >>> fgsm(net, np.zeros((1, 2), "float32"), np.array([0]), 0.0).tolist()
    [[0.0, 0.0]]
    """
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0. Received: {epsilon}")
    x = tf.convert_to_tensor(np.asarray(x), tf.float32)
    grad, _ = (_gradient or _loss_gradient(model))(x, tf.convert_to_tensor(np.asarray(y)))
    adv = x + epsilon * tf.sign(grad)
    if value_range is not None:
        adv = tf.clip_by_value(adv, *value_range)
    return adv.numpy()


def iterated_fgsm(model: keras.Model, x, y, epsilon: float, step_size: float | None = None, steps: int = 10,
                  value_range=(0.0, 255.0), _gradient=None) -> np.ndarray:
    """Iterated FGSM (BIM): `steps` signed steps of `step_size`, projected back into the eps-ball around x.

    Args:
        step_size: per-step size (default epsilon / steps * 2.5, capped at epsilon).
    """
    if epsilon < 0 or steps < 1:
        raise ValueError(f"need epsilon >= 0 and steps >= 1. Received: epsilon={epsilon}, steps={steps}")
    gradient = _gradient or _loss_gradient(model)
    x0 = tf.convert_to_tensor(np.asarray(x), tf.float32)
    y = tf.convert_to_tensor(np.asarray(y))
    alpha = min(epsilon, 2.5 * epsilon / steps) if step_size is None else step_size
    adv = x0
    for _ in range(steps):
        grad, _ = gradient(adv, y)
        adv = tf.clip_by_value(adv + alpha * tf.sign(grad), x0 - epsilon, x0 + epsilon)
        if value_range is not None:
            adv = tf.clip_by_value(adv, *value_range)
    return adv.numpy()


def robustness_curve(model: keras.Model, data, epsilons=(0, 1, 2, 4, 8, 16), method: str = "fgsm",
                     steps: int = 10, batch_size: int = 256, value_range=(0.0, 255.0), limit: int | None = None,
                     path: str | None = None) -> dict:
    """Accuracy on clean and adversarial inputs for each epsilon.

    Args:
        data: `(x, y)` arrays or a `tf.data.Dataset` of `(x, y)` batches.
        epsilons: perturbation sizes in input units.
        method: "fgsm" or "iterated" (or "both").
        limit: use at most this many examples.

    Returns:
        `{"epsilons": [...], "fgsm": [accuracy per eps], "iterated": [...], "table": markdown, "n": examples}`.
    """
    if method not in ("fgsm", "iterated", "both"):
        raise ValueError(f"method must be fgsm, iterated or both. Received: {method!r}")
    methods = ["fgsm", "iterated"] if method == "both" else [method]
    gradient = _loss_gradient(model)
    correct = {m: np.zeros(len(epsilons)) for m in methods}
    seen = 0
    for xb, yb in _labelled_batches(data, batch_size):
        if limit is not None and seen >= limit:
            break
        if limit is not None:
            xb, yb = xb[:limit - seen], yb[:limit - seen]
        for m in methods:
            for i, eps in enumerate(epsilons):
                if m == "fgsm" or eps == 0:
                    adv = fgsm(model, xb, yb, eps, value_range, _gradient=gradient)
                else:
                    adv = iterated_fgsm(model, xb, yb, eps, steps=steps, value_range=value_range, _gradient=gradient)
                predicted = np.argmax(model(adv, training=False).numpy(), axis=-1)
                correct[m][i] += np.sum(predicted == yb)
        seen += len(yb)
    if seen == 0:
        raise ValueError("no labelled examples in data")
    result = {"epsilons": list(epsilons), "n": seen, **{m: (correct[m] / seen).tolist() for m in methods}}
    header = "| epsilon | " + " | ".join(f"accuracy ({m})" for m in methods) + " |"
    lines = [header, "|---" * (1 + len(methods)) + "|"]
    lines += [f"| {eps:g} | " + " | ".join(f"{result[m][i]:.4f}" for m in methods) + " |"
              for i, eps in enumerate(epsilons)]
    result["table"] = "\n".join(lines)
    if path:
        save_curve(list(epsilons), {m: result[m] for m in methods}, path, "epsilon (input units)",
                   "accuracy", title=f"adversarial robustness (n={seen})")
    return result


def _labelled_batches(data, batch_size):
    if isinstance(data, tf.data.Dataset):
        for xb, yb in data:
            yield np.asarray(xb), np.asarray(yb)
        return
    x, y = data[0], np.asarray(data[1])
    for start, xb in zip(range(0, len(y), batch_size), iterate_inputs(x, batch_size)):
        yield np.asarray(xb, "float32"), y[start:start + batch_size]
