"""TF Serving's Classify / Regress / MultiInference: `tf.Example` inputs and classification/regression results.

A classify or regress signature (method name `tensorflow/serving/classify` / `.../regress`) takes one
input, `inputs`: a `tf.string` batch of serialized `tf.Example`s. This module builds those strings:
- from REST JSON (`{"examples": [{"x": 2.0}], "context": {...}}`): a JSON integer is an int64 feature, a
  JSON number with a fraction or exponent a float feature, a string a bytes feature (its UTF-8 bytes) and
  `{"b64": ...}` a bytes feature (the decoded bytes); a list holds one kind. The examples are built as
  `tf.train.Example` protos, never by hand;
- from gRPC `tensorflow.serving.Input` (`example_list`, or `example_list_with_context`, where each example
  is the context merged with it: TF Serving serializes context and example back to back, so a feature of
  the example replaces the context's feature of the same name).
Results follow TF Serving's classifier/regressor: `classes` (string `[batch, K]`) and/or `scores` (float
`[batch, K]`) -> `ClassificationResult`; `outputs` (float `[batch]` or `[batch, 1]`) -> `RegressionResult`;
REST prints them as `{"results": [[["label", score], ...], ...]}` and `{"results": [value, ...]}`.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from toolkit.serving.codec import RequestError
from toolkit.serving.servable import CLASSIFY_METHOD, PREDICT_METHOD, REGRESS_METHOD

INPUTS_KEY = "inputs"  # TF Serving's kClassifyInputs / kRegressInputs
CLASSES_KEY, SCORES_KEY, OUTPUTS_KEY = "classes", "scores", "outputs"
METHODS = {"classify": CLASSIFY_METHOD, "regress": REGRESS_METHOD}
INT64 = (-(2 ** 63), 2 ** 63 - 1)
FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---- JSON -> tf.train.Example -------------------------------------------------------------------------
def _kind(value, where: str):
    """One JSON feature value -> ("int64" | "float" | "bytes", python value)."""
    if isinstance(value, bool):
        raise RequestError(f"{where}: booleans are not a tf.Example feature type (use 0/1)")
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise RequestError(f"{where}: {value} is outside int64 (only int64 is supported for integers)")
        return "int64", value
    if isinstance(value, float):
        if np.isfinite(value) and abs(value) > FLOAT32_MAX:
            raise RequestError(f"{where}: {value!r} cannot be a float feature without loss of precision")
        return "float", value
    if isinstance(value, str):
        return "bytes", value.encode("utf-8")
    if isinstance(value, dict) and len(value) == 1 and "b64" in value:
        if not isinstance(value["b64"], str):
            raise RequestError(f"{where}: the \"b64\" value must be a string")
        try:
            return "bytes", base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise RequestError(f"{where}: invalid base64 in \"b64\" value ({error})") from None
    raise RequestError(f"{where}: a feature value is a number, a string, {{\"b64\": ...}} or a list of one of "
                       f"these; got {type(value).__name__}")


def _feature(value, where: str):
    from tensorflow.core.example import feature_pb2

    values = value if isinstance(value, list) else [value]
    feature = feature_pb2.Feature()
    if not values:
        return feature  # an empty feature: no kind (as an empty list in a tf.Example)
    kinds = [_kind(v, f"{where}[{i}]" if isinstance(value, list) else where) for i, v in enumerate(values)]
    names = {k for k, _ in kinds}
    if names == {"int64", "float"}:  # [1, 2.5]: whole numbers join the float list
        names = {"float"}
    if len(names) > 1:
        raise RequestError(f"{where}: mixed feature types {sorted(names)} in one list")
    name = names.pop()
    items = [v for _, v in kinds]
    if name == "int64":
        feature.int64_list.value.extend(items)
    elif name == "float":
        feature.float_list.value.extend(float(v) for v in items)
    else:
        feature.bytes_list.value.extend(items)
    return feature


def example_from_json(features, where: str):
    """`{"feature": value | [values]}` -> a `tf.train.Example` proto."""
    from tensorflow.core.example import example_pb2

    if not isinstance(features, dict):
        raise RequestError(f"{where}: an example is a JSON object of feature name -> value(s), got "
                           f"{type(features).__name__}")
    example = example_pb2.Example()
    for name, value in features.items():
        example.features.feature[name].CopyFrom(_feature(value, f"{where}: feature '{name}'"))
    return example


def parse_examples_body(document) -> tuple[str | None, list, object]:
    """A REST classify/regress body -> (signature_name, [Example protos], context Example or None)."""
    if not isinstance(document, dict):
        raise RequestError(f"the request body must be a JSON object, got {type(document).__name__}")
    unknown = sorted(set(document) - {"signature_name", "examples", "context"})
    if unknown:
        raise RequestError(f"unknown key(s) {unknown} in the request body; classify and regress take "
                           "\"signature_name\", \"context\" and \"examples\"")
    signature = document.get("signature_name")
    if signature is not None and not isinstance(signature, str):
        raise RequestError("\"signature_name\" must be a string")
    rows = document.get("examples")
    if not isinstance(rows, list) or not rows:
        raise RequestError("\"examples\" must be a non-empty list of JSON objects (one per tf.Example)")
    context = None
    if "context" in document:
        context = example_from_json(document["context"], "context")
    examples = [example_from_json(row, f"examples[{i}]") for i, row in enumerate(rows)]
    if context is not None:
        for i, example in enumerate(examples):
            shared = sorted(set(example.features.feature) & set(context.features.feature))
            if shared:
                raise RequestError(f"examples[{i}]: feature(s) {shared} are also in \"context\" (a feature "
                                   "appears in the context or in the examples, not both)")
    return signature, examples, context


def serialize(examples: list, context=None) -> np.ndarray:
    """Example protos (+ a context Example) -> the `inputs` tensor: one serialized string per example,
    each the context merged with the example (TF Serving's serialization of example_list_with_context)."""
    prefix = context.SerializeToString() if context is not None else b""
    return np.array([prefix + e.SerializeToString() for e in examples], dtype=object)


def serialized_from_input(input_proto) -> np.ndarray:
    """A gRPC `tensorflow.serving.Input` -> the serialized examples (RequestError when it holds none)."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        examples, context = list(input_proto.example_list.examples), None
    elif kind == "example_list_with_context":
        examples = list(input_proto.example_list_with_context.examples)
        context = input_proto.example_list_with_context.context
    else:
        raise RequestError("Input is empty: give example_list or example_list_with_context")
    if not examples:
        raise RequestError("Input is empty: the example list holds no examples")
    return serialize(examples, context)


def examples_bytes(examples: list, context=None):
    """Every bytes value of the examples' features (for the decoded-pixel limit on image bytes)."""
    for example in ([context] if context is not None else []) + list(examples):
        for feature in example.features.feature.values():
            yield from feature.bytes_list.value


def check_examples_pixels(examples: list, context, max_pixels: int) -> None:
    """LimitError (413) if an image held in a bytes feature would decode to more than `max_pixels`."""
    from toolkit.serving.limits import check_image_pixels
    from toolkit.serving.servable import InputSpec

    values = np.array(list(examples_bytes(examples, context)) or [b""], dtype=object)
    check_image_pixels({"tf.Example bytes feature": values}, {"tf.Example bytes feature": InputSpec("string", (None,))},
                       max_pixels)


def examples_from_input(input_proto) -> tuple[list, object]:
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return list(input_proto.example_list.examples), None
    if kind == "example_list_with_context":
        return list(input_proto.example_list_with_context.examples), input_proto.example_list_with_context.context
    return [], None


# ---- signatures ---------------------------------------------------------------------------------------
def check_signature(servable, signature: str | None, verb: str) -> str:
    """The signature's name if it is a `verb` ("classify" | "regress") signature with TF Serving's input
    contract (one `inputs` string tensor), else RequestError saying what is wrong."""
    name = signature or "serving_default"
    specs = servable.specs(name)  # unknown name -> RequestError listing the signatures
    method = servable.methods.get(name, "")
    wanted = METHODS[verb]
    if method != wanted:
        fitting = sorted(n for n, m in servable.methods.items() if m == wanted)
        hint = (f"; this model's {verb} signature(s): {fitting}" if fitting else
                f"; this model has no {verb} signature" + ("s (use ':predict')" if method == PREDICT_METHOD else ""))
        raise RequestError(f"Expected {verb} signature method_name to be {wanted}. Was: {method or '(none)'} "
                           f"(signature '{name}'){hint}")
    if list(specs) != [INPUTS_KEY] or specs[INPUTS_KEY].dtype != "string":
        raise RequestError(f"signature '{name}': a {verb} signature takes exactly one string input named "
                           f"'{INPUTS_KEY}' (serialized tf.Examples); it has {sorted(specs)}")
    outputs = set(servable.outputs[name])
    if verb == "classify" and not outputs & {CLASSES_KEY, SCORES_KEY}:
        raise RequestError(f"signature '{name}': a classify signature outputs '{CLASSES_KEY}' and/or "
                           f"'{SCORES_KEY}'; it has {sorted(outputs)}")
    if verb == "regress" and OUTPUTS_KEY not in outputs:
        raise RequestError(f"signature '{name}': a regress signature outputs '{OUTPUTS_KEY}'; it has {sorted(outputs)}")
    return name


# ---- outputs -> results -------------------------------------------------------------------------------
def classification_result(outputs: dict, rows: int):
    """`{"classes": [B, K] strings, "scores": [B, K] floats}` (either may be missing) -> ClassificationResult."""
    from tensorflow_serving.apis import classification_pb2

    classes, scores = outputs.get(CLASSES_KEY), outputs.get(SCORES_KEY)
    for key, value in ((CLASSES_KEY, classes), (SCORES_KEY, scores)):
        if value is None:
            continue
        if value.ndim != 2:
            raise ValueError(f"Expected Tensor shape: [batch_size num_classes] but got {list(value.shape)} "
                             f"(output '{key}')")
        if value.shape[0] != rows:
            raise ValueError(f"Input batch size did not match output batch size: {rows} vs. {value.shape[0]} "
                             f"(output '{key}')")
    if classes is not None and classes.dtype != object and classes.dtype.kind not in "SU":
        raise ValueError(f"Expected classes Tensor of DT_STRING. Got: {classes.dtype}")
    if scores is not None and scores.dtype.kind != "f":
        raise ValueError(f"Expected scores Tensor of DT_FLOAT. Got: {scores.dtype}")
    if classes is not None and scores is not None and classes.shape != scores.shape:
        raise ValueError(f"Tensors class and score should match in shape: {list(classes.shape)} vs "
                         f"{list(scores.shape)}")
    count = (classes if classes is not None else scores).shape[1]
    result = classification_pb2.ClassificationResult()
    for i in range(rows):
        row = result.classifications.add()
        for k in range(count):
            item = row.classes.add()
            if classes is not None:
                label = classes[i, k]
                item.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                item.score = float(scores[i, k])
    return result


def regression_result(outputs: dict, rows: int):
    """`{"outputs": [B] or [B, 1] floats}` -> RegressionResult."""
    from tensorflow_serving.apis import regression_pb2

    values = outputs[OUTPUTS_KEY]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise ValueError(f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                         f"{list(values.shape)}")
    if values.shape[0] != rows:
        raise ValueError(f"Input batch size did not match output batch size: {rows} vs. {values.shape[0]}")
    if values.dtype.kind != "f":
        raise ValueError(f"Expected output Tensor of DT_FLOAT. Got: {values.dtype}")
    result = regression_pb2.RegressionResult()
    for value in values.reshape(-1):
        result.regressions.add().value = float(value)
    return result


def result_of(verb: str, outputs: dict, rows: int):
    return classification_result(outputs, rows) if verb == "classify" else regression_result(outputs, rows)


def _number(value: float):
    import orjson

    if np.isnan(value):
        return orjson.Fragment(b"NaN")
    if np.isinf(value):
        return orjson.Fragment(b"Infinity" if value > 0 else b"-Infinity")
    return orjson.Fragment(str(np.float32(value)).encode())  # float32 in shortest round-trip form


def result_json(verb: str, result) -> dict:
    """A result proto -> TF Serving's REST body (values as orjson fragments: print with `codec.dumps`).

    Examples:
    >>> from tensorflow_serving.apis import regression_pb2
    >>> from toolkit.serving.codec import dumps
    >>> r = regression_pb2.RegressionResult(); _ = r.regressions.add(value=3.5)
    >>> dumps(result_json("regress", r))
    b'{"results":[3.5]}'
    """
    if verb == "classify":
        return {"results": [[[c.label, _number(c.score)] for c in row.classes] for row in result.classifications]}
    return {"results": [_number(r.value) for r in result.regressions]}
