"""TensorFlow's canonical error codes -> the HTTP status TF Serving's REST API answers and the gRPC code its
gRPC API answers, for op errors raised while a signature runs (an abort inside a kernel, an out-of-range
gather, ...): the client learns what kind of failure it was instead of a blanket 500 / INTERNAL."""

from __future__ import annotations

# The canonical codes (tensorflow/core/protobuf/error_codes.proto, the same numbers as gRPC's) -> HTTP, as TF
# Serving's REST handler maps them (ABORTED / ALREADY_EXISTS -> 409, FAILED_PRECONDITION -> 412, ...).
HTTP_OF_CODE = {
    "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 412,
    "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503,
    "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
          "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
          "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")


def op_error_code(error) -> str | None:
    """The canonical code name of a TensorFlow op error (`"ABORTED"`, ...), or None for any other exception.

    Examples:
    >>> import tensorflow as tf
    >>> op_error_code(tf.errors.AbortedError(None, None, "could not create a descriptor"))
    'ABORTED'
    >>> op_error_code(ValueError("x")) is None
    True
    """
    import tensorflow as tf

    if not isinstance(error, tf.errors.OpError):
        return None
    code = int(error.error_code)
    return _NAMES[code] if 0 < code < len(_NAMES) else "UNKNOWN"


def http_status_of(error) -> int | None:
    """TF Serving's HTTP status for a TensorFlow op error, or None for any other exception.

    >>> import tensorflow as tf
    >>> http_status_of(tf.errors.AbortedError(None, None, "x")), http_status_of(tf.errors.OutOfRangeError(None, None, "x"))
    (409, 400)
    """
    code = op_error_code(error)
    return None if code is None else HTTP_OF_CODE[code]
