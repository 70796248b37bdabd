"""Malformed REST and gRPC requests for the serving benchmark (benchmarks/serving.py): a fixed-seed mix of
broken JSON, wrong shapes and dtypes, lossy numbers, deep nesting, bad base64, decompression-bomb image
headers, wrong paths, methods and content types, tensor-shape bombs and bad model specs."""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import random
import struct
import threading
import time
import zlib

import numpy as np


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def huge_png(width=10000, height=10000) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 300_000)) + chunk(b"IEND", b""))


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def rest_cases(png: bytes, count: int, seed: int = 0) -> list:
    """(method, path, body bytes, content type) tuples."""
    rng = random.Random(seed)
    good = json.dumps({"instances": [_b64(png)]}).encode()
    predict = "/v1/models/fashion:predict"
    dense = lambda v: json.dumps({"signature_name": "serving_dense", "instances": v}).encode()  # noqa: E731
    pixels = np.zeros((1, 28, 28, 1)).tolist()
    makers = [
        lambda: ("POST", predict, bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))), "application/json"),
        lambda: ("POST", predict, good[: rng.randint(0, len(good) - 1)], "application/json"),
        lambda: ("POST", predict, rng.choice([b"{", b"[]", b"null", b'"x"', b"1e999", b"{}", b'{"instances": {}}',
                                              b'{"instances": null}', b'{"inputs": []}', b'{"instances": [], "inputs": []}']),
                 "application/json"),
        lambda: ("POST", predict, b'{"instances": ' + b"[" * rng.randint(101, 200_000) + b"]" * 3 + b"}", "application/json"),
        lambda: ("POST", predict, json.dumps({"instances": [{"b64": "".join(rng.choice("!*%$@") for _ in range(8))}]}).encode(),
                 "application/json"),
        lambda: ("POST", predict, json.dumps({"instances": [_b64(bytes(rng.getrandbits(8) for _ in range(64)))]}).encode(),
                 "application/json"),
        lambda: ("POST", predict, json.dumps({"instances": [_b64(png[: rng.randint(8, len(png) - 1)])]}).encode(),
                 "application/json"),
        lambda: ("POST", predict, json.dumps({"instances": [_b64(huge_png(rng.randint(5000, 60000), rng.randint(5000, 60000)))]}).encode(),
                 "application/json"),
        lambda: ("POST", predict, json.dumps({"instances": [{"b64": 5}], "signature_name": rng.choice([3, [], None])}).encode(),
                 "application/json"),
        lambda: ("POST", predict, json.dumps({"instances": [1, "x", None, True]}).encode(), "application/json"),
        lambda: ("POST", predict, json.dumps({"instances": [_b64(png)], "signature_name": "nope"}).encode(), "application/json"),
        lambda: ("POST", predict, dense([[rng.choice([1e39, -1e39, 16777217, "x", None, True, [1]])]]), "application/json"),
        lambda: ("POST", predict, dense(np.zeros((1, rng.randint(1, 40), 28, 1)).tolist()), "application/json"),
        lambda: ("POST", predict, dense([[[[float("nan")]] * 28] * 28]).replace(b"NaN", rng.choice([b"NaN", b"nan", b"Infinity", b"-Infinity", b"inf"])),
                 "application/json"),
        lambda: ("POST", predict, dense(pixels)[:-1] + b', "extra": ' + b"[" * 50 + b"]" * 50 + b"}", "application/json"),
        lambda: ("POST", predict, good, rng.choice(["text/plain", "multipart/form-data; boundary=x", "application/xml",
                                                     "image/png", "text/html"])),
        lambda: (rng.choice(["PUT", "DELETE", "GET", "PATCH"]), predict, good, "application/json"),
        lambda: ("POST", rng.choice(["/v1/models/fashion:classify", "/v1/models/fashion:", "/v1/models/nope:predict",
                                     "/v1/models/fashion/versions/x:predict", "/v1/models/fashion/versions/99999999999999999999:predict",
                                     "/v1/models/fashion/labels/nope:predict", "/v1/models/..%2F..%2Fetc:predict",
                                     "/v1/models/fashion/versions/1/extra:predict", "/v2/models/fashion:predict",
                                     "/v1/models/" + "a" * 300 + ":predict"]), good, "application/json"),
        lambda: ("GET", rng.choice(["/v1/models/nope", "/v1/models/fashion/versions/7", "/v1/models/fashion/versions/-1",
                                    "/v1/models/fashion/labels/x/metadata", "/v1/models/%00", "/v1/models/fashion/metadata/x"]),
                 b"", ""),
        lambda: ("POST", predict, json.dumps({"instances": [_b64(png)] * rng.randint(1, 3),
                                              "inputs": rng.choice([None, 1])}).encode(), "application/json"),
        lambda: ("POST", predict, json.dumps({"inputs": {"images": [_b64(png)], "other": [1]}}).encode(), "application/json"),
        lambda: ("POST", predict, "{\"instances\": [\"\ud800\"]}".encode("utf-8", "surrogatepass"), "application/json"),
    ]
    return [rng.choice(makers)() for _ in range(count)]


def _send(port: int, case, timeout: float = 30.0):
    method, path, body, kind = case
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": kind} if kind else {}
        connection.request(method, path, body if method != "GET" else None, headers)
        response = connection.getresponse()
        text = response.read()
        return response.status, text
    except TimeoutError:
        return "hang", b""
    except (OSError, http.client.HTTPException) as error:
        return "dropped", repr(error).encode()
    finally:
        connection.close()


def _describe(case) -> str:
    method, path, body, kind = case
    return f"{method} {path} [{kind}] {len(body)} B: {body[:80]!r}"


def fuzz_rest(port: int, png: bytes, count: int) -> dict:
    cases = rest_cases(png, count)
    statuses: dict = {}
    server_errors = []  # (the case, the answer) of every 5xx, so a failure can be replayed and explained
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for case, (status, text) in zip(cases, pool.map(lambda c: _send(port, c), cases)):
            statuses[status] = statuses.get(status, 0) + 1
            if isinstance(status, int) and status >= 500 and status not in (503, 504):
                server_errors.append(f"{status} for {_describe(case)} -> {text[:300]!r}")
    # a 7.6 MB body (valid: 1000 dense instances) while another client asks for the model's status
    big = json.dumps({"signature_name": "serving_dense",
                      "instances": np.round(np.random.default_rng(0).random((800, 28, 28, 1)), 6).tolist()}).encode()
    result = {}

    def post_big():
        started = time.perf_counter()
        result["big_status"] = _send(port, ("POST", "/v1/models/fashion:predict", big, "application/json"), 120)[0]
        result["big_ms"] = (time.perf_counter() - started) * 1e3

    thread = threading.Thread(target=post_big)
    thread.start()
    gets = []
    while thread.is_alive():  # status requests back to back while the big one is uploaded, parsed and run
        started = time.perf_counter()
        _send(port, ("GET", "/v1/models/fashion", b"", ""))
        gets.append((time.perf_counter() - started) * 1e3)
    thread.join()
    result["get_during_big_ms"], result["gets_during_big"] = max(gets or [0.0]), len(gets)
    bad = sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500 and s not in (503, 504))
    return {"count": count, "statuses": dict(sorted(statuses.items(), key=str)), "bad_5xx": bad,
            "hangs": statuses.get("hang", 0), "big_mb": len(big) / 1e6, "server_errors": server_errors, **result}


def grpc_cases(png: bytes, count: int, seed: int = 1) -> list:
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

    rng = random.Random(seed)

    def predict(name="fashion", inputs=None, signature="", version=None, label=None, output_filter=()):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = version
        if label is not None:
            request.model_spec.version_label = label
        for key, value in (inputs or {}).items():
            request.inputs[key].CopyFrom(value)
        request.output_filter.extend(output_filter)
        return ("Predict", request)

    def bomb():
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0])
        proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=rng.choice([100000, 1 << 20])) for _ in range(3)]))
        return proto

    def garbage_content():
        proto = tensor_pb2.TensorProto(dtype=rng.choice([types_pb2.DT_FLOAT, types_pb2.DT_INT32, types_pb2.DT_STRING]),
                                       tensor_content=bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 50))))
        proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=rng.randint(-2, 9))]))
        return proto

    images = lambda values: {"images": tf.make_tensor_proto(values)}  # noqa: E731
    makers = [
        lambda: predict(name=rng.choice(["", "nope", "../etc", "a" * 300, "fashion/1"]), inputs=images([png])),
        lambda: predict(inputs={"images": tf.make_tensor_proto([1.0, 2.0])}),
        lambda: predict(inputs={"pixels": tf.make_tensor_proto([png])}),
        lambda: predict(inputs={}),
        lambda: predict(inputs=images([bytes(rng.getrandbits(8) for _ in range(64))])),
        lambda: predict(inputs=images([png[: rng.randint(8, len(png) - 1)]])),
        lambda: predict(inputs=images([huge_png(rng.randint(5000, 60000), rng.randint(5000, 60000))])),
        lambda: predict(inputs={"images": bomb()}),
        lambda: predict(inputs={"images": garbage_content()}),
        lambda: predict(inputs={"pixels": bomb()}, signature="serving_dense"),
        lambda: predict(inputs={"pixels": tf.make_tensor_proto(np.zeros((1, rng.randint(1, 40), 28, 1), "float32"))},
                        signature="serving_dense"),
        lambda: predict(inputs=images([png]), signature="nope"),
        lambda: predict(inputs=images([png]), version=rng.choice([0, 7, 2**62])),
        lambda: predict(inputs=images([png]), label=rng.choice(["stable", "x" * 100, "../"])),
        lambda: predict(inputs=images([png]), output_filter=["nope"]),
        lambda: predict(inputs=images(np.array([[png]], dtype=object))),
        lambda: ("GetModelMetadata", get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": rng.choice(["fashion", "nope", ""])}, metadata_field=[rng.choice(["", "x", "signature_def"])])),
        lambda: ("GetModelStatus", get_model_status_pb2.GetModelStatusRequest(model_spec={"name": rng.choice(["nope", "", "../x"])})),
        lambda: ("Deadline", predict(inputs=images([png]))[1]),
    ]
    return [rng.choice(makers)() for _ in range(count)]


def fuzz_grpc(port: int, png: bytes, count: int) -> dict:
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    codes: dict = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        for method, request in grpc_cases(png, count):
            call = {"Predict": prediction.Predict, "Deadline": prediction.Predict,
                    "GetModelMetadata": prediction.GetModelMetadata, "GetModelStatus": models.GetModelStatus}[method]
            started = time.perf_counter()
            try:
                call(request, timeout=0.001 if method == "Deadline" else 30)
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
            if code == "DEADLINE_EXCEEDED" and method != "Deadline" and time.perf_counter() - started > 29:
                code = "hang"
            codes[code] = codes.get(code, 0) + 1
    return {"count": count, "codes": dict(sorted(codes.items())), "hangs": codes.get("hang", 0),
            "internal": codes.get("INTERNAL", 0) + codes.get("UNKNOWN", 0)}
