"""Mixture of Experts: N expert feed-forward networks and a softmax gate that routes each token to its top k.

The lecture notes (SEED_CATALOGUE.md section 9, F1:142-155) give the form, output = sum_i gate(x)_i * expert_i(x)
with a softmax gate and top-k routing, but no k, no load-balancing loss and no capacity. The options follow the
published forms: top-k gating renormalised over the chosen experts (Shazeer et al. 2017, "Outrageously large
neural networks"; Mixtral), the Switch Transformer's auxiliary loss `weight * N * sum_i f_i * P_i` and its
capacity factor (Fedus et al. 2021: each expert takes at most `ceil(capacity_factor * tokens * k / N)`
assignments, in token order; the rest are dropped for that expert).

Written by hand (keras and keras-hub have no MoE layer). Every expert runs on every token and the gate's zeros
remove the unselected ones: static shapes that XLA-compile (the tpu export) and exact zero weight and gradient
outside the top k; a dispatching implementation only saves compute at a scale this toolkit does not train at.
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class MixtureOfExperts(keras.layers.Layer):
    """Top-k gated mixture of `num_experts` two-layer feed-forward experts, applied to the last axis.

    Args:
        num_experts: int. number of experts N (>= 1).
        hidden_dim: int. hidden units of each expert.
        units: int or None. output units (None: the input's last dimension, as a Transformer FFN).
        top_k: int. experts per token (1 <= k <= N); k = N is the dense softmax-weighted sum.
        activation: str. the experts' hidden activation.
        renormalize: bool. weight the chosen experts by the softmax over their k logits (True, Shazeer et al.)
            or by their share of the full softmax (False, the Switch Transformer's top-1 form).
        capacity_factor: float or None. None: no limit; else each expert takes at most
            `ceil(capacity_factor * tokens * k / N)` assignments per batch (tokens over it are dropped for it).
        load_balance_weight: float. weight of the Switch auxiliary loss `N * sum_i f_i * P_i` (added in
            training; 0 turns it off). f_i: share of assignments routed to expert i; P_i: its mean gate probability.

    Examples:
    >>> import numpy as np
    >>> moe = MixtureOfExperts(num_experts=4, hidden_dim=8, top_k=2)
    >>> x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype("float32")
    >>> moe(x).shape
    TensorShape([2, 5, 6])
    >>> routing = moe.routing(x)
    >>> [int(n) for n in np.asarray(routing["weights"] > 0).sum(axis=-1)][:3]   # two experts per token
    [2, 2, 2]
    >>> round(float(np.sum(routing["expert_use"])), 6)                        # shares of the k assignments
    1.0
    """

    def __init__(self, num_experts: int, hidden_dim: int, units: int | None = None, top_k: int = 2,
                 activation: str = "gelu", renormalize: bool = True, capacity_factor: float | None = None,
                 load_balance_weight: float = 0.0, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1. Received: num_experts={num_experts}")
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in [1, num_experts={num_experts}]. Received: top_k={top_k}")
        if hidden_dim < 1:
            raise ValueError(f"hidden_dim must be >= 1. Received: hidden_dim={hidden_dim}")
        if capacity_factor is not None and capacity_factor <= 0:
            raise ValueError(f"capacity_factor must be > 0 or None. Received: capacity_factor={capacity_factor}")
        if load_balance_weight < 0:
            raise ValueError(f"load_balance_weight must be >= 0. Received: load_balance_weight={load_balance_weight}")
        self.num_experts, self.hidden_dim, self.units, self.top_k = num_experts, hidden_dim, units, top_k
        self.activation = activation
        self.renormalize, self.capacity_factor = renormalize, capacity_factor
        self.load_balance_weight = load_balance_weight
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        units = self.units or dim
        n, h = self.num_experts, self.hidden_dim
        self.gate_kernel = self.add_weight(name="gate_kernel", shape=(dim, n), initializer=self.kernel_initializer)
        self.expert_kernel_1 = self.add_weight(name="expert_kernel_1", shape=(n, dim, h),
                                               initializer=self.kernel_initializer)
        self.expert_bias_1 = self.add_weight(name="expert_bias_1", shape=(n, h), initializer="zeros")
        self.expert_kernel_2 = self.add_weight(name="expert_kernel_2", shape=(n, h, units),
                                               initializer=self.kernel_initializer)
        self.expert_bias_2 = self.add_weight(name="expert_bias_2", shape=(n, units), initializer="zeros")
        self.built = True

    def _route(self, tokens):
        """tokens [T, d] -> (combine weights [T, N], kept assignment mask [T, N], gate probabilities [T, N])."""
        logits = ops.matmul(tokens, ops.cast(self.gate_kernel, tokens.dtype))
        probs = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        _, top_index = ops.top_k(logits, self.top_k)
        chosen = ops.sum(ops.one_hot(top_index, self.num_experts, dtype="float32"), axis=1)
        kept = chosen
        if self.capacity_factor is not None:
            count = ops.cast(ops.shape(tokens)[0], "float32")
            capacity = ops.ceil(self.capacity_factor * count * self.top_k / self.num_experts)
            position = ops.cumsum(chosen, axis=0) * chosen  # 1-based place in each expert's queue
            kept = chosen * ops.cast(position <= capacity, "float32")
        weights = probs * chosen
        if self.renormalize:
            weights = weights / ops.sum(weights, axis=-1, keepdims=True)
        return weights * kept, kept, probs

    def call(self, inputs, training=None):
        shape = ops.shape(inputs)
        tokens = ops.reshape(inputs, (-1, inputs.shape[-1]))
        weights, kept, probs = self._route(tokens)
        hidden = ops.einsum("td,edh->teh", tokens, ops.cast(self.expert_kernel_1, tokens.dtype))
        hidden = keras.activations.get(self.activation)(hidden + ops.cast(self.expert_bias_1, tokens.dtype))
        experts = ops.einsum("teh,ehu->teu", hidden, ops.cast(self.expert_kernel_2, tokens.dtype))
        experts = experts + ops.cast(self.expert_bias_2, tokens.dtype)
        outputs = ops.einsum("te,teu->tu", ops.cast(weights, experts.dtype), experts)
        if training and self.load_balance_weight:
            share = ops.mean(kept, axis=0) / self.top_k
            self.add_loss(self.load_balance_weight * self.num_experts * ops.sum(share * ops.mean(probs, axis=0)))
        units = self.units or inputs.shape[-1]
        return ops.reshape(outputs, (*shape[:-1], units))

    def routing(self, inputs) -> dict:
        """How `inputs` are routed: `weights` [tokens, N] (zero outside each token's top k), `expert_use` (share
        of the kept assignments each expert takes; sums to 1), `dropped` (share of assignments over capacity)."""
        inputs = ops.convert_to_tensor(inputs)
        if not self.built:
            self.build(inputs.shape)
        weights, kept, _ = self._route(ops.reshape(inputs, (-1, inputs.shape[-1])))
        total = ops.cast(ops.shape(weights)[0] * self.top_k, "float32")
        return {"weights": weights, "expert_use": ops.sum(kept, axis=0) / ops.maximum(ops.sum(kept), 1.0),
                "dropped": 1.0 - ops.sum(kept) / total}

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units or input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_experts": self.num_experts, "hidden_dim": self.hidden_dim,
                "units": self.units, "top_k": self.top_k, "activation": self.activation,
                "renormalize": self.renormalize, "capacity_factor": self.capacity_factor,
                "load_balance_weight": self.load_balance_weight,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


def capacity(tokens: int, num_experts: int, top_k: int, capacity_factor: float) -> int:
    """The Switch Transformer's per-expert capacity: `ceil(capacity_factor * tokens * k / N)`.

    >>> capacity(tokens=64, num_experts=4, top_k=1, capacity_factor=1.25)
    20
    """
    return math.ceil(capacity_factor * tokens * top_k / num_experts)
