"""The gRPC front end: TF Serving's `PredictionService` (Predict, Classify, Regress, MultiInference,
GetModelMetadata) and
`ModelService.GetModelStatus`, on the servicer classes generated in `tensorflow_serving.apis`.

Limits: a client deadline is honoured (a call whose deadline has passed is answered DEADLINE_EXCEEDED and its
queued work dropped, never counted OK); a cancelled call drops its queued work; tensors are checked for size
before they are materialised and image inputs for their decoded pixels; a full batching queue answers
UNAVAILABLE; connections idle longer than `idle_timeout_s` are closed; at most `max_concurrent_rpcs` calls
run at once (RESOURCE_EXHAUSTED beyond).
"""

from __future__ import annotations

import concurrent.futures
import hmac
import time

import numpy as np

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from toolkit.serving.batcher import DeadlineExceeded
from toolkit.serving.codec import RequestError
from toolkit.serving.dispatch import Dispatcher
from toolkit.serving.limits import LimitError, Limits, check_image_pixels, model_roots, redact_paths
from toolkit.serving.protos import array_to_tensor, metadata_response, status_response, tensor_to_array
from toolkit.serving.repository import ModelRepository, NotFoundError
from toolkit.serving.status import op_error_code

_ITEM_BYTES = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 7: 8, 9: 8, 10: 1, 14: 2, 17: 2, 19: 2, 22: 4, 23: 8}  # DataType -> bytes


def _version_of(model_spec):
    """(version number or None, version label or None) of a ModelSpec."""
    if model_spec.HasField("version"):
        return model_spec.version.value, None
    return None, (model_spec.version_label or None)


def _lookup(repository, model_spec):
    version, label = _version_of(model_spec)
    if label is not None:
        return repository.get(model_spec.name, version, label=label)
    return repository.get(model_spec.name, version)


def _check_tensor_size(proto, where: str, limit: int) -> None:
    """A TensorProto's shape may promise far more elements than it carries (one value is broadcast):
    refuse before `make_ndarray` allocates it."""
    count = 1
    for dim in proto.tensor_shape.dim:
        if dim.size < 0:
            raise RequestError(f"{where}: negative dimension {dim.size} in tensor_shape")
        count *= dim.size
    if count * _ITEM_BYTES.get(proto.dtype, 1) > limit:
        raise LimitError(f"{where}: a tensor of shape {[d.size for d in proto.tensor_shape.dim]} is over the "
                         f"limit of {limit} bytes per request (--max-body-mb)")


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
            if isinstance(error, LimitError):
                code = getattr(grpc.StatusCode, error.grpc_code)
            elif isinstance(error, (RequestError, ValueError, tf.errors.InvalidArgumentError)):
                code = grpc.StatusCode.INVALID_ARGUMENT
            elif isinstance(error, NotFoundError):
                code = grpc.StatusCode.NOT_FOUND
            elif op_error_code(error) not in (None, "UNKNOWN", "INTERNAL"):  # an op error keeps its own code
                code = getattr(grpc.StatusCode, op_error_code(error))
            elif isinstance(error, Exception) and not isinstance(error, grpc.RpcError):
                code = grpc.StatusCode.INTERNAL
            else:
                return False
        metrics = self.servicer.repository.metrics
        if metrics and self.method in ("predict", "classify", "regress", "multi_inference"):
            label = self.model if self.model in self.servicer.repository.names() else "-"
            metrics.request("grpc", label, self.method, code.name, time.perf_counter() - self.started)
        if error is not None:
            from toolkit.serving.servable import describe_error

            message = str(error) if isinstance(error, LimitError) else describe_error(error)
            self.context.abort(code, redact_paths(message, self.servicer.roots))
        return False


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress, MultiInference and GetModelMetadata over the repository."""

    def __init__(self, repository: ModelRepository, auth_token: str | None = None, limits: Limits | None = None,
                 dispatcher: Dispatcher | None = None):
        self.repository, self.auth_token = repository, auth_token
        self.limits, self.dispatcher = limits or Limits(), dispatcher or Dispatcher(repository)
        self.roots = model_roots(repository)

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        name = request.model_spec.name
        with _Guard(self, context, "predict", name):
            remaining = context.time_remaining()
            deadline = time.monotonic() + remaining if remaining is not None else None
            signature = request.model_spec.signature_name or "serving_default"
            for key, proto in request.inputs.items():
                _check_tensor_size(proto, f"input '{key}'", self.limits.max_body_bytes)
            for _attempt in range(3):
                entry = _lookup(self.repository, request.model_spec)
                specs = entry.servable.specs(signature)
                unknown = sorted(set(request.inputs) - set(specs))
                missing = sorted(set(specs) - set(request.inputs))
                if unknown or missing:
                    raise RequestError(f"inputs of signature '{signature}' are {sorted(specs)}; "
                                       f"unknown: {unknown}, missing: {missing}")
                arrays = {k: tensor_to_array(request.inputs[k], specs[k], f"input '{k}'") for k in specs}
                check_image_pixels(arrays, specs, self.limits.max_image_pixels)
                if deadline is not None and time.monotonic() >= deadline:
                    raise DeadlineExceeded("the client's deadline passed before the prediction was queued")
                try:
                    outputs = self.dispatcher.run_inline_if_idle(entry, signature, arrays)
                    future = None if outputs is not None else self.dispatcher.submit(entry, signature, arrays, deadline)
                    break
                except RuntimeError:
                    continue
            else:
                raise NotFoundError(f"Servable not found for request: {name} (being swapped, retry)")
            if future is not None:
                context.add_callback(future.cancel)  # the call ended (cancelled, deadline): drop queued work
                try:
                    outputs = future.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
                except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                    future.cancel()
                    raise DeadlineExceeded("the prediction did not finish before the client's deadline") from None
            if not context.is_active():
                raise DeadlineExceeded("the call ended (deadline or cancellation) before the prediction finished")
            wanted = list(request.output_filter) or sorted(outputs)
            unknown = sorted(set(wanted) - set(outputs))
            if unknown:
                raise RequestError(f"output_filter names unknown outputs {unknown}; outputs are {sorted(outputs)}")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = entry.number
            response.model_spec.signature_name = signature
            for key in wanted:
                response.outputs[key].CopyFrom(array_to_tensor(np.asarray(outputs[key])))
            return response

    def _run_examples(self, model_spec, signatures: list, input_proto, context):
        """Serialized tf.Examples of `input_proto` through each (signature, verb) of one version; returns
        (entry, [(signature, verb, outputs)], rows). One model call per signature, batched like Predict."""
        from toolkit.serving import examples as ex

        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        if input_proto.ByteSize() > self.limits.max_body_bytes:
            raise LimitError(f"the input of {input_proto.ByteSize()} bytes is over the limit of "
                             f"{self.limits.max_body_bytes} bytes per request (--max-body-mb)")
        serialized = ex.serialized_from_input(input_proto)
        examples, shared = ex.examples_from_input(input_proto)
        ex.check_examples_pixels(examples, shared, self.limits.max_image_pixels)
        arrays = {ex.INPUTS_KEY: serialized}
        for _attempt in range(3):
            entry = _lookup(self.repository, model_spec)
            try:
                names = [(ex.check_signature(entry.servable, sig, verb), verb) for sig, verb in signatures]
                futures = [self.dispatcher.submit(entry, name, arrays, deadline) for name, _ in names]
                break
            except RuntimeError:
                continue
        else:
            raise NotFoundError(f"Servable not found for request: {model_spec.name} (being swapped, retry)")
        done = []
        for (name, verb), future in zip(names, futures):
            context.add_callback(future.cancel)
            try:
                outputs = future.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                future.cancel()
                raise DeadlineExceeded(f"the {verb} call did not finish before the client's deadline") from None
            done.append((name, verb, outputs))
        if not context.is_active():
            raise DeadlineExceeded("the call ended (deadline or cancellation) before the inference finished")
        return entry, done, len(serialized)

    @staticmethod
    def _spec(target, name: str, number: int, signature: str) -> None:
        target.name = name
        target.version.value = number
        target.signature_name = signature

    def _examples_call(self, verb: str, request, context, response, result_of):
        """Classify / Regress: one signature of one model on the request's tf.Examples."""
        with _Guard(self, context, verb, request.model_spec.name):
            signature = request.model_spec.signature_name or "serving_default"
            entry, [(name, _verb, outputs)], rows = self._run_examples(
                request.model_spec, [(signature, verb)], request.input, context)
            self._spec(response.model_spec, request.model_spec.name, entry.number, name)
            response.result.CopyFrom(result_of(outputs, rows))
            return response

    def Classify(self, request, context):  # noqa: N802
        from toolkit.serving import examples as ex

        return self._examples_call("classify", request, context, classification_pb2.ClassificationResponse(),
                                   ex.classification_result)

    def Regress(self, request, context):  # noqa: N802
        from toolkit.serving import examples as ex

        return self._examples_call("regress", request, context, regression_pb2.RegressionResponse(),
                                   ex.regression_result)

    def MultiInference(self, request, context):  # noqa: N802
        """Several classify / regress signatures of ONE model on the same examples (TF Serving's rules:
        one model name and version for all tasks, each signature once, method names classify or regress)."""
        from toolkit.serving import examples as ex

        first = request.tasks[0].model_spec if request.tasks else None
        with _Guard(self, context, "multi_inference", first.name if first else ""):
            if first is None:
                raise RequestError("MultiInferenceRequest has no tasks (give at least one InferenceTask)")
            verbs = {v: k for k, v in ex.METHODS.items()}
            signatures, seen = [], set()
            for task in request.tasks:
                if task.model_spec.name != first.name:
                    raise RequestError("All ModelSpecs in a MultiInferenceRequest must access the same model name")
                if _version_of(task.model_spec) != _version_of(first):
                    raise RequestError("All ModelSpecs in a MultiInferenceRequest must access the same model version")
                signature = task.model_spec.signature_name or "serving_default"
                if signature in seen:
                    raise RequestError(f"Duplicate evaluation of signature: {signature}")
                seen.add(signature)
                if task.method_name not in verbs:
                    raise RequestError(f"Unsupported signature method_name: {task.method_name!r} (give "
                                       f"{ex.METHODS['classify']} or {ex.METHODS['regress']})")
                signatures.append((signature, verbs[task.method_name]))
            entry, done, rows = self._run_examples(first, signatures, request.input, context)
            response = inference_pb2.MultiInferenceResponse()
            for name, verb, outputs in done:
                result = response.results.add()
                self._spec(result.model_spec, first.name, entry.number, name)
                if verb == "classify":
                    result.classification_result.CopyFrom(ex.classification_result(outputs, rows))
                else:
                    result.regression_result.CopyFrom(ex.regression_result(outputs, rows))
            return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        with _Guard(self, context, "metadata", request.model_spec.name):
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise RequestError(f"metadata_field must be ['signature_def'] (the only one supported); got {fields}")
            return metadata_response(_lookup(self.repository, request.model_spec))


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus (HandleReloadConfigRequest: UNIMPLEMENTED; the repository polls its folder)."""

    def __init__(self, repository: ModelRepository, auth_token: str | None = None):
        self.repository, self.auth_token = repository, auth_token
        self.roots = model_roots(repository)

    def GetModelStatus(self, request, context):  # noqa: N802
        with _Guard(self, context, "status", request.model_spec.name):
            version, label = _version_of(request.model_spec)
            name = request.model_spec.name
            entries = (self.repository.versions(name, version, label=label) if label
                       else self.repository.versions(name, version))
            response = status_response(entries)
            for status in response.model_version_status:
                status.status.error_message = redact_paths(status.status.error_message, self.roots)
            return response



def create_grpc_server(repository: ModelRepository, address: str, auth_token: str | None = None,
                       workers: int = 16, max_message_bytes: int = 64 * 1024 * 1024, limits: Limits | None = None,
                       dispatcher: Dispatcher | None = None, max_concurrent_rpcs: int | None = None):
    """A started-ready `grpc.Server` bound to `address` (`host:port`, port 0 picks one); returns (server, port)."""
    limits = limits or Limits()
    idle_ms = int(limits.idle_timeout_s * 1000) if limits.idle_timeout_s else 0
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes)]
    if idle_ms:  # an idle connection is closed after this long (TF Serving leaves it to gRPC's defaults)
        options.append(("grpc.max_connection_idle_ms", max(idle_ms, 1000)))
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=options, maximum_concurrent_rpcs=max_concurrent_rpcs or limits.max_connections,
    )
    dispatcher = dispatcher or Dispatcher(repository)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(repository, auth_token, limits, dispatcher), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(repository, auth_token), server)
    port = server.add_insecure_port(address)
    if not port:
        raise OSError(f"cannot bind the gRPC server to {address}")
    return server, port
