"""Discriminative learning rates (the notes, F3:8047; Howard & Ruder 2018): smaller rates for the early,
generic layers of a pretrained backbone, larger ones for the later, task-specific layers and the head.

`DiscriminativeOptimizer` wraps any Keras optimiser and scales each variable's *update* by its multiplier:
it lets the wrapped optimiser take its step, then sets `w = w_old + m * (w_new - w_old)`. Every optimiser here
(SGD with or without momentum / Nesterov, AdaGrad, RMSProp, Adam, AdamW) moves a weight by an amount that is
linear in the learning rate, with state (momentum, moments) that does not depend on the rate or that scales
with it, so this is exactly the same optimiser run at `m * lr` for that variable (decoupled weight decay, which
Keras also scales by lr, included). Scaling the *gradient* instead would be exact for SGD only: Adam divides
the gradient's scale out. Keras has no per-variable learning rate, hence this wrapper (the pattern of Keras'
own `LossScaleOptimizer`: one wrapped optimiser, its variables checkpointed and saved with the model).

Multipliers are keyed by `variable.path`, so the optimiser serialises (`get_config`) and reloads with a
`.keras` model; variables not listed train at the full rate.

`backbone_multipliers(model, backbone, [0.1, 0.3, 1.0])` splits the backbone's weight-carrying layers into
contiguous groups, first to last, and gives group i multiplier i; everything outside the backbone (the head)
keeps 1.0.

Examples:
>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="early"),
...                           keras.layers.Dense(1, name="head")])
>>> opt = DiscriminativeOptimizer(keras.optimizers.SGD(0.1), {"early/kernel": 0.1, "early/bias": 0.1})
>>> model.compile(optimizer=opt, loss="mse")
>>> type(keras.optimizers.deserialize(keras.optimizers.serialize(opt))).__name__
'DiscriminativeOptimizer'
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from toolkit.training.lr_schedules import parse_multipliers  # noqa: F401  (TF-free, for --help)


@keras.saving.register_keras_serializable(package="toolkit")
class DiscriminativeOptimizer(keras.optimizers.Optimizer):
    """Runs `optimizer`, with each variable's update scaled by `multipliers[variable.path]` (default 1.0).

    Args:
        optimizer: the wrapped Keras optimiser (its rate or schedule is the head's rate).
        multipliers: `{variable path: multiplier > 0}`.
    """

    def __init__(self, optimizer, multipliers: dict, name: str | None = None, **kwargs):
        if kwargs:
            raise ValueError(f"DiscriminativeOptimizer takes no {sorted(kwargs)}: set them on the wrapped optimizer")
        bad = {k: v for k, v in dict(multipliers).items() if not float(v) > 0}
        if bad:
            raise ValueError(f"learning-rate multipliers must be > 0. Received: {bad}")
        super().__init__(learning_rate=0.0, name=name or "discriminative")
        self.inner_optimizer = optimizer
        self.multipliers = {str(k): float(v) for k, v in dict(multipliers).items()}

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def _learning_rate(self):  # what callbacks (the LR range test) inspect for a schedule
        return self.inner_optimizer._learning_rate

    @_learning_rate.setter
    def _learning_rate(self, value):  # the base class sets its own placeholder rate; the inner one rules
        pass

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def multiplier_of(self, variable) -> float:
        return self.multipliers.get(variable.path, 1.0)

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            with keras.name_scope(self.name):
                self.build(trainable_variables)
            self.built = True
        variables = list(trainable_variables) if trainable_variables is not None else self._trainable_variables
        scaled = [(v, self.multiplier_of(v)) for v, g in zip(variables, grads)
                  if g is not None and self.multiplier_of(v) != 1.0]
        before = [ops.copy(ops.convert_to_tensor(v)) for v, _ in scaled]
        self.inner_optimizer.apply(grads, trainable_variables=trainable_variables)
        for (variable, multiplier), old in zip(scaled, before):
            variable.assign(old + multiplier * (ops.convert_to_tensor(variable) - old))
        return self.iterations

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError("DiscriminativeOptimizer runs on the TensorFlow backend's stateful path")

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {"name": self.name, "multipliers": dict(self.multipliers),
                "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)


def layer_groups(backbone: keras.Model, count: int) -> list:
    """The backbone's layers that own weights, in order, split into `count` contiguous groups of near-equal size
    (fewer weight layers than groups: one layer a group)."""
    layers = [layer for layer in backbone.layers if layer.weights]
    if not layers:
        return []
    return [list(group) for group in np.array_split(np.array(layers, dtype=object), min(count, len(layers)))
            if len(group)]


def backbone_multipliers(model: keras.Model, backbone: keras.Model, multipliers) -> dict:
    """`{variable path: multiplier}` for `DiscriminativeOptimizer`: group i of `layer_groups(backbone, n)` gets
    `multipliers[i]` (n = len(multipliers)); the rest of `model` keeps 1.0.

    Raises:
        ValueError: a multiplier <= 0, or two variables with the same path (the mapping would be ambiguous).
    """
    multipliers = [float(m) for m in multipliers]
    if any(m <= 0 for m in multipliers):
        raise ValueError(f"learning-rate multipliers must be > 0. Received: {multipliers}")
    paths = [v.path for v in model.weights]
    duplicated = sorted({p for p in paths if paths.count(p) > 1})
    if duplicated:
        raise ValueError(f"model {model.name!r} has several variables at path(s) {duplicated[:3]}: rename its layers")
    groups = layer_groups(backbone, len(multipliers))
    if len(groups) < len(multipliers):  # one multiplier per group, the last ones kept for the last layers
        multipliers = multipliers[len(multipliers) - len(groups):]
    return {v.path: m for group, m in zip(groups, multipliers) for layer in group for v in layer.weights
            if m != 1.0}
