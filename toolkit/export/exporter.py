"""The ONE export entry point: versioned, atomic, parity-checked, self-describing.

`export(model, "savedmodels/NAME", target=...)` builds the SavedModel in a temporary folder beside the
destination, reloads it, checks parity with the live model, writes `assets.extra/toolkit.json`, converts
the extra formats (each parity-checked), and only then renames the folder to `NAME/<next version>/`.
Any failure removes the temporary folder: a failed export leaves nothing behind.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import shutil
import uuid

import numpy as np
import tensorflow as tf

from toolkit.export.adapter import ServingAdapter, dense_adapter, to_numpy_dict, with_batch
from toolkit.export.errors import ExportError
from toolkit.export.onnx import export_onnx
from toolkit.export.parity import compare_outputs
from toolkit.export.samples import pad_to_batch, parity_inputs
from toolkit.export.saved_model import TARGETS, build_signatures
from toolkit.export.tflite import export_tflite
from toolkit.export.warmup import write_warmup_requests
from toolkit.export.formats import FORMATS, QUANTIZED_FORMATS  # noqa: F401  (defined there, light; re-exported)

logger = logging.getLogger(__name__)

METADATA_FILE = os.path.join("assets.extra", "toolkit.json")


def list_versions(directory: str) -> list:
    """Integer version folders under a model directory, ascending."""
    if not os.path.isdir(directory):
        return []
    return sorted(int(d) for d in os.listdir(directory)  # ASCII digits only: '²'.isdigit() but int('²') fails
                  if re.fullmatch(r"[0-9]{1,18}", d) and os.path.isdir(os.path.join(directory, d)))


def export(
    model,
    directory: str,
    target: str = "cpu",
    formats=("saved_model",),
    adapter: ServingAdapter | None = None,
    batch_size: int = 8,
    metadata: dict | None = None,
    tolerance: float = 1e-4,
    version: int | None = None,
    quantization=None,
) -> str:
    """Exports `model` to `directory/<version>/` and returns that path.

    Args:
        model: a Keras model.
        directory: the model's folder (TF Serving's model base path + model name).
        target: `"cpu"` (dynamic batch, float32), `"gpu"` (dynamic batch, device-agnostic, float32 I/O)
            or `"tpu"` (static batch, XLA-compiled dense compute under the `tpu_func` alias).
        formats: any of `"saved_model"` (always written), `"tflite"`, `"onnx"`; the extra formats go
            into the same version folder as `model.tflite` / `model.onnx` and cover the dense signature.
        adapter: the task's `ServingAdapter` (raw-input signature, labels); default: dense tensors only.
        batch_size: the static batch of the tpu target.
        metadata: extra facts for `assets.extra/toolkit.json` (metrics, training config, ...).
        tolerance: max abs difference allowed between exported and live outputs.
        version: an explicit version number (default: the next integer).
        quantization: a `toolkit.export.quantize.QuantizationOptions` (held-out scorer, calibration rows,
            metric, max drop) for the quantized formats `tflite-dynamic`, `tflite-fp16`, `tflite-int8`,
            `onnx-int8`: each is scored through its own runtime and left out when it lost more than the max drop.

    Raises:
        ExportError: when the reloaded export disagrees with the live model or a conversion fails.

    Examples:
    >>> import keras
    >>> m = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
    >>> path = export(m, "savedmodels/tiny")
    >>> os.path.basename(path), os.path.basename(export(m, "savedmodels/tiny"))   # versions 1, 2
    ('1', '2')
    >>> served = tf.saved_model.load(path).signatures["serving_default"](x=tf.ones((1, 3)))["outputs"]
    >>> np.allclose(served, m(np.ones((1, 3))), atol=1e-6)   # exported == live
    True
    """
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; supported: {FORMATS}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}. Received: target={target!r}")
    adapter = adapter or dense_adapter(model)
    if adapter.for_target is not None:
        adapter = adapter.for_target(target)
    created = not os.path.isdir(directory)
    os.makedirs(directory, exist_ok=True)
    staging = os.path.join(directory, f".tmp-export-{uuid.uuid4().hex[:8]}")
    static = batch_size if target == "tpu" else None
    try:
        archive, options, compute_fn = build_signatures(model, adapter, target, batch_size)
        archive.write_out(staging, options=options, verbose=False)
        parity = {"saved_model": _check_saved_model(staging, model, adapter, target, batch_size, tolerance)}
        extra_files = {}
        for fmt in formats:
            if fmt == "tflite":
                extra_files["tflite"], parity["tflite"] = export_tflite(compute_fn, adapter, model, staging, tolerance,
                                                                        batch=static)
            elif fmt == "onnx":
                extra_files["onnx"], parity["onnx"] = export_onnx(compute_fn, adapter, model, staging, tolerance,
                                                                  batch=static)
        quantized = {}
        if any(f in QUANTIZED_FORMATS for f in formats):
            from toolkit.export.quantize import export_quantized

            quantized = export_quantized(formats, compute_fn, adapter, model, staging, quantization, extra_files)
        _write_metadata(staging, adapter, target, batch_size, {**(metadata or {}), **(
            {"quantization": quantized} if quantized else {})}, parity, extra_files)
        if extra_files:  # labels.txt + a JSON beside each .tflite / .onnx (what a mobile runtime reads)
            from toolkit.export.edge import write_sidecars

            write_sidecars(staging, extra_files, adapter)
        write_warmup_requests(staging, adapter, static)  # assets.extra/tf_serving_warmup_requests
        final = _publish(staging, directory, version)
    except Exception as error:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not os.listdir(directory):  # a failed first export leaves no empty model folder behind
            os.rmdir(directory)
        if isinstance(error, (ExportError, ValueError)):
            raise
        raise ExportError(f"export to {directory!r} failed: {error}") from error
    logger.info("exported %s (target=%s, formats=%s)", final, target, formats)
    return final


def _publish(staging: str, directory: str, version: int | None) -> str:
    while True:
        number = version if version is not None else (list_versions(directory) or [0])[-1] + 1
        final = os.path.join(directory, str(number))
        if os.path.exists(final):
            if version is not None:
                raise ExportError(f"version folder {final!r} already exists")
            continue
        try:
            os.rename(staging, final)  # atomic on one filesystem: servers never see a half-written version
            return final
        except OSError:
            if version is not None or not os.path.exists(final):
                raise


def _check_saved_model(path, model, adapter, target, batch_size, tolerance) -> dict:
    loaded = tf.saved_model.load(path)
    batch = batch_size if target == "tpu" else None
    raw, dense = parity_inputs(adapter, batch)
    expected_dense = to_numpy_dict(adapter.run_dense(model, dense))
    expected_raw = to_numpy_dict(adapter.run_raw(model, raw))
    got_raw = to_numpy_dict(loaded.signatures["serving_default"](**raw))
    got_dense = to_numpy_dict(loaded.signatures["serving_dense"](**dense))
    result = {
        "serving_default": compare_outputs(expected_raw, got_raw, tolerance, "serving_default"),
        "serving_dense": compare_outputs(expected_dense, got_dense, tolerance, "serving_dense"),
    }
    for name, extra in adapter.extra_signatures.items():
        if extra.sample is None:
            raise ExportError(f"extra signature {name!r} has no sample inputs for the parity check")
        inputs = {k: tf.constant(v, dtype=extra.inputs[k].dtype) for k, v in extra.sample.items()}
        if batch:  # tpu: the signature takes exactly `batch_size` rows
            inputs = {k: pad_to_batch(v, batch) if v.shape.rank else v for k, v in inputs.items()}
        expected = to_numpy_dict(extra.function(model, inputs))
        result[name] = compare_outputs(expected, to_numpy_dict(loaded.signatures[name](**inputs)), tolerance, name)
    return result


def _write_metadata(staging, adapter, target, batch_size, extra, parity, files):
    import keras

    versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    try:
        import keras_hub

        versions["keras_hub"] = keras_hub.__version__
    except ImportError:
        pass
    from toolkit import __version__

    versions["toolkit"] = __version__
    static = batch_size if target == "tpu" else None
    document = {
        "task": adapter.task,
        "target": target,
        "batch_size": static,
        "labels": adapter.labels,
        "signatures": {
            "serving_default": {k: _spec_json(v, static) for k, v in adapter.raw_inputs.items()},
            "serving_dense": {k: _spec_json(v, static) for k, v in adapter.dense_inputs.items()},
            **{name: {k: {"dtype": v.dtype.name, "shape": list(v.shape)}
                      for k, v in (with_batch(extra.inputs, static) if static else extra.inputs).items()}
               for name, extra in adapter.extra_signatures.items()},
        },
        "signature_descriptions": {name: extra.description for name, extra in adapter.extra_signatures.items()},
        "requires": list(adapter.requires),
        "parity_max_abs_diff": parity,
        "files": files,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
        **adapter.metadata,
        **(extra or {}),
    }
    os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
    with open(os.path.join(staging, METADATA_FILE), "w") as f:
        json.dump(document, f, indent=2, default=_json_default)


def _spec_json(spec, batch):
    return {"dtype": spec.dtype.name, "shape": [batch, *[d for d in spec.shape[1:]]]}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
