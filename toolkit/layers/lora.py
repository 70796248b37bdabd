"""LoRA as the lecture notes define it (F3:15711-15795): W = W0 + BA on the flattened d x k projection.

For a projection with frozen pre-trained weights W0 in R^{d x k} (h = W0 x, x in R^k), the update is
BA with B in R^{d x r} (zeros at start) and A in R^{r x k} (A_ij ~ N(0, s^2)): r(d + k) trainable numbers
and an update of rank <= r. (The notes call B the "down-" and A the "up-projection"; A, applied to x first,
is the one that goes down to r dimensions.) Keras' `EinsumDense.enable_lora`, which keras-hub's
`Backbone.enable_lora` calls, factors the kernel differently: for the multi-head query kernel
`(hidden, heads, head_dim)` it makes A `(hidden, heads, r)` and B `(r, head_dim)`, so a 768-wide 12-head
layer at r = 8 gets 768*12*8 + 8*64 = 74,240 parameters and an update of rank up to 12 * 8 = 96. Here the
kernel is flattened to (inputs x outputs), contracted axes first, as the notes' matrix: 768 x 768 at r = 8
is 8 * (768 + 768) = 12,288 parameters of rank exactly <= 8.

Written by hand because neither Keras nor keras-hub offers this factorisation. `LoRAEinsumDense` wraps a
built `EinsumDense` (its kernel frozen); `enable_lora` puts one on the Q/K/V/O projections of every
attention layer of a model; `merge_lora` folds BA into W0 and puts the plain layers back (no adapter
variables and no extra latency in an export); `save_adapters` / `load_adapters` move only A and B, so
several adapters can be swapped on one base, and `swap_merged_adapter` swaps one merged adapter (and the task's
head) for another in a merged model, for serving several tasks from one base.
"""

from __future__ import annotations

import json
import math
import os

import keras
import numpy as np
from keras import ops

# Attention sub-layer attributes of `keras.layers.MultiHeadAttention` (keras-hub's attention layers subclass it).
PROJECTIONS = {"query": "_query_dense", "key": "_key_dense", "value": "_value_dense",
               "attention_output": "_output_dense"}


def _kernel_split(equation: str) -> int:
    """How many leading kernel axes are contracted with the input (the notes' k side) in an einsum equation."""
    inputs, _ = equation.split("->")
    x_spec, kernel_spec = inputs.split(",")
    contracted = [c in x_spec for c in kernel_spec]
    n = sum(contracted)
    if n == 0 or contracted != [True] * n + [False] * (len(kernel_spec) - n) or not x_spec.endswith(kernel_spec[:n]):
        raise ValueError(f"LoRA needs the contracted axes last in the input and first in the kernel; equation "
                         f"{equation!r} does not have that layout")
    return n


@keras.saving.register_keras_serializable(package="toolkit")
class LoRAEinsumDense(keras.layers.Layer):
    """A frozen `EinsumDense` plus the notes' rank-r update: y = x W0 + scale * x reshape((BA)^T).

    The kernel is viewed as a matrix `(k inputs, d outputs)`; `lora_a` is A^T `(k, r)`, `lora_b` is B^T
    `(r, d)`, so the update's matrix is `lora_a @ lora_b` and has rank <= r.

    Args:
        base: a built `keras.layers.EinsumDense` (or its serialized config); its weights are frozen.
        rank: r >= 1.
        alpha: the update is scaled by alpha / r (None: alpha = r, scale 1, the notes' W0 + BA).
        stddev: s of A ~ N(0, s^2) (None: 1 / sqrt(k)).
        seed: seed of A's initialiser.

    Examples:
    >>> base = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 12, 64))
    >>> base.build((None, None, 768))
    >>> lora = LoRAEinsumDense(base, rank=8)
    >>> lora.build((None, None, 768))
    >>> sum(int(np.prod(w.shape)) for w in lora.trainable_weights)   # d*r + r*k, not keras' 74,240
    12288
    >>> int(np.linalg.matrix_rank(lora.delta_matrix(np.random.default_rng(0).normal(size=(8, 768)))))
    8
    """

    def __init__(self, base, rank: int, alpha: float | None = None, stddev: float | None = None, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(base, dict):
            base = keras.saving.deserialize_keras_object(base)
        if not isinstance(base, keras.layers.EinsumDense):
            raise TypeError(f"base must be a keras.layers.EinsumDense. Received: {type(base).__name__}")
        if int(rank) < 1:
            raise ValueError(f"rank must be >= 1. Received: rank={rank}")
        self.base, self.rank = base, int(rank)
        self.alpha = float(alpha) if alpha is not None else float(rank)
        self.stddev, self.seed = stddev, seed
        self._split = _kernel_split(base.equation)
        if base.activation not in (None, keras.activations.linear):
            raise ValueError(f"LoRA adds BA before the activation; base layer {base.name!r} has activation "
                             f"{base.activation.__name__!r}")
        self.base.trainable = False

    def build(self, input_shape):
        if not self.base.built:
            self.base.build(input_shape)
        shape = tuple(self.base.kernel.shape)
        self.fan_in, self.fan_out = int(np.prod(shape[: self._split])), int(np.prod(shape[self._split:]))
        stddev = self.stddev if self.stddev is not None else 1.0 / math.sqrt(self.fan_in)
        self.lora_a = self.add_weight(name="lora_a", shape=(self.fan_in, self.rank), dtype="float32",
                                      initializer=keras.initializers.RandomNormal(0.0, stddev, seed=self.seed))
        self.lora_b = self.add_weight(name="lora_b", shape=(self.rank, self.fan_out), dtype="float32",
                                      initializer="zeros")
        self.built = True

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def delta_matrix(self, lora_b=None):
        """The update as the notes' `(d, k)` matrix BA (numpy); `lora_b`: use this B^T instead of the variable."""
        a = keras.ops.convert_to_numpy(self.lora_a)
        b = keras.ops.convert_to_numpy(self.lora_b) if lora_b is None else np.asarray(lora_b)
        return self.scale * (a @ b).T

    def delta_kernel(self):
        """The update in the kernel's own shape (what `merge` adds to W0)."""
        delta = ops.matmul(self.lora_a, self.lora_b) * self.scale
        return ops.reshape(ops.cast(delta, self.base.kernel.dtype), self.base.kernel.shape)

    def call(self, inputs):
        # W0 x + B(A x), never forming the (d, k) update: the contracted axes are x's trailing ones.
        outputs = self.base(inputs)
        x = ops.cast(ops.reshape(inputs, (-1, self.fan_in)), "float32")
        update = ops.matmul(ops.matmul(x, self.lora_a), self.lora_b) * self.scale
        return outputs + ops.reshape(ops.cast(update, outputs.dtype), ops.shape(outputs))

    def compute_output_shape(self, input_shape):
        return self.base.compute_output_shape(input_shape)

    def merged(self) -> keras.layers.EinsumDense:
        """The base layer with W0 + BA written into its kernel (an in-place update of `base`)."""
        self.base.kernel.assign(self.base.kernel + self.delta_kernel())
        return self.base

    def get_config(self):
        return {**super().get_config(), "base": keras.saving.serialize_keras_object(self.base), "rank": self.rank,
                "alpha": self.alpha, "stddev": self.stddev, "seed": self.seed}


def _attention_layers(model):
    return [layer for layer in model._flatten_layers(include_self=True)
            if isinstance(layer, keras.layers.MultiHeadAttention)]


def lora_layers(model) -> dict:
    """`{"<attention layer path>/<projection>": LoRAEinsumDense}` of every adapter `enable_lora` put in."""
    found = {}
    for attention in _attention_layers(model):
        for target, attribute in PROJECTIONS.items():
            layer = getattr(attention, attribute, None)
            if isinstance(layer, LoRAEinsumDense):
                found[f"{attention.path}/{target}"] = layer
    return found


def enable_lora(model, rank: int = 8, targets=("query", "key", "value", "attention_output"),
                alpha: float | None = None, stddev: float | None = None, seed: int = 0,
                freeze: bool = True) -> dict:
    """Puts the notes' LoRA on the `targets` projections of every attention layer of `model` (built).

    With `freeze` every existing weight of `model` is frozen first (W0 and everything else: a head that should
    train is unfrozen by the caller afterwards). Returns `lora_layers(model)`.

    Examples:
    >>> attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    >>> x = keras.Input((3, 8)); model = keras.Model(x, attention(x, x))
    >>> adapters = enable_lora(model, rank=2)
    >>> sorted(name.split("/")[-1] for name in adapters)
    ['attention_output', 'key', 'query', 'value']
    >>> sum(int(np.prod(w.shape)) for w in model.trainable_weights)   # 4 x 2 x (8 + 8)
    128
    """
    unknown = set(targets) - set(PROJECTIONS)
    if unknown or not targets:
        raise ValueError(f"targets must be a non-empty subset of {sorted(PROJECTIONS)}. Received: {list(targets)}")
    attentions = _attention_layers(model)
    if not attentions:
        raise ValueError(f"model {model.name!r} has no keras MultiHeadAttention layer to put LoRA on")
    if freeze:
        for layer in model._flatten_layers(include_self=False):
            layer.trainable = False
    for i, attention in enumerate(attentions):
        attention.trainable = True  # its own variables stay frozen (set above); the new adapter ones train
        for target in targets:
            attribute = PROJECTIONS[target]
            base = getattr(attention, attribute)
            if isinstance(base, LoRAEinsumDense):
                raise ValueError(f"LoRA is already enabled on {attention.path}/{target}")
            for variable in base.weights:
                variable.trainable = False
            adapter = LoRAEinsumDense(base, rank, alpha=alpha, stddev=stddev,
                                      seed=None if seed is None else seed + 4 * i + list(PROJECTIONS).index(target),
                                      name=f"{base.name}_lora")
            adapter.build(_input_shape(base))
            attention._tracker.unlock()  # a built layer's tracker refuses new sub-layers (as EinsumDense.enable_lora)
            setattr(attention, attribute, adapter)
            attention._tracker.lock()
    return lora_layers(model)


def _input_shape(base):
    x_spec, kernel_spec = base.equation.split("->")[0].split(",")
    split = _kernel_split(base.equation)
    contracted = tuple(int(n) for n in base.kernel.shape[:split])
    return (None,) * (len(x_spec) - split) + contracted


def merge_lora(model) -> int:
    """Folds every adapter into its kernel (W0 <- W0 + BA) and puts the plain `EinsumDense` back.

    Afterwards the model has no adapter variables and computes the same outputs (to float rounding); its
    `EinsumDense` kernels stay frozen. A `tf.function` traced before the merge still holds the adapter path
    (it would add BA twice): trace again (`model`'s own Keras train/predict functions are reset here).
    Returns the number of merged projections.

    Examples:
    >>> attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    >>> x = keras.Input((3, 8)); model = keras.Model(x, attention(x, x))
    >>> _ = enable_lora(model, rank=2); merge_lora(model), len(model.weights)   # back to 8 kernels + biases
    (4, 8)
    """
    merged = 0
    for attention in _attention_layers(model):
        for attribute in PROJECTIONS.values():
            layer = getattr(attention, attribute, None)
            if isinstance(layer, LoRAEinsumDense):
                attention._tracker.unlock()
                setattr(attention, attribute, layer.merged())
                attention._tracker.lock()
                # Keras' tracker keeps replaced sub-layers: drop the adapter so its variables leave the model
                attention._layers[:] = [sub for sub in attention._layers if sub is not layer]
                merged += 1
    _forget_traces(model)  # traced with the adapters: stale now
    return merged


def _forget_traces(model) -> None:
    """Drops Keras' traced train/test/predict functions (they hold the kernels' old computation)."""
    for name in ("train_function", "test_function", "predict_function"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)


def save_adapters(model, path: str, head=None, metadata: dict | None = None) -> str:
    """Writes only the adapters' A, B and scale (`.npz`, keyed by projection path): megabytes, not the model.

    `head`: a layer (the task's output layer) whose weights travel with the adapters, so the file is a whole task
    on top of the base; `metadata`: a JSON-serialisable dict stored beside them (`adapter_metadata` reads it).
    """
    adapters = lora_layers(model)
    if not adapters:
        raise ValueError(f"model {model.name!r} has no LoRA adapters (call enable_lora first)")
    path = os.fspath(path)
    path = path if path.endswith(".npz") else path + ".npz"
    arrays = {}
    for name, layer in adapters.items():
        arrays[f"{name}:a"] = keras.ops.convert_to_numpy(layer.lora_a)
        arrays[f"{name}:b"] = keras.ops.convert_to_numpy(layer.lora_b)
        arrays[f"{name}:scale"] = np.float32(layer.scale)
    for i, weight in enumerate(head.get_weights() if head is not None else []):
        arrays[f"{HEAD}:{i}"] = weight
    if metadata is not None:
        arrays[META] = np.array(json.dumps(metadata))
    np.savez(path, **arrays)
    return path


HEAD, META = "head", "metadata"  # keys of the head's weights and the metadata in an adapter file


def _adapter_names(saved) -> set:
    return {key.rsplit(":", 1)[0] for key in saved.files if key != META and not key.startswith(HEAD + ":")}


def adapter_metadata(path: str) -> dict:
    """The `metadata` dict `save_adapters` stored in an adapter file (`{}` if none)."""
    with np.load(os.fspath(path)) as saved:
        return json.loads(str(saved[META])) if META in saved.files else {}


def swap_merged_adapter(model, current: str, new: str, head=None) -> dict:
    """Replaces one merged adapter by another on one base: W <- W - s BA (current) + s' B'A' (new), in place.

    `model` is merged (`merge_lora`: plain `EinsumDense` where the adapters were) with the adapter file `current`
    folded in; afterwards it computes base + `new` (the two may differ in rank), with `head`'s weights from `new`'s
    file when it holds them. What serving a task on a shared base needs: export the result as the model's next
    version and the server swaps to it without a restart. Returns `new`'s metadata.

    Raises:
        ValueError: the files' projections differ from each other or from the model's, the model still has live
            adapters, or the new head's shapes differ from `head`'s (another class count).
    """
    projections = {f"{attention.path}/{target}": getattr(attention, attribute)
                   for attention in _attention_layers(model) for target, attribute in PROJECTIONS.items()
                   if getattr(attention, attribute, None) is not None}
    with np.load(os.fspath(current)) as old, np.load(os.fspath(new)) as incoming:
        names = _adapter_names(incoming)
        if names != _adapter_names(old):
            raise ValueError(f"adapter file {os.fspath(new)!r} adapts other projections than {os.fspath(current)!r}")
        if not names or not names <= set(projections):
            raise ValueError(f"adapter file {os.fspath(new)!r} adapts projections the model lacks, e.g. "
                             f"{sorted(names - set(projections))[:2]}")
        if any(isinstance(projections[name], LoRAEinsumDense) for name in names):
            raise ValueError("the model still has live adapters: merge_lora first, or use load_adapters")
        weights = None
        if head is not None and f"{HEAD}:0" in incoming.files:
            weights = [incoming[f"{HEAD}:{i}"] for i in range(len(head.get_weights()))]
        if weights is not None and [w.shape for w in weights] != [w.shape for w in head.get_weights()]:
            raise ValueError(f"adapter file {os.fspath(new)!r} holds a head of shapes {[w.shape for w in weights]}; "
                             f"the model's is {[w.shape for w in head.get_weights()]} (another number of classes)")

        def delta(saved, name, shape):
            return (float(saved[f"{name}:scale"]) * (saved[f"{name}:a"] @ saved[f"{name}:b"])).reshape(shape)

        for name in sorted(names):
            kernel = projections[name].kernel
            value = keras.ops.convert_to_numpy(kernel).astype("float64")
            kernel.assign((value - delta(old, name, kernel.shape) + delta(incoming, name, kernel.shape))
                          .astype(kernel.dtype))
        if weights is not None:
            head.set_weights(weights)
        metadata = json.loads(str(incoming[META])) if META in incoming.files else {}
    _forget_traces(model)
    return metadata


def load_adapters(model, path: str) -> int:
    """Loads A and B saved by `save_adapters` into `model`'s adapters (same base, same targets and rank).

    Swapping adapters on one base is `load_adapters(model, "task_a.npz")`, later `load_adapters(model,
    "task_b.npz")`: W0 is untouched. Returns the number of projections loaded.

    Raises:
        ValueError: the file's projections or shapes do not match the model's adapters.
    """
    adapters = lora_layers(model)
    if not adapters:
        raise ValueError(f"model {model.name!r} has no LoRA adapters (call enable_lora with the same rank first)")
    with np.load(os.fspath(path)) as saved:
        names = _adapter_names(saved)
        if names != set(adapters):
            raise ValueError(f"adapter file {os.fspath(path)!r} holds {sorted(names - set(adapters))[:3]}... "
                             f"that the model lacks, or lacks {sorted(set(adapters) - names)[:3]}")
        for name, layer in adapters.items():
            for key, variable in ((f"{name}:a", layer.lora_a), (f"{name}:b", layer.lora_b)):
                if tuple(saved[key].shape) != tuple(variable.shape):
                    raise ValueError(f"adapter {key} has shape {saved[key].shape}; the model's is "
                                     f"{tuple(variable.shape)} (a different rank?)")
                variable.assign(saved[key])
    return len(adapters)
