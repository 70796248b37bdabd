"""Load an exported model as a callable predictor that knows its own metadata."""

from __future__ import annotations

import importlib
import json
import logging
import os

import numpy as np
import tensorflow as tf

from toolkit.export.exporter import METADATA_FILE, list_versions

logger = logging.getLogger(__name__)


def resolve_version_dir(path: str) -> str:
    """`NAME/` (picks the latest integer version) or `NAME/<version>/` -> the version folder."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = list_versions(path)
    if not versions:
        raise FileNotFoundError(f"no SavedModel in {path!r} (expected saved_model.pb or <version>/ folders)")
    latest = str(versions[-1])
    if not os.path.isdir(os.path.join(path, latest)):  # a zero-padded name (`00000123` is version 123, as TF Serving reads it)
        latest = next(d for d in sorted(os.listdir(path)) if d.isascii() and d.isdigit() and int(d) == versions[-1])
    return os.path.join(path, latest)


def read_metadata(version_dir: str) -> dict:
    file = os.path.join(version_dir, METADATA_FILE)
    if not os.path.isfile(file):
        return {}
    with open(file) as f:
        return json.load(f)


# Op libraries a SavedModel may need, named by the toolkit, never by a model folder. A model folder is data:
# a name it lists is imported only when it is in this table (the module that registers those ops).
OP_LIBRARIES = {"tensorflow_text": "tensorflow_text"}


def load_op_libraries(names, source: str = "") -> list:
    """Imports the allow-listed op libraries among `names` (a model's `requires`); others are refused with
    a warning and never imported. Returns the modules imported.

    Examples:
    >>> load_op_libraries(["payload"], source="models/evil/1")
    []
    """
    loaded = []
    for name in names or []:
        module = OP_LIBRARIES.get(str(name))
        if module is None:
            logger.warning("%s: ignoring requires entry %r (not an allowed op library: %s)", source, name,
                           sorted(OP_LIBRARIES))
            continue
        importlib.import_module(module)
        loaded.append(module)
    return loaded


class Predictor:
    """An exported SavedModel as a function: `predictor(inputs) -> {output name: numpy array}`.

    Args:
        path: a version folder or a model folder (latest version).

    Attributes:
        metadata: the export's `assets.extra/toolkit.json`.
        labels: class names (or None).
        signatures: signature names.
    """

    def __init__(self, path: str):
        self.path = resolve_version_dir(path)
        self.metadata = read_metadata(self.path)
        load_op_libraries(self.metadata.get("requires", []), source=self.path)
        self.module = tf.saved_model.load(self.path)
        self.signatures = dict(self.module.signatures)
        self.labels = self.metadata.get("labels")
        self.batch_size = self.metadata.get("batch_size")

    @property
    def version(self) -> int | None:
        name = os.path.basename(os.path.normpath(self.path))
        return int(name) if name.isascii() and name.isdigit() else None  # '²'.isdigit(), but int('²') fails

    def input_specs(self, signature: str = "serving_default") -> dict:
        return self._signature(signature).structured_input_signature[1]

    def _signature(self, name):
        if name not in self.signatures:
            raise KeyError(f"signature {name!r} not found; available: {sorted(self.signatures)}")
        return self.signatures[name]

    def __call__(self, inputs=None, signature: str = "serving_default", chunk_size: int = 256, **named) -> dict:
        """Runs a signature on raw python/numpy inputs.

        Args:
            inputs: the value of the signature's only input, or a dict name -> value.
            signature: `"serving_default"` (raw inputs) or `"serving_dense"` (dense tensors).
            chunk_size: max rows per call (static-batch exports use their own batch and pad the last).
            **named: inputs by name.
        """
        specs = self.input_specs(signature)
        if inputs is not None:
            named = dict(inputs) if isinstance(inputs, dict) else {next(iter(specs)): inputs}
        missing = set(specs) - set(named)
        if missing:
            raise ValueError(f"signature {signature!r} needs inputs {sorted(specs)}; missing {sorted(missing)}")
        arrays = {k: _as_array(named[k], specs[k]) for k in specs}
        total = len(next(iter(arrays.values())))
        step = self.batch_size or chunk_size
        function = self._signature(signature)
        pieces = []
        for start in range(0, total, step):
            chunk = {k: v[start : start + step] for k, v in arrays.items()}
            n = len(next(iter(chunk.values())))
            if self.batch_size and n < self.batch_size:  # static batch: pad with the last row
                chunk = {k: np.concatenate([v, np.repeat(v[-1:], self.batch_size - n, axis=0)]) for k, v in chunk.items()}
            result = function(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in chunk.items()})
            pieces.append({k: v.numpy()[:n] for k, v in result.items()})
        return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]} if pieces else {}


def _as_array(value, spec):
    if spec.dtype == tf.string:
        if isinstance(value, (bytes, str)):
            value = [value]
        return np.array(list(value), dtype=object)
    array = np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    if array.ndim == len(spec.shape) - 1:
        array = array[None]
    return array


def load(path: str) -> Predictor:
    """Loads an export (`NAME/` for the latest version, or `NAME/<version>/`) as a `Predictor`."""
    return Predictor(path)
