"""TF Serving protos (tensorflow-serving-api) shared by the REST and gRPC front ends.

Status and metadata are built once as the real `GetModelStatusResponse` / `GetModelMetadataResponse`
messages; the REST front end prints them with protobuf's JSON mapping, which is what TF Serving does.
"""

from __future__ import annotations

import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from toolkit.serving.codec import RequestError, check_shape

# tensorflow.error.Code, the enum of StatusProto.error_code: name -> number ("OK": 0, "NOT_FOUND": 5, ...)
ERROR_CODES = {value.name: value.number for value in
               get_model_status_pb2.ModelVersionStatus().status.DESCRIPTOR.fields_by_name["error_code"].enum_type.values}


def status_response(entries) -> get_model_status_pb2.GetModelStatusResponse:
    """`repository.versions(...)` entries -> GetModelStatusResponse, as TF Serving's GetModelStatus: state,
    and for a failed load END with the error's code (NOT_FOUND, INVALID_ARGUMENT, UNKNOWN, ...) and message
    (which never holds an absolute path: `Version.error` is written for clients)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for entry in entries:
        status = response.model_version_status.add()
        status.version = entry.number
        status.state = get_model_status_pb2.ModelVersionStatus.State.Value(entry.state)
        status.status.SetInParent()
        if entry.error:
            code = getattr(entry, "error_code", "UNKNOWN")
            status.status.error_code = ERROR_CODES.get(code, ERROR_CODES["UNKNOWN"])
            status.status.error_message = entry.error
    return response


def metadata_response(entry) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """An AVAILABLE version -> GetModelMetadataResponse with its SignatureDefMap."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = entry.name
    response.model_spec.version.value = entry.number
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in entry.servable.signature_defs.items():
        signature_map.signature_def[name].CopyFrom(signature_def)
    response.metadata["signature_def"].Pack(signature_map)
    return response


def to_json(message) -> dict:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)


def metadata_json(entry) -> dict:
    """TF Serving's REST metadata body, plus our `assets.extra/toolkit.json` under `metadata.toolkit`."""
    response = metadata_response(entry)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {
        "model_spec": {"name": entry.name, "signature_name": "", "version": str(entry.number)},
        "metadata": {"signature_def": to_json(signature_map), "toolkit": entry.servable.metadata},
    }


def tensor_to_array(proto, spec, where: str) -> np.ndarray:
    """A TensorProto from a gRPC PredictRequest -> numpy, checked against the signature input spec."""
    import tensorflow as tf

    try:
        dtype = tf.dtypes.as_dtype(proto.dtype).name
        array = tf.make_ndarray(proto)
    except Exception as error:  # noqa: BLE001 - malformed TensorProto
        raise RequestError(f"{where}: malformed TensorProto ({error})") from None
    if dtype != spec.dtype:
        raise RequestError(f"{where}: expects dtype {spec.dtype}, got {dtype}")
    check_shape(array, spec, where)
    return array


def array_to_tensor(array: np.ndarray):
    """A response output -> TensorProto, the message `tf.make_tensor_proto` builds (several numbers as
    little-endian `tensor_content`, one number in its typed field, strings as `string_val`), written directly:
    make_tensor_proto's generic checks cost ~60 us per output, a third of the gRPC path's own time for a small
    model. Other dtypes go to make_tensor_proto.

    >>> import tensorflow as tf
    >>> for a in (np.arange(6, dtype="float32").reshape(2, 3), np.array([b"cat", b"dog"], dtype=object), np.int32(3),
    ...           np.array([2], "int64"), np.array([True, False]), np.zeros((0, 3), "float32")):
    ...     assert array_to_tensor(np.asarray(a)) == tf.make_tensor_proto(a), a
    """
    from tensorflow.core.framework import tensor_pb2

    array = np.asarray(array)
    kind = "string" if array.dtype.kind == "O" else _FIELD_OF.get(array.dtype.str)
    values = array.reshape(-1).tolist() if kind in ("string", "bool_val") or array.size == 1 else None
    if kind is None or (kind == "string" and not all(isinstance(v, bytes) for v in values)):
        import tensorflow as tf

        return tf.make_tensor_proto(array)
    enum, field = _DATATYPE[kind]
    proto = tensor_pb2.TensorProto(dtype=enum)
    proto.tensor_shape.SetInParent()
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    if values is None:
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    else:
        getattr(proto, field).extend(values)
    return proto


# little-endian numpy dtype strings -> a key of _DATATYPE: (tensorflow.DataType number, typed value field)
_FIELD_OF = {"<f4": "float", "<f8": "double", "<i4": "int32", "|u1": "uint8", "<i2": "int16", "|i1": "int8",
             "<i8": "int64", "|b1": "bool_val"}
_DATATYPE = {"float": (1, "float_val"), "double": (2, "double_val"), "int32": (3, "int_val"), "uint8": (4, "int_val"),
             "int16": (5, "int_val"), "int8": (6, "int_val"), "string": (7, "string_val"), "int64": (9, "int64_val"),
             "bool_val": (10, "bool_val")}
