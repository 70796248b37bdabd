"""gRPC through TF Serving's own stubs (tensorflow_serving.apis)."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield channel


def test_predict(channel, pngs, reference):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(pngs, dtype=tf.string))
    response = stub.Predict(request, timeout=30)
    assert response.model_spec.name == "tiny" and response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    scores = tf.make_ndarray(response.outputs["scores"])
    np.testing.assert_allclose(scores, reference["scores"], atol=1e-6)
    assert tf.make_ndarray(response.outputs["labels"]).tolist() == reference["labels"].tolist()
    assert tf.make_ndarray(response.outputs["classes"]).tolist() == reference["classes"].tolist()

    request.output_filter.append("labels")
    request.model_spec.version.value = 1
    filtered = stub.Predict(request, timeout=30)
    assert list(filtered.outputs) == ["labels"]


def test_metadata_and_status(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "tiny"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {"serving_default", "serving_dense", "classify"}
    assert signatures.signature_def["serving_default"].inputs["images"].dtype == tf.string.as_datatype_enum
    assert response.model_spec.version.value == 1

    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "tiny"}), timeout=30)
    assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30)]  # 30 = AVAILABLE


def _predict(channel, name="tiny", inputs=None, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    for key, value in (inputs or {}).items():
        request.inputs[key].CopyFrom(value)
    return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)


@pytest.mark.parametrize("name, inputs, signature, code, message", [
    ("nope", {"images": tf.make_tensor_proto([b"x"])}, "", grpc.StatusCode.NOT_FOUND, "Latest(nope)"),
    ("tiny", {"pixels": tf.make_tensor_proto([1.0])}, "", grpc.StatusCode.INVALID_ARGUMENT, "unknown: ['pixels']"),
    ("tiny", {"images": tf.make_tensor_proto([1.0])}, "", grpc.StatusCode.INVALID_ARGUMENT, "expects dtype string"),
    ("tiny", {"images": tf.make_tensor_proto([b"not an image"])}, "", grpc.StatusCode.INVALID_ARGUMENT,
     "cannot decode the image bytes"),
    ("tiny", {"pixels": tf.make_tensor_proto(np.zeros((1, 5), "float32"))}, "serving_dense",
     grpc.StatusCode.INVALID_ARGUMENT, "keep the signature's rank"),  # oneDNN conv aborts on another rank
    ("tiny", {"pixels": tf.make_tensor_proto(np.zeros((1, 1, 28, 1), "float32"))}, "serving_dense",
     grpc.StatusCode.INVALID_ARGUMENT, "static dimensions"),  # oneDNN max-pool aborts on a 1-pixel-high image
    ("../etc", {}, "", grpc.StatusCode.INVALID_ARGUMENT, "invalid model name"),
])
def test_errors_map_to_grpc_codes(channel, name, inputs, signature, code, message):
    with pytest.raises(grpc.RpcError) as info:
        _predict(channel, name, inputs, signature)
    assert info.value.code() == code and message in info.value.details()
