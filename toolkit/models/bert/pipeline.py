"""High-level helpers: fine-tune a classifier with the recipe, predict and embed raw texts with dynamic padding."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from toolkit.models.bert.data import FEATURES, text_dataset
from toolkit.models.bert.training import compile_classifier, set_training_mode
from toolkit.data.batching import needs_static_batches, static_batches


def fine_tune(model, preprocessor, texts, labels, epochs: int = 3, batch_size: int = 16,
              learning_rate: float = 3e-5, mode: str = "full", lora_rank: int = 8, warmup_fraction: float = 0.1,
              weight_decay: float = 0.01, validation=None, padding: str = "batch", seed: int = 0,
              verbose: int = 0, callbacks=None, linear_probe: bool = True, merge_adapters: bool = True):
    """Fine-tunes a `build_text_classifier` model on raw texts with the seed recipe.

    With `linear_probe` the output layer is first fitted on the frozen backbone's pooled features
    (`fit_head`) and then everything trains (LP-FT, Kumar et al. 2022): a random head's large early gradients
    otherwise distort the pretrained features, which matters most with a few hundred examples.

    Args:
        model: classifier from `build_text_classifier`.
        preprocessor: from `make_preprocessor`.
        texts: list of strings, or `(first, second)` lists for sentence pairs.
        labels: int class ids.
        epochs: 2-4 per the recipe.
        batch_size: examples per step.
        learning_rate: peak AdamW learning rate (2e-5..5e-5 for full fine-tuning; LoRA and frozen heads
            take larger rates, e.g. 1e-3).
        mode: `"full"`, `"lora"` or `"frozen"` (see `set_training_mode`).
        lora_rank: rank of the LoRA adapters.
        warmup_fraction: share of steps with linear warmup; then linear decay to 0.
        weight_decay: AdamW decoupled weight decay.
        validation: optional `(texts, labels)`.
        padding: `"batch"`, `"bucket"` or `"max"` (see `text_dataset`); under a TPU strategy always `"max"`
            with exactly `batch_size` examples a step.
        seed: shuffle seed.
        linear_probe: fit the head on frozen features before the main loop (see above).
        merge_adapters: `mode="lora"`: fold the adapters into W0 after training (`toolkit.layers.lora.merge_lora`),
            so the model saves and exports as a plain BERT; False keeps them (`save_adapters`, hot swaps).

    Returns:
        `(keras History, parameter counts dict)`.

    Examples:
    >>> from toolkit.models.bert import build_text_classifier, make_preprocessor, tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"], hidden_dim=8)
    >>> model = build_text_classifier(backbone, num_classes=2)
    >>> texts, labels = ["good", "bad", "good good", "bad bad"], [1, 0, 1, 0]
    >>> history, counts = fine_tune(model, make_preprocessor(tokenizer, 8), texts, labels, epochs=1, batch_size=4,
    ...                             mode="frozen", linear_probe=False)   # one step; frozen: fast to trace
    >>> len(history.history["loss"]), counts["trainable"]   # only the 8 x 2 + 2 output layer trained
    (1, 18)
    """
    if linear_probe:
        fit_head(model, preprocessor, texts, labels)
    counts = set_training_mode(model, mode, lora_rank)
    steps = -(-len(labels) // batch_size) * epochs
    compile_classifier(model, steps, learning_rate, warmup_fraction, weight_decay)
    static = needs_static_batches(tf.distribute.get_strategy())  # tpu: sequence_length and batch fixed
    padding = "max" if static else padding
    train = text_dataset(texts, labels, preprocessor, batch_size, shuffle=True, seed=seed, padding=padding)
    val = None
    if validation is not None:
        val = text_dataset(validation[0], validation[1], preprocessor, batch_size * 2, padding=padding)
    if static:
        train, val = static_batches(train, batch_size), val and static_batches(val, batch_size)
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=verbose, callbacks=callbacks)
    if mode == "lora" and merge_adapters:
        merge_adapters_into_base(model)
    return history, counts


def merge_adapters_into_base(model) -> int:
    """`toolkit.layers.lora.merge_lora` on a classifier, and its cached inference function dropped (it was traced
    with the adapters). Returns the number of merged projections."""
    from toolkit.layers.lora import merge_lora

    merged = merge_lora(model)
    model._toolkit_infer = None
    return merged


def fit_head(model, preprocessor, texts, labels, c: float = 1.0, max_iter: int = 2000,
             batch_size: int = 32) -> float:
    """Fits only the classifier's output layer (`logits`) on cached pooled features; the backbone is untouched.

    One forward pass of the backbone over `texts`, then an L2-regularised multinomial logistic regression of
    the cached vectors (scikit-learn's convex solver: the exact optimum in a second, where SGD on a few hundred
    separable points would need tuning), copied into the softmax layer. Feature extraction (`mode="frozen"`)
    in one call, and the probe stage of `fine_tune`.

    Args:
        c: inverse L2 strength (scikit-learn's `C`).

    Returns:
        accuracy of the fitted head on the training texts.

    Examples:
    >>> from toolkit.models.bert import build_text_classifier, make_preprocessor, tiny_bert
    >>> backbone, tokenizer = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"], hidden_dim=8)
    >>> model = build_text_classifier(backbone, num_classes=2)
    >>> fit_head(model, make_preprocessor(tokenizer, 8), ["good", "bad", "good good", "bad bad"], [1, 0, 1, 0], c=100.0)
    1.0
    """
    from sklearn.linear_model import LogisticRegression

    dense = model.get_layer("logits")
    labels = np.asarray(labels)
    if labels.min() < 0 or labels.max() >= dense.units:
        raise ValueError(f"labels must be class ids in [0, {dense.units}). Received: {sorted(set(labels.tolist()))}")
    features = predict_texts(keras.Model(model.inputs, dense.input), preprocessor, texts, batch_size)
    probe = LogisticRegression(C=c, max_iter=max_iter).fit(features, labels)
    kernel = np.zeros((features.shape[1], dense.units), "float32")
    bias = np.full((dense.units,), -30.0, "float32")  # classes absent from `labels`: never predicted
    if len(probe.classes_) == 2:  # binary: one logit w.x + b  ==  softmax over (-(w.x + b) / 2, (w.x + b) / 2)
        kernel[:, probe.classes_[0]], kernel[:, probe.classes_[1]] = -probe.coef_[0] / 2, probe.coef_[0] / 2
        bias[probe.classes_] = -probe.intercept_[0] / 2, probe.intercept_[0] / 2
    else:
        kernel[:, probe.classes_], bias[probe.classes_] = probe.coef_.T, probe.intercept_
    dense.set_weights([kernel, bias])
    return float(probe.score(features, labels))


def _runner(model):
    fn = getattr(model, "_toolkit_infer", None)
    if fn is None:
        spec = {name: tf.TensorSpec([None, None], tf.int32) for name in FEATURES}  # one trace for every length
        fn = tf.function(lambda features: model(features, training=False), input_signature=[spec])
        model._toolkit_infer = fn
    return fn


def predict_texts(model, preprocessor, texts, batch_size: int = 32, padding: str = "batch") -> np.ndarray:
    """Model outputs for raw texts (or pairs), batch by batch, padded per batch; no `model.predict` overhead."""
    fn = _runner(model)
    outputs = [fn(features).numpy() for features in
               text_dataset(texts, None, preprocessor, batch_size, padding="max" if padding == "max" else "batch")]
    return np.concatenate(outputs) if outputs else np.zeros((0,), "float32")


def embed_texts(embedder, preprocessor, texts, batch_size: int = 32) -> np.ndarray:
    """Sentence embeddings `[n, d]` (mean-pooled, L2-normalised by `build_embedder`) of raw texts."""
    return predict_texts(embedder, preprocessor, texts, batch_size)
