"""`weights=PATH`: load a local `.weights.h5`, legacy `.h5` or `.keras` file into a backbone, checked first.

Keras' own loaders fail on a file that does not fit with messages that name neither the layer nor the shapes
(a legacy `.h5` with another layer count: "Layer count mismatch"; a shape: an `assign` error deep inside).
`load_weights_file` compares first and names the first layer that does not fit, with both shapes.

- legacy `.h5` (keras.applications' cache files, `model.save("x.h5")`, tf.keras 2) and `.keras` files keep
  layer names: layers are matched by name (a nested model is flattened), extra layers in the file (a
  classification top, a head) are ignored, every weighted layer of the backbone must be found.
- `.weights.h5` (Keras 3 `save_weights`) has no layer names, only the model's structure: entries are matched
  in Keras' own order (per class: `conv2d`, `conv2d_1`, ...), then Keras loads it.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from toolkit.models.pretrained.convert import ConversionError, legacy_h5_layers


class WeightsMismatchError(ValueError):
    """A weights file that does not fit the model: names the first mismatching layer and shapes."""


def _shapes(layer) -> list:
    return [tuple(int(d) for d in w.shape) for w in layer.weights]


def _flat_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def _keras_file_layers(path: str) -> dict:
    from toolkit.saving import load_model

    model = load_model(path, compile=False)
    return {layer.name: {w.name: np.asarray(w.numpy()) for w in layer.weights}
            for layer in _flat_layers(model) if layer.weights}


def _mismatch(path, model, layer, detail) -> WeightsMismatchError:
    return WeightsMismatchError(
        f"weights file {os.path.basename(path)!r} does not fit {model.name!r}: layer {layer.name!r} {detail}")


def _load_by_name(model, path, layers: dict) -> int:
    own = [layer for layer in _flat_layers(model) if layer.weights]
    if not any(layer.name in layers for layer in own):
        raise WeightsMismatchError(
            f"weights file {os.path.basename(path)!r} shares no layer name with {model.name!r}: the file has "
            f"{list(layers)[:5]}..., the model {[layer.name for layer in own][:5]}... (another architecture?)")
    assignments = []
    for layer in own:
        expected = _shapes(layer)
        if layer.name not in layers:
            raise _mismatch(path, model, layer, f"(shapes {expected}) is not in the file")
        stored = layers[layer.name]
        names = [w.name for w in layer.weights]
        values = [stored[n] for n in names] if all(n in stored for n in names) else list(stored.values())
        got = [tuple(np.shape(v)) for v in values]
        if got != expected:
            for index, (want, have) in enumerate(zip(expected, got)):
                if want != have:
                    raise _mismatch(path, model, layer, f"weight {names[index]!r}: the file has shape {have}, "
                                    f"the model expects {want}")
            raise _mismatch(path, model, layer, f"has {len(got)} weights {got} in the file, the model "
                            f"expects {len(expected)} {expected}")
        assignments.append((layer, values))
    for layer, values in assignments:
        layer.set_weights(values)
    return len(assignments)


def _snake(name: str) -> str:
    from keras.src.utils import naming

    return naming.to_snake_case(name)


def _structural_entries(model, prefix="layers"):
    """(layer, h5 path of its `vars`) in the order and naming Keras 3's `save_weights` uses."""
    used: dict = {}
    for layer in model.layers:
        base = _snake(layer.__class__.__name__)
        if base in used:
            used[base] += 1
            base = f"{base}_{used[base]}"
        else:
            used[base] = 0
        path = f"{prefix}/{base}"
        if isinstance(layer, keras.Model):
            yield from _structural_entries(layer, f"{path}/layers")
        elif layer.weights:
            yield layer, f"{path}/vars"


def _check_weights_h5(model, path) -> None:
    import h5py

    with h5py.File(path, "r") as handle:
        for layer, vars_path in _structural_entries(model):
            expected = _shapes(layer)
            if vars_path not in handle:
                raise _mismatch(path, model, layer, f"(shapes {expected}; entry {vars_path}) is not in the file")
            group = handle[vars_path]
            got = [tuple(group[str(i)].shape) for i in range(len(group))]
            for index, (want, have) in enumerate(zip(expected, got)):
                if want != have:
                    raise _mismatch(path, model, layer, f"weight {layer.weights[index].name!r} (entry {vars_path}/"
                                    f"{index}): the file has shape {have}, the model expects {want}")
            if len(got) != len(expected):
                raise _mismatch(path, model, layer, f"has {len(got)} weights {got} in the file, the model "
                                f"expects {len(expected)} {expected}")


def load_weights_file(model: keras.Model, path: str) -> keras.Model:
    """Loads `path` into `model` after checking that it fits; returns `model`.

    Raises:
        FileNotFoundError: no such file.
        WeightsMismatchError: the first layer whose weights are missing or shaped differently.
        ValueError: a file type other than `.weights.h5`, `.h5`, `.keras`.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path!r} does not exist")
    if path.endswith(".weights.h5"):
        _check_weights_h5(model, path)
        model.load_weights(path)
        return model
    if path.endswith((".h5", ".hdf5")):
        try:
            layers = legacy_h5_layers(path)
        except ConversionError as error:
            raise WeightsMismatchError(f"weights file {os.path.basename(path)!r}: {error}") from None
        _load_by_name(model, path, layers)
        return model
    if path.endswith(".keras"):
        _load_by_name(model, path, _keras_file_layers(path))
        return model
    raise ValueError(f"weights file {path!r}: expected a .weights.h5, .h5 or .keras file")
