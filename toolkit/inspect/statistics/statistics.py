"""Per-channel activation statistics over a dataset: the lecture notes' debug model, streamed.

The notes' recipe (SEED_CATALOGUE.md section 3) is `Model(inputs=model.inputs, outputs=layer.output)`,
`predict` everything, then per-channel `np.min` / `np.max`. Here one multi-output debug model taps every
chosen layer at once and reduces each activation to per-channel statistics inside the graph
(`ChannelStatistics`), batch by batch; numpy only merges `[6, C]` vectors (Chan et al.'s parallel
mean/variance update), so memory stays constant in the dataset size.

Classification (the notes' rules; they give no numeric epsilon, so the thresholds are settable):
- dead: max(|min|, |max|) <= `dead_threshold` (the notes' dead example spans +-0.0030);
- blocked: max < `blocked_threshold` (0: the filter is negative everywhere, so ReLU always outputs 0);
- healthy: everything else;
- n/a: the layer's values go through no ReLU-family activation (logits, softmax, sigmoid, a linear output), so
  the rules say nothing (`channels.checks_for`; blocked only where the activation outputs 0 below 0).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from toolkit.inspect.statistics.channels import StatisticsAccumulator, checks_for
from toolkit.inspect.statistics.layers import (
    ChannelStatistics, PreActivation, activation_layer_name, fused_activation, has_fused_activation,
)
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


class DebugNames(list):
    """The tapped layers' paths (a plain list to compare) plus `taps`: per layer, what was tapped and which
    classes apply (`activation`, `tapped`, `tap`, `checks`, `note`; see `LayerStats`)."""

    def __init__(self, names, taps):
        super().__init__(names)
        self.taps = list(taps)


def build_debug_model(model: keras.Model, layers=None, reduce: bool = True, preactivation: bool = True,
                      zero_tol: float = 0.0) -> tuple:
    """One model from `model.inputs` to every chosen layer's output (or its per-channel statistics).

    Args:
        model: a functional or sequential Keras model (nested sub-models such as a `backbone` are entered).
        layers: layer names or paths; None or "all" taps every conv and dense layer.
        reduce: True appends a `ChannelStatistics` reduction to each tap (outputs `[6, C]`); False returns
            the raw activations, exactly the notes' `Model(inputs=model.inputs, outputs=[layer.output...])`.
        preactivation: tap what the ReLU-family activation sees, so blocked (negative everywhere) filters can
            be told from dead ones: for a fused activation (`Conv2D(activation="relu")`) its linear part; for
            a separate activation layer reached through BatchNormalization (conv -> BN -> ReLU) the
            activation's input. False taps each layer's own output.
        zero_tol: see `ChannelStatistics`.

    Returns:
        `(debug_model, names)`, the names in output order (a `DebugNames`: `names.taps` says what each tap is).

    Examples:
    >>> net = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3, name="c"), keras.layers.ReLU()])
    >>> debug, names = build_debug_model(net)
    >>> names, names.taps[0]["activation"], names.taps[0]["checks"]
    (['c'], 'relu', ('dead', 'blocked'))
    """
    if not model.inputs:
        raise ValueError(f"model {model.name!r} is not built: call it on data or give it an Input first")
    chosen = select_layers(model, layers)
    outputs, taps = [], []
    for path, layer, owner in chosen:
        info, make = _resolve(path, layer, owner, preactivation)
        tap = _tap(model, path, layer, make)
        outputs.append(ChannelStatistics(zero_tol, name=f"stats_{len(outputs)}")(tap) if reduce else tap)
        taps.append(info)
    debug = keras.Model(model.inputs, outputs, name=f"{model.name}_debug")
    return debug, DebugNames([path for path, _, _ in chosen], taps)


# Identity at inference: the activation after them sees the same values.
_IDENTITY = (keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
             keras.layers.SpatialDropout3D, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
             keras.layers.AlphaDropout, keras.layers.Identity)
# Per-channel affine at inference: the activation after them sees other values, so the tap moves past them.
_PER_CHANNEL = (keras.layers.BatchNormalization,)


def _follow(owner, tensor):
    """The activation layer `tensor` reaches in `owner`'s graph through identity and per-channel layers only:
    `(name, activation input, the layer producing that input or None, per-channel layers passed)`, or None."""
    producer, passed = None, []
    for _ in range(64):
        if any(t is tensor for t in owner.outputs):
            return None  # used outside `owner`: its consumers are not known here
        consumers = [(layer, node) for layer in owner.layers for node in layer._inbound_nodes
                     if any(t is tensor for t in node.input_tensors)]
        if len(consumers) != 1:
            return None
        layer, node = consumers[0]
        name = activation_layer_name(layer)
        if name is not None:
            return name, tensor, producer, passed
        if not isinstance(layer, _IDENTITY + _PER_CHANNEL) or len(node.output_tensors) != 1:
            return None
        if isinstance(layer, _PER_CHANNEL):
            passed.append(layer.name)
        producer, tensor = layer, node.output_tensors[0]
    return None


def _resolve(path, layer, owner, preactivation):
    """What to tap for `layer` and which classes apply: `(info, make)`, `make()` giving the tensor in `owner`."""
    prefix = path[:len(path) - len(layer.name)]

    def info(activation, tapped, tap=path, note=""):
        return {"activation": activation, "tapped": tapped, "tap": tap, "checks": checks_for(activation, tapped),
                "note": note}

    own = activation_layer_name(layer)
    if own is not None:
        return info(own, "post-activation"), lambda: layer.output
    if has_fused_activation(layer):
        activation = fused_activation(layer)
        if preactivation:
            return info(activation, "pre-activation"), lambda: PreActivation(layer, name=f"pre_{layer.name}")(
                layer.input)
        return info(activation, "post-activation"), lambda: layer.output
    found = _follow(owner, layer.output)
    if found is None:
        own = fused_activation(layer)  # an activation PreActivation cannot strip (EinsumDense's): after it
        return info(own, "post-activation" if own != "linear" else "output"), lambda: layer.output
    activation, tensor, producer, passed = found
    if not passed:
        return info(activation, "pre-activation"), lambda: layer.output
    between = ", ".join(passed)
    if preactivation:
        return (info(activation, "pre-activation", f"{prefix}{producer.name}",
                     f"taken at {prefix}{producer.name}, the {activation}'s input ({between} in between)"),
                lambda: tensor)
    note = (f"{between} lies between this output and the {activation}: classes apply only to the "
            f"{activation}'s input (pre-activation taps, the default)")
    return {**info(activation, "output", note=note), "checks": ()}, lambda: layer.output


def _tap(model, path, layer, make):
    """`make()` (a tensor in the graph of the model holding `layer`) expressed in `model`'s graph, entering nested
    models through their call."""
    parts = path.split("/")
    if len(parts) == 1:
        return make()
    # Nested: build the tap inside the sub-model, then call that sub-graph on the sub-model's outer input.
    outer = model.get_layer(parts[0])
    inner_tensor = _tap(outer, "/".join(parts[1:]), layer, make)
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
        preactivation: tap what the activation sees: a fused activation's linear part, the input of a ReLU after
            BatchNormalization (see `build_debug_model`); False taps each layer's own output.
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
    taps = getattr(names, "taps", None) or [_resolve(path, layer, owner, preactivation)[0]
                                            for path, layer, owner in select_layers(model, list(names))]
    return StatisticsReport([acc.result(name, dead_threshold, blocked_threshold, **tap)
                             for acc, name, tap in zip(accumulators, names, taps)],
                            thresholds={"dead": dead_threshold, "blocked": blocked_threshold})
