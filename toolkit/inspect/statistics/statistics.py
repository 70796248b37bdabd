"""Per-channel activation statistics over a dataset: the lecture notes' debug model, streamed.

The notes' recipe (SEED_CATALOGUE.md section 3) is `Model(inputs=model.inputs, outputs=layer.output)`,
`predict` everything, then per-channel `np.min` / `np.max`. Here one multi-output debug model taps every
chosen layer at once and reduces each activation to per-channel statistics inside the graph
(`ChannelStatistics`), batch by batch; numpy only merges `[6, C]` vectors (Chan et al.'s parallel
mean/variance update), so memory stays constant in the dataset size.

Classification (the notes' rules; they give no numeric epsilon, so the thresholds are settable):
- dead: max(|min|, |max|) <= `dead_threshold` (the notes' dead example spans +-0.0030);
- blocked: max < `blocked_threshold` (0: the filter is negative everywhere, so ReLU always outputs 0);
- healthy: everything else.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from toolkit.inspect.statistics.channels import StatisticsAccumulator
from toolkit.inspect.statistics.layers import ChannelStatistics, PreActivation, has_fused_activation
from toolkit.inspect.statistics.report import StatisticsReport


def is_conv_or_dense(layer) -> bool:
    """The default tap set: Dense and every convolution layer."""
    return isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense)) or "Conv" in type(layer).__name__


def walk_layers(model: keras.Model, prefix: str = ""):
    """Yields `(path, layer, owner)` for every layer of `model` (input layers too), depth first.

    A nested functional model (a transfer-learning `backbone`, say) is entered rather than yielded; its
    layers get paths like `"backbone/conv"`. `owner` is the model that directly holds the layer. This is how
    `select_layers` and `toolkit.inspect` find layers by name or path.

    Args:
        model: a Keras model.
        prefix: prepended to every path (used for the recursion).

    Examples:
    >>> x = keras.Input((3,), name="x")
    >>> inner = keras.Model(x, keras.layers.Dense(2, name="d")(x), name="inner")
    >>> outer = keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(1, name="out")])
    >>> [path for path, _, _ in walk_layers(outer)]
    ['inner/x', 'inner/d', 'out']
    """
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model) and hasattr(layer, "_operations"):
            yield from walk_layers(layer, prefix=f"{path}/")
        else:
            yield path, layer, model


def select_layers(model: keras.Model, layers=None) -> list:
    """Resolves layer names (or "all" / None: every conv and dense layer) to `(path, layer, owner)` triples.

    Names may be plain (`"stage1_a_conv"`, searched in nested models too) or paths (`"backbone/stage1_a_conv"`).
    """
    found = list(walk_layers(model))
    if layers is None or layers == "all" or layers == ["all"]:
        chosen = [item for item in found if is_conv_or_dense(item[1])]
        if not chosen:
            raise ValueError(f"model {model.name!r} has no conv or dense layers; name the layers to inspect")
        return chosen
    if isinstance(layers, str):
        layers = [name.strip() for name in layers.split(",") if name.strip()]
    chosen = []
    for name in layers:
        matches = [item for item in found if item[0] == name or item[1].name == name]
        if not matches:
            raise ValueError(f"model {model.name!r} has no layer {name!r}; layers: {[p for p, _, _ in found]}")
        chosen.append(matches[0])
    return chosen


def build_debug_model(model: keras.Model, layers=None, reduce: bool = True, preactivation: bool = True,
                      zero_tol: float = 0.0) -> tuple:
    """One model from `model.inputs` to every chosen layer's output (or its per-channel statistics).

    Args:
        model: a functional or sequential Keras model (nested sub-models such as a `backbone` are entered).
        layers: layer names or paths; None or "all" taps every conv and dense layer.
        reduce: True appends a `ChannelStatistics` reduction to each tap (outputs `[6, C]`); False returns
            the raw activations, exactly the notes' `Model(inputs=model.inputs, outputs=[layer.output...])`.
        preactivation: for layers with a fused activation (`Conv2D(activation="relu")`), tap the linear
            part instead, so blocked (negative everywhere) filters can be told from dead ones.
        zero_tol: see `ChannelStatistics`.

    Returns:
        `(debug_model, names)`, the names in output order.

    Examples:
    >>> net = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3, name="c")])
    >>> debug, names = build_debug_model(net)
    >>> names
    ['c']
    """
    if not model.inputs:
        raise ValueError(f"model {model.name!r} is not built: call it on data or give it an Input first")
    chosen = select_layers(model, layers)
    outputs = []
    for path, layer, owner in chosen:
        tap = _tap(model, path, layer, owner, preactivation)
        outputs.append(ChannelStatistics(zero_tol, name=f"stats_{len(outputs)}")(tap) if reduce else tap)
    debug = keras.Model(model.inputs, outputs, name=f"{model.name}_debug")
    return debug, [path for path, _, _ in chosen]


def _tap(model, path, layer, owner, preactivation):
    """The symbolic output of `layer` expressed in `model`'s graph (entering nested models through their call)."""
    def output_in(owner_model, layer):
        if preactivation and has_fused_activation(layer):
            inputs = layer.input
            return PreActivation(layer, name=f"pre_{layer.name}")(inputs)
        return layer.output

    parts = path.split("/")
    if len(parts) == 1:
        return output_in(model, layer)
    # Nested: build the tap inside the sub-model, then call that sub-graph on the sub-model's outer input.
    outer = model.get_layer(parts[0]) if len(parts) > 1 else model
    inner_path = "/".join(parts[1:])
    inner_tensor = _tap(outer, inner_path, layer, owner, preactivation)
    inner_model = keras.Model(outer.inputs, inner_tensor, name=f"{outer.name}_tap_{layer.name}")
    node = outer._inbound_nodes[0]
    args = node.input_tensors
    return inner_model(args[0] if len(args) == 1 else list(args))


def iterate_inputs(data, batch_size: int = 256):
    """Batches of model inputs from arrays, `(x, y)` tuples, or a `tf.data.Dataset` of `x` or `(x, y, ...)`."""
    if isinstance(data, tf.data.Dataset):
        for batch in data:
            yield batch[0] if isinstance(batch, (tuple, list)) else batch
        return
    if isinstance(data, (tuple, list)):
        data = data[0]
    data = np.asarray(data)
    if len(data) == 0:
        raise ValueError("no data was given: the input array is empty")
    for start in range(0, len(data), batch_size):
        yield data[start:start + batch_size]


def layer_statistics(model: keras.Model, data, layers=None, batch_size: int = 256, dead_threshold: float = 0.01,
                     blocked_threshold: float = 0.0, preactivation: bool = True, zero_tol: float = 0.0,
                     max_batches: int | None = None, debug_model=None) -> StatisticsReport:
    """Per-channel min, max, mean, std and fraction of zeros of each chosen layer over `data`, streamed.

    Args:
        model: the Keras model to inspect.
        data: input arrays, `(x, y)`, or a `tf.data.Dataset` of batches.
        layers: layer names / paths, or None / "all" for every conv and dense layer.
        batch_size: batch size for array data.
        dead_threshold, blocked_threshold: classification thresholds (see `classify_channels`).
        preactivation: tap the linear part of layers with fused activations (see `build_debug_model`).
        zero_tol: |x| at or below this counts as zero.
        max_batches: stop after this many batches (None: the whole dataset).
        debug_model: a `(model, names)` pair from `build_debug_model` to reuse.

    Examples:
    >>> net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    >>> report = layer_statistics(net, np.ones((5, 3), "float32"))
    >>> report.layers[0].name
    'd'
    """
    debug, names = debug_model or build_debug_model(model, layers, True, preactivation, zero_tol)
    step = tf.function(lambda x: debug(x, training=False), reduce_retracing=True)
    accumulators = [StatisticsAccumulator() for _ in names]
    for index, batch in enumerate(iterate_inputs(data, batch_size)):
        if max_batches is not None and index >= max_batches:
            break
        outputs = step(batch)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for accumulator, stats in zip(accumulators, outputs):
            accumulator.update(stats.numpy())
    return StatisticsReport([acc.result(name, dead_threshold, blocked_threshold)
                             for acc, name in zip(accumulators, names)],
                            thresholds={"dead": dead_threshold, "blocked": blocked_threshold})
