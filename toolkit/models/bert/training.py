"""The BERT fine-tuning recipe: AdamW, LR 2e-5..5e-5 with linear warmup + decay, 2-4 epochs.

Training modes: `full` (everything trains; the seed recipe), `lora` (the notes' LoRA, `toolkit.layers.lora`:
the backbone is frozen and rank-r adapters W0 + BA of the flattened d x k projection, B = 0 at start, train
on the attention query/key/value/output projections; the head trains), `lora-keras` (keras-hub's
`enable_lora(rank)` on query/value, whose per-head factorisation has more parameters and rank up to
heads x r), `frozen` (feature extraction: only the head trains).
"""

from __future__ import annotations

import keras
import numpy as np

from toolkit.models.bert.models import find_backbone

MODES = ("full", "lora", "lora-keras", "frozen")


@keras.saving.register_keras_serializable(package="toolkit")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`.

    (Keras' built-in schedules have no linear warmup + linear decay; this is the BERT paper's schedule.)

    Args:
        peak: float. learning rate at the end of warmup.
        total_steps: int. steps of the whole run.
        warmup_steps: int. steps of the warmup.

    Examples:
    >>> s = LinearWarmupDecay(1e-4, total_steps=10, warmup_steps=2)
    >>> [round(float(s(i)), 7) for i in (0, 1, 2, 6, 10)]
    [0.0, 5e-05, 0.0001, 5e-05, 0.0]
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0):
        if peak <= 0 or total_steps < 1 or not 0 <= warmup_steps < max(total_steps, 1) + 1:
            raise ValueError(f"need peak > 0, total_steps >= 1, 0 <= warmup_steps <= total_steps. Received: "
                             f"peak={peak}, total_steps={total_steps}, warmup_steps={warmup_steps}")
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        rate = keras.ops.where(step < self.warmup_steps, warm, decay)
        return self.peak * keras.ops.clip(rate, 0.0, 1.0)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def finetune_optimizer(total_steps: int, learning_rate: float = 3e-5, warmup_fraction: float = 0.1,
                       weight_decay: float = 0.01) -> keras.optimizers.Optimizer:
    """AdamW with linear warmup + decay; no weight decay on biases and LayerNorm (as in BERT).

    Examples:
    >>> opt = finetune_optimizer(total_steps=100)
    >>> type(opt).__name__
    'AdamW'
    """
    schedule = LinearWarmupDecay(learning_rate, max(1, int(total_steps)), int(warmup_fraction * total_steps))
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay, clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def set_training_mode(model, mode: str = "full", lora_rank: int = 8) -> dict:
    """Applies `full` / `lora` / `frozen` to the model's BERT backbone; returns `parameter_counts(model)`.

    Call before `compile`. `lora`: `toolkit.layers.lora.enable_lora` on Q/K/V/O (merge it into W0 with
    `merge_lora` before saving or export); `lora-keras`: keras-hub's `backbone.enable_lora(rank)` (Q and V).

    Examples:
    >>> from toolkit.models.bert import build_text_classifier, tiny_bert
    >>> backbone, _ = tiny_bert(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"], hidden_dim=8)
    >>> model = build_text_classifier(backbone, num_classes=2)
    >>> set_training_mode(model, "frozen")["trainable"]  # only the 8 x 2 + 2 output layer trains
    18
    >>> counts = set_training_mode(model, "lora", lora_rank=2)   # + 2 layers x 4 projections x 2 x (8 + 8)
    >>> counts["trainable"] - 18
    256
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
    backbone = find_backbone(model)
    if mode == "full":
        backbone.trainable = True
    elif mode == "frozen":
        backbone.trainable = False
    else:
        if lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1. Received: lora_rank={lora_rank}")
        if mode == "lora":
            from toolkit.layers.lora import enable_lora, lora_layers

            existing = {layer.rank for layer in lora_layers(backbone).values()}
            if existing and existing != {int(lora_rank)}:
                raise ValueError(f"the backbone already has LoRA adapters of rank {sorted(existing)}; "
                                 f"cannot switch to lora_rank={lora_rank}")
            if not existing:  # a second call (e.g. from fine_tune) keeps the adapters already there
                backbone.trainable = True
                enable_lora(backbone, int(lora_rank))
        else:
            backbone.enable_lora(int(lora_rank))
    if _has_layer(model, "mean_pool"):  # the [CLS] pooler is unused by a mean-pooled head: keep it out of counts
        pooler = next((l for l in backbone.layers if l.name == "pooled_dense"), None)
        if pooler is not None:
            pooler.trainable = False
    return parameter_counts(model)


def _has_layer(model, name):
    return any(layer.name == name for layer in getattr(model, "layers", []))


def parameter_counts(model) -> dict:
    """Total / trainable / non-trainable parameter counts and the trainable fraction."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    total = trainable + frozen
    return {"total": total, "trainable": trainable, "non_trainable": frozen,
            "trainable_fraction": trainable / total if total else 0.0}


def compile_classifier(model, total_steps: int, learning_rate: float = 3e-5, warmup_fraction: float = 0.1,
                       weight_decay: float = 0.01, token_level: bool = False) -> None:
    """Compiles a classifier from `build_text_classifier` / `build_token_classifier` with the recipe."""
    model.compile(
        optimizer=finetune_optimizer(total_steps, learning_rate, warmup_fraction, weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        weighted_metrics=["accuracy"] if token_level else None,
        metrics=None if token_level else ["accuracy"],
    )


def training_flops_per_example(backbone, tokens: float) -> float:
    """Forward + backward FLOPs of one example of `tokens` tokens: 6 x non-embedding params x T + attention.

    Embedding tables are lookups, not matmuls; attention scores and mixing cost 12 x layers x d x T^2
    (forward 4 x L x d x T^2, backward twice that). MiniLM at T = 72: ~4.8 GFLOP.
    """
    embedding = sum(int(np.prod(w.shape)) for w in backbone.weights
                    if "embedding" in w.path and "layer_norm" not in w.path and len(w.shape) == 2)
    dense = backbone.count_params() - embedding
    return 6.0 * dense * tokens + 12.0 * backbone.num_layers * backbone.hidden_dim * tokens ** 2
