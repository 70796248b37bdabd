"""The gRPC front end: TF Serving's `PredictionService` (Predict, GetModelMetadata) and
`ModelService.GetModelStatus`, on the servicer classes generated in `tensorflow_serving.apis`.
"""

from __future__ import annotations

import concurrent.futures
import hmac
import time

import grpc
from tensorflow_serving.apis import (
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from toolkit.serving.codec import RequestError
from toolkit.serving.protos import array_to_tensor, metadata_response, status_response, tensor_to_array
from toolkit.serving.repository import ModelRepository, NotFoundError


def _version_of(model_spec):
    if model_spec.HasField("version"):
        return model_spec.version.value
    if model_spec.version_label:
        raise RequestError(f"version labels are not supported (got '{model_spec.version_label}'); use a version number")
    return None


class _Guard:
    """Maps our exceptions to gRPC status codes (as TF Serving does) and records metrics."""

    def __init__(self, servicer, context, method, model):
        self.servicer, self.context, self.method, self.model = servicer, context, method, model

    def __enter__(self):
        self.started = time.perf_counter()
        token = self.servicer.auth_token
        if token:
            metadata = dict(self.context.invocation_metadata())
            header = metadata.get("authorization", "")
            if not (header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode())):
                self.context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        return self

    def __exit__(self, kind, error, tb):
        import tensorflow as tf

        code = grpc.StatusCode.OK
        if error is not None:
            if isinstance(error, (RequestError, ValueError, tf.errors.InvalidArgumentError)):
                code = grpc.StatusCode.INVALID_ARGUMENT
            elif isinstance(error, NotFoundError):
                code = grpc.StatusCode.NOT_FOUND
            elif isinstance(error, Exception) and not isinstance(error, grpc.RpcError):
                code = grpc.StatusCode.INTERNAL
            else:
                return False
        metrics = self.servicer.repository.metrics
        if metrics and self.method == "predict":
            label = self.model if self.model in self.servicer.repository.names() else "-"
            metrics.request("grpc", label, self.method, code.name, time.perf_counter() - self.started)
        if error is not None:
            from toolkit.serving.servable import describe_error

            self.context.abort(code, describe_error(error))
        return False


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over the repository (Classify/Regress/MultiInference: UNIMPLEMENTED)."""

    def __init__(self, repository: ModelRepository, auth_token: str | None = None):
        self.repository, self.auth_token = repository, auth_token

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        name = request.model_spec.name
        with _Guard(self, context, "predict", name):
            version = _version_of(request.model_spec)
            signature = request.model_spec.signature_name or "serving_default"
            for _attempt in range(3):
                entry = self.repository.get(name, version)
                specs = entry.servable.specs(signature)
                unknown = sorted(set(request.inputs) - set(specs))
                missing = sorted(set(specs) - set(request.inputs))
                if unknown or missing:
                    raise RequestError(f"inputs of signature '{signature}' are {sorted(specs)}; "
                                       f"unknown: {unknown}, missing: {missing}")
                arrays = {k: tensor_to_array(request.inputs[k], specs[k], f"input '{k}'") for k in specs}
                rows = {a.shape[0] for a in arrays.values()}
                if len(rows) > 1:
                    raise RequestError(f"inputs have different batch sizes {sorted(rows)}")
                try:
                    future = self.repository.submit(entry, signature, arrays)
                    break
                except RuntimeError:
                    continue
            else:
                raise NotFoundError(f"Servable not found for request: {name} (being swapped, retry)")
            outputs = future.result()
            wanted = list(request.output_filter) or sorted(outputs)
            unknown = sorted(set(wanted) - set(outputs))
            if unknown:
                raise RequestError(f"output_filter names unknown outputs {unknown}; outputs are {sorted(outputs)}")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = entry.number
            response.model_spec.signature_name = signature
            for key in wanted:
                response.outputs[key].CopyFrom(array_to_tensor(outputs[key]))
            return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        with _Guard(self, context, "metadata", request.model_spec.name):
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise RequestError(f"metadata_field must be ['signature_def'] (the only one supported); got {fields}")
            entry = self.repository.get(request.model_spec.name, _version_of(request.model_spec))
            return metadata_response(entry)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus (HandleReloadConfigRequest: UNIMPLEMENTED; the repository polls its folder)."""

    def __init__(self, repository: ModelRepository, auth_token: str | None = None):
        self.repository, self.auth_token = repository, auth_token

    def GetModelStatus(self, request, context):  # noqa: N802
        with _Guard(self, context, "status", request.model_spec.name):
            version = _version_of(request.model_spec)
            return status_response(self.repository.versions(request.model_spec.name, version))


def create_grpc_server(repository: ModelRepository, address: str, auth_token: str | None = None,
                       workers: int = 16, max_message_bytes: int = 64 * 1024 * 1024):
    """A started-ready `grpc.Server` bound to `address` (`host:port`, port 0 picks one); returns (server, port)."""
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", max_message_bytes),
                 ("grpc.max_send_message_length", max_message_bytes)],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(repository, auth_token), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(repository, auth_token), server)
    port = server.add_insecure_port(address)
    if not port:
        raise OSError(f"cannot bind the gRPC server to {address}")
    return server, port

