"""TensorFlow Serving's REST JSON conventions: request bodies -> numpy inputs, outputs -> response bodies.

Written by hand because TF Serving's own JSON codec (`tensorflow_serving/util/json_tensor.cc`) is C++ and
not part of any Python package; this follows its documented behaviour:
- row format `{"instances": [...]}`: one element per example; with one named input an element is that
  input's value (or an object naming it), with several it is an object `{input: value}`;
  the response is `{"predictions": [...]}`: one value per example when the signature has one output,
  else one object `{output: value}` per example.
- columnar format `{"inputs": value | {input: value}}` -> `{"outputs": value | {output: value}}`.
- binary values are `{"b64": "<base64>"}`; string outputs whose name ends in `_bytes` are returned that
  way, other string outputs as UTF-8 text.
"""

from __future__ import annotations

import base64
import binascii
import math

import numpy as np


class RequestError(ValueError):
    """A bad request (HTTP 400 / gRPC INVALID_ARGUMENT); the message names the field and the problem."""


def _decode_value(value, spec_dtype: str, where: str):
    """Recursively replaces `{"b64": ...}` objects by bytes and checks string/number kinds."""
    if isinstance(value, list):
        return [_decode_value(v, spec_dtype, where) for v in value]
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            if spec_dtype != "string":
                raise RequestError(f"{where}: {{\"b64\": ...}} given for a {spec_dtype} input (b64 is for string inputs)")
            if not isinstance(value["b64"], str):
                raise RequestError(f"{where}: the \"b64\" value must be a string")
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError) as error:
                raise RequestError(f"{where}: invalid base64 in \"b64\" value ({error})") from None
        raise RequestError(f"{where}: unexpected JSON object with keys {sorted(value)[:5]} (only {{\"b64\": ...}} is allowed here)")
    if spec_dtype == "string":
        if isinstance(value, str):
            return value.encode("utf-8")
        raise RequestError(f"{where}: expected a string or {{\"b64\": ...}}, got {type(value).__name__} {_short(value)}")
    if isinstance(value, bool) and spec_dtype != "bool":
        raise RequestError(f"{where}: expected {spec_dtype} numbers, got a boolean")
    if not isinstance(value, (int, float, bool)):
        raise RequestError(f"{where}: expected {spec_dtype} numbers, got {type(value).__name__} {_short(value)}")
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def to_array(value, spec, where: str) -> np.ndarray:
    """JSON value (already holding one batch) -> numpy array checked against `spec` (`InputSpec`)."""
    value = _decode_value(value, spec.dtype, where)
    if spec.dtype == "string":
        array = np.empty(0, dtype=object)
        try:
            array = np.array(value, dtype=object)
            if array.dtype != object or any(not isinstance(v, bytes) for v in array.reshape(-1)):
                raise ValueError
        except ValueError:
            raise RequestError(f"{where}: ragged or mixed string values (every example needs the same shape)") from None
    else:
        try:
            array = np.asarray(value, dtype=spec.numpy_dtype)
        except (ValueError, TypeError, OverflowError) as error:
            raise RequestError(f"{where}: cannot convert to {spec.dtype} ({error}); are the rows ragged?") from None
    check_shape(array, spec, where)
    return array


def check_shape(array: np.ndarray, spec, where: str) -> None:
    """Raises RequestError unless `array` matches `spec.shape` (None = any size)."""
    want = spec.shape
    if array.ndim != len(want) or any(w is not None and w != g for w, g in zip(want[1:], array.shape[1:])):
        shown = ["-1" if w is None else str(w) for w in want]
        raise RequestError(f"{where}: shape {list(array.shape)} does not match the signature's [{', '.join(shown)}]")
    if array.ndim == 0 or array.shape[0] == 0:
        raise RequestError(f"{where}: empty batch")


def parse_request(body, specs: dict) -> tuple[dict, str]:
    """JSON body -> (`{input name: array}`, `"row"` | `"columnar"`).

    Args:
        body: the decoded JSON object.
        specs: the signature's `{input name: InputSpec}`.
    """
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object, got {type(body).__name__}")
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows and has_cols:
        raise RequestError("give either \"instances\" (row format) or \"inputs\" (columnar format), not both")
    if not has_rows and not has_cols:
        raise RequestError("missing \"instances\" (row format) or \"inputs\" (columnar format)")
    names = list(specs)
    if has_rows:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError("\"instances\" must be a non-empty list (one element per example)")
        columns = {name: [] for name in names}
        for index, row in enumerate(rows):
            if isinstance(row, dict) and not (set(row) == {"b64"}):
                _check_names(row, names, f"instances[{index}]")
                for name in names:
                    columns[name].append(row[name])
            elif len(names) == 1:
                columns[names[0]].append(row)
            else:
                raise RequestError(f"instances[{index}]: the signature has inputs {names}; each instance must be an object naming them")
        arrays = {name: to_array(columns[name], specs[name], f"instances: input '{name}'") for name in names}
        return arrays, "row"
    value = body["inputs"]
    if isinstance(value, dict) and set(value) != {"b64"}:
        _check_names(value, names, "inputs")
    elif len(names) == 1:
        value = {names[0]: value}
    else:
        raise RequestError(f"\"inputs\" must be an object naming the signature's inputs {names}")
    arrays = {name: to_array(value[name], specs[name], f"inputs: input '{name}'") for name in names}
    rows = {a.shape[0] for a in arrays.values()}
    if len(rows) > 1:
        raise RequestError(f"inputs have different batch sizes {sorted(rows)}")
    return arrays, "columnar"


def _check_names(given: dict, names: list, where: str) -> None:
    unknown = sorted(set(given) - set(names))
    missing = sorted(set(names) - set(given))
    if unknown:
        raise RequestError(f"{where}: unknown input(s) {unknown}; the signature takes {names}")
    if missing:
        raise RequestError(f"{where}: missing input(s) {missing}; the signature takes {names}")


def _jsonable(array: np.ndarray, name: str):
    if array.dtype == object or array.dtype.kind in "SU":
        as_b64 = name.endswith("_bytes")

        def convert(v):
            v = v if isinstance(v, bytes) else str(v).encode()
            return {"b64": base64.b64encode(v).decode("ascii")} if as_b64 else v.decode("utf-8", "replace")

        return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else array.tolist()
    if array.dtype.kind == "f":
        values = array.tolist()
        return _nan_safe(values) if not np.isfinite(array).all() else values
    return array.tolist()


def _nan_safe(values):
    if isinstance(values, list):
        return [_nan_safe(v) for v in values]
    return values if math.isfinite(values) else ("NaN" if math.isnan(values) else ("Infinity" if values > 0 else "-Infinity"))


def format_response(outputs: dict, layout: str) -> dict:
    """Signature outputs `{name: array}` -> TF Serving's `{"predictions": ...}` or `{"outputs": ...}`."""
    names = sorted(outputs)
    if layout == "columnar":
        if len(names) == 1:
            return {"outputs": _jsonable(outputs[names[0]], names[0])}
        return {"outputs": {n: _jsonable(outputs[n], n) for n in names}}
    sizes = {n: (outputs[n].shape[0] if outputs[n].ndim else None) for n in names}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise RequestError(f"outputs have different batch sizes {sizes}; use the columnar \"inputs\" format")
    if len(names) == 1:
        return {"predictions": _jsonable(outputs[names[0]], names[0])}
    columns = {n: _jsonable(outputs[n], n) for n in names}
    count = next(iter(sizes.values()))
    return {"predictions": [{n: columns[n][i] for n in names} for i in range(count)]}
