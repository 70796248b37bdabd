"""TensorFlow op errors keep their canonical code on both front ends (TF Serving's REST mapping)."""

import pytest

from toolkit.serving.status import HTTP_OF_CODE, http_status_of, op_error_code


@pytest.mark.parametrize("name, code, http", [
    ("AbortedError", "ABORTED", 409), ("OutOfRangeError", "OUT_OF_RANGE", 400),
    ("ResourceExhaustedError", "RESOURCE_EXHAUSTED", 429), ("UnimplementedError", "UNIMPLEMENTED", 501),
    ("InternalError", "INTERNAL", 500), ("FailedPreconditionError", "FAILED_PRECONDITION", 412),
])
def test_op_errors_map_to_tf_servings_codes(name, code, http):
    import tensorflow as tf

    error = getattr(tf.errors, name)(None, None, "boom")
    assert op_error_code(error) == code and http_status_of(error) == http


def test_other_exceptions_are_not_op_errors():
    assert op_error_code(RuntimeError("x")) is None and http_status_of(KeyError("x")) is None
    assert set(HTTP_OF_CODE.values()) <= {400, 401, 403, 404, 409, 412, 429, 499, 500, 501, 503, 504}


def test_rest_and_grpc_answer_an_aborted_graph_with_its_code():
    import grpc
    import tensorflow as tf

    from toolkit.serving.rest import error_status

    code, message = error_status(tf.errors.AbortedError(None, None, "could not create a descriptor"))
    assert code == 409 and message.startswith("ABORTED: could not create a descriptor")
    assert getattr(grpc.StatusCode, op_error_code(tf.errors.AbortedError(None, None, "x"))) == grpc.StatusCode.ABORTED
