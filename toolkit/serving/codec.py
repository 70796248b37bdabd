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
- numbers: a value that does not fit the input's dtype exactly (an integer float32 cannot hold, such as
  16777217; anything beyond float32's range, such as 1e39; an int32 out of range; a fraction for an integer
  input) is a 400 "... without loss of precision"; `NaN`, `Infinity` and `-Infinity` are read and written as
  bare literals, and float32 outputs are printed in their shortest round-trip float32 form (0.2, not
  0.20000000298023224).
Parsing and printing use orjson (C); nesting deeper than the limit is refused before parsing.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np
import orjson

from toolkit.serving.limits import LimitError

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


class RequestError(ValueError):
    """A bad request (HTTP 400 / gRPC INVALID_ARGUMENT); the message names the field and the problem."""


# ---- body -> JSON document ---------------------------------------------------------------------------
_TOKENS = np.zeros(256, bool)
_TOKENS[[ord(c) for c in '[]{}"\\']] = True


def json_depth(body: bytes) -> int:
    """Deepest `[`/`{` nesting of a JSON text, brackets inside strings ignored (vectorized over the few
    structural bytes; no parse).

    Examples:
    >>> json_depth(b'{"a": [[1], "]]][[["]}')
    3
    """
    data = np.frombuffer(body, np.uint8)
    where = np.flatnonzero(_TOKENS[data])
    tokens = data[where]
    if b"\\" in body:  # drop escaped characters (a backslash escapes the next byte), keep the rest
        keep, skip_until = np.ones(len(tokens), bool), -1
        for k in np.flatnonzero(tokens == 92).tolist():
            if where[k] <= skip_until:
                keep[k] = False  # this backslash is itself escaped
                continue
            skip_until = where[k] + 1
            keep[k] = False
            if k + 1 < len(tokens) and where[k + 1] == skip_until:
                keep[k + 1] = False
        where, tokens = where[keep], tokens[keep]
    quotes = tokens == 34
    inside = (np.cumsum(quotes) % 2).astype(bool) | quotes  # from an opening quote through its closing one
    opens = ((tokens == 91) | (tokens == 123)) & ~inside
    closes = ((tokens == 93) | (tokens == 125)) & ~inside
    return int(np.cumsum(opens.astype(np.int32) - closes).max(initial=0))


def decode_body(body: bytes, max_depth: int = 100):
    """Request bytes -> JSON document; RequestError (400) if malformed, LimitError (400) if nested too deep.

    Examples:
    >>> decode_body(b'{"instances": [NaN, 1.5]}')
    {'instances': [nan, 1.5]}
    >>> decode_body(b"[" * 200 + b"]" * 200)
    Traceback (most recent call last):
    ...
    toolkit.serving.limits.LimitError: the JSON body is nested 200 levels deep, over the limit of 100 (--max-json-depth)
    """
    if body.count(b"[") + body.count(b"{") > max_depth:
        depth = json_depth(body)
        if depth > max_depth:
            raise LimitError(f"the JSON body is nested {depth} levels deep, over the limit of {max_depth} "
                             "(--max-json-depth)", 400)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        first = error
    if b"NaN" in body or b"Infinity" in body:  # TF Serving accepts bare NaN / Infinity; orjson does not
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            pass
    raise RequestError(f"malformed JSON in the request body: {first}") from None


# ---- JSON values -> numpy ----------------------------------------------------------------------------
def _decode_value(value, spec_dtype: str, where: str, depth: int = 0):
    """Recursively replaces `{"b64": ...}` objects by bytes and checks string/number kinds."""
    if depth > 64:
        raise RequestError(f"{where}: values nested deeper than 64 levels (a tensor has at most 64 dimensions)")
    if isinstance(value, list):
        return [_decode_value(v, spec_dtype, where, depth + 1) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "b64" in value:
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
    if spec_dtype == "bool" and not isinstance(value, bool):
        raise RequestError(f"{where}: expected booleans (true/false), got {type(value).__name__} {_short(value)}")
    if not isinstance(value, (int, float, bool)):
        raise RequestError(f"{where}: expected {spec_dtype} numbers, got {type(value).__name__} {_short(value)}")
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _lossy(where: str, value, dtype: str, why: str = "") -> RequestError:
    value = value.item() if isinstance(value, np.generic) else value
    return RequestError(f"{where}: JSON value {_short(value)} cannot be converted to {dtype} without loss of "
                        f"precision{why}")


def _numeric(value, spec, where: str) -> np.ndarray:
    """Nested lists of JSON numbers -> an array of the spec's dtype, refusing lossy conversions."""
    target = spec.numpy_dtype
    try:
        inferred = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        inferred = None
    if inferred is None or inferred.dtype.kind not in "biuf":
        _decode_value(value, spec.dtype, where)  # raises a precise error for a wrong kind of value
        raise RequestError(f"{where}: cannot convert to {spec.dtype}; are the rows ragged (every example needs the same shape)?")
    kind = inferred.dtype.kind
    if target.kind == "b":
        if kind != "b":
            _decode_value(value, spec.dtype, where)
        return inferred
    if kind == "b":
        raise RequestError(f"{where}: expected {spec.dtype} numbers, got a boolean")
    if target.kind == "f":
        if kind == "f":
            with np.errstate(over="ignore"):
                converted = inferred.astype(target)
            if target.itemsize < 8:
                finite = np.isfinite(inferred)
                overflow = np.isinf(converted) & finite
                if overflow.any():
                    raise _lossy(where, inferred[overflow].flat[0], spec.dtype, f" (beyond {spec.dtype}'s range)")
                whole = finite & (inferred == np.floor(inferred)) & (np.abs(inferred) > 2 ** (np.finfo(target).nmant + 1))
                if whole.any():
                    bad = whole & (converted.astype(np.float64) != inferred)
                    if bad.any():
                        raise _lossy(where, int(inferred[bad].flat[0]), spec.dtype)
            return converted
        with np.errstate(over="ignore"):
            converted = inferred.astype(target)
        big = np.abs(inferred.astype(np.float64)) > 2 ** (np.finfo(target).nmant + 1)  # beyond: not every int fits
        if big.any():
            for wanted, got in zip(inferred[big].tolist(), converted[big].tolist()):
                if not np.isfinite(got) or int(got) != wanted:
                    raise _lossy(where, wanted, spec.dtype)
        return converted
    # integer inputs
    if kind == "f":
        odd = inferred[~np.isfinite(inferred) | (inferred != np.floor(inferred))]
        shown = odd.flat[0] if odd.size else inferred.flat[0]
        raise _lossy(where, float(shown), spec.dtype, " (integer inputs take JSON integers)")
    info = np.iinfo(target)
    low, high = inferred.min(initial=0), inferred.max(initial=0)
    if low < info.min or high > info.max:
        shown = int(low) if low < info.min else int(high)
        raise _lossy(where, shown, spec.dtype, f" (outside [{info.min}, {info.max}])")
    return inferred.astype(target)


def to_array(value, spec, where: str) -> np.ndarray:
    """JSON value (already holding one batch) -> numpy array checked against `spec` (`InputSpec`)."""
    if spec.dtype == "string":
        value = _decode_value(value, spec.dtype, where)
        try:
            array = np.array(value, dtype=object)
            if array.dtype != object or any(not isinstance(v, bytes) for v in array.reshape(-1)):
                raise ValueError
        except ValueError:
            raise RequestError(f"{where}: ragged or mixed string values (every example needs the same shape)") from None
    else:
        array = _numeric(value, spec, where)
    check_shape(array, spec, where)
    return array


def check_shape(array: np.ndarray, spec, where: str) -> None:
    """Raises RequestError for an empty batch. The signature's static shape is NOT enforced: as in TF
    Serving, the tensor goes to the graph, which takes it (`[3]` for an `x: [-1, 1]` input) or refuses it
    with its own error (a 400). `spec` is kept for callers' symmetry."""
    if array.ndim and array.shape[0] == 0:
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
            if isinstance(row, dict) and not (len(row) == 1 and "b64" in row):
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
    if isinstance(value, dict) and not (len(value) == 1 and "b64" in value):
        _check_names(value, names, "inputs")
    elif len(names) == 1:
        value = {names[0]: value}
    else:
        raise RequestError(f"\"inputs\" must be an object naming the signature's inputs {names}")
    # columnar inputs need not share their 0-th dimension (TF Serving's rule): the graph decides
    arrays = {name: to_array(value[name], specs[name], f"inputs: input '{name}'") for name in names}
    return arrays, "columnar"


def _check_names(given: dict, names: list, where: str) -> None:
    unknown = sorted(set(given) - set(names))
    missing = sorted(set(names) - set(given))
    if unknown:
        raise RequestError(f"{where}: unknown input(s) {unknown}; the signature takes {names}")
    if missing:
        raise RequestError(f"{where}: missing input(s) {missing}; the signature takes {names}")


# ---- outputs -> JSON ---------------------------------------------------------------------------------
def _literal(value) -> orjson.Fragment:
    if np.isnan(value):
        return orjson.Fragment(b"NaN")
    if np.isinf(value):
        return orjson.Fragment(b"Infinity" if value > 0 else b"-Infinity")
    return orjson.Fragment(str(value).encode() if isinstance(value, np.float32) else repr(float(value)).encode())


def _jsonable(array: np.ndarray, name: str):
    """An output array -> what orjson prints as TF Serving does (numpy arrays stay numpy: printed in C)."""
    if array.dtype == object or array.dtype.kind in "SU":
        as_b64 = name.endswith("_bytes")

        def convert(v):
            v = v if isinstance(v, bytes) else str(v).encode()
            return {"b64": base64.b64encode(v).decode("ascii")} if as_b64 else v.decode("utf-8", "replace")

        return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else array.tolist()
    if array.dtype.kind == "f":
        if array.dtype.itemsize < 4 or array.dtype not in (np.float32, np.float64):
            array = array.astype(np.float32)
        if not np.isfinite(array).all():
            return np.array([_literal(v) for v in array.reshape(-1)], dtype=object).reshape(array.shape).tolist()
    elif array.dtype.kind not in "biu":
        return array.tolist()
    if array.ndim == 0:
        return array[()]
    return np.ascontiguousarray(array)


def response_body(outputs: dict, layout: str) -> dict:
    """Signature outputs `{name: array}` -> TF Serving's `{"predictions": ...}` or `{"outputs": ...}` (values
    still numpy arrays / orjson fragments: print it with `dumps`)."""
    names = sorted(outputs)
    if layout == "columnar":
        if len(names) == 1:
            return {"outputs": _jsonable(outputs[names[0]], names[0])}
        return {"outputs": {n: _jsonable(outputs[n], n) for n in names}}
    sizes = {n: (outputs[n].shape[0] if np.ndim(outputs[n]) else None) for n in names}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise RequestError(f"outputs have different batch sizes {sizes}; use the columnar \"inputs\" format")
    if len(names) == 1:
        return {"predictions": _jsonable(outputs[names[0]], names[0])}
    columns = {n: _jsonable(outputs[n], n) for n in names}
    count = next(iter(sizes.values()))
    return {"predictions": [{n: columns[n][i] for n in names} for i in range(count)]}


def dumps(document) -> bytes:
    """orjson with numpy arrays printed natively (float32 in shortest round-trip form)."""
    return orjson.dumps(document, option=_NUMPY)


def encode_response(outputs: dict, layout: str) -> bytes:
    """Signature outputs -> the response bytes.

    Examples:
    >>> encode_response({"y": np.array([0.2, np.nan, -np.inf], np.float32)}, "columnar")
    b'{"outputs":[0.2,NaN,-Infinity]}'
    """
    return dumps(response_body(outputs, layout))


def format_response(outputs: dict, layout: str) -> dict:
    """`encode_response` read back into Python values (for callers that want a dict)."""
    return json.loads(encode_response(outputs, layout))


def parse_body(body: bytes, max_depth: int, signatures: dict):
    """Body -> (signature name, arrays, layout) against `signatures` (`{name: {input: InputSpec}}`): the
    whole parse, picklable in and out, so large bodies can run in a helper process."""
    document = decode_body(body, max_depth)
    signature = document.get("signature_name") if isinstance(document, dict) else None
    if signature is not None and not isinstance(signature, str):
        raise RequestError("\"signature_name\" must be a string")
    name = signature or "serving_default"
    if name not in signatures:
        raise RequestError(f"signature_name '{name}' not found; this model has {sorted(signatures)}")
    arrays, layout = parse_request(document, signatures[name])
    return signature, arrays, layout
