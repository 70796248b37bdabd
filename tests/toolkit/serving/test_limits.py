"""Bounded work per request and the request-path checks (issue 16), through a live server's REST and gRPC."""

import base64
import json
import logging
import re
import socket
import threading
import time

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def b64(data):
    return {"b64": base64.b64encode(data).decode()}


def huge_png(width=10000, height=10000):
    """A PNG whose header says width x height (what a 291 KB PNG of one colour looks like to a decoder)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def guarded(exports, tmp_path_factory, tools):
    """A server with a token, a corrupt version 2 beside version 1, short timeouts and an allowed extra host."""
    from toolkit.serving import ModelRepository, Server
    from toolkit.serving.limits import Limits

    root = tmp_path_factory.mktemp("limits")
    base = tools.make_base(root, exports)
    (root / "models" / "tiny" / "2").mkdir()
    (root / "models" / "tiny" / "2" / "saved_model.pb").write_bytes(b"not a saved model")
    limits = Limits(max_body_bytes=2 * 1024 * 1024, rest_timeout_ms=300, header_timeout_s=0.5, body_timeout_s=0.5,
                    idle_timeout_s=0.5, max_header_bytes=8192, allowed_hosts=("models.internal",))
    repository = ModelRepository(base, poll_interval_s=0)
    server = Server(repository, rest_port=0, grpc_port=0, auth_token=TOKEN, limits=limits).start()
    server.base = base
    yield server
    server.stop()


@pytest.fixture()
def http(guarded):
    with httpx.Client(base_url=guarded.url, headers=AUTH, timeout=30) as client:
        yield client


@pytest.fixture()
def slow_model(guarded):
    """Makes the served version take 0.6 s per call; yields the list of rows per call."""
    entry = guarded.repository.get("tiny")
    calls, run = [], entry.servable.run

    def slow(signature, arrays):
        calls.append(len(next(iter(arrays.values()))))
        time.sleep(0.6)
        return run(signature, arrays)

    entry.servable.run = slow
    yield calls
    time.sleep(0.7)  # let a call still running finish
    entry.servable.run = run


def test_image_over_the_pixel_limit_is_refused_before_decoding(server, pngs):
    png = huge_png()
    assert len(png) < 1000
    response = httpx.post(server.url + "/v1/models/tiny:predict", json={"instances": [b64(pngs[0]), b64(png)]})
    assert response.status_code == 413, response.text
    assert "10000x10000 = 100000000 pixels" in response.json()["error"] and "--max-image-pixels" in response.json()["error"]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([png]))
        with pytest.raises(grpc.RpcError) as info:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "--max-image-pixels" in info.value.details()


def test_deep_json_is_400_naming_the_limit(server):
    body = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = httpx.post(server.url + "/v1/models/tiny:predict", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "nested 100001 levels deep, over the limit of 100 (--max-json-depth)" in response.json()["error"]


def test_large_bodies_are_parsed_off_the_event_loop(server, pngs, monkeypatch):
    from toolkit.serving import rest

    threads, parse = [], rest.parse_request

    def recording(*args):
        threads.append(threading.current_thread().name)
        return parse(*args)

    monkeypatch.setattr(rest, "parse_request", recording)
    padded = {"instances": [b64(pngs[0])], "padding": "x" * (rest.OFFLOAD_BYTES + 1)}
    for body in ({"instances": [b64(pngs[0])]}, padded):
        assert httpx.post(server.url + "/v1/models/tiny:predict", json=body).status_code == 200
    assert not threads[0].startswith("rest-codec") and threads[1].startswith("rest-codec")


def test_megabyte_bodies_are_parsed_in_a_helper_process(http, pngs):
    padding = "x" * (1024 * 1024 + 10)
    response = http.post("/v1/models/tiny:predict", json={"instances": [b64(pngs[0])], "padding": padding})
    assert response.status_code == 200 and response.json()["predictions"][0]["labels"] in ("ant", "bee", "cat")
    deep = b'{"padding": "' + padding.encode() + b'", "instances": ' + b"[" * 200 + b"]" * 200 + b"}"
    response = http.post("/v1/models/tiny:predict", content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "over the limit of 100 (--max-json-depth)" in response.json()["error"]
    wrong = http.post("/v1/models/tiny:predict", json={"instances": [1.5], "padding": padding})
    assert wrong.status_code == 400 and "expected a string" in wrong.json()["error"]


def test_tf_serving_number_rules(server):
    url = server.url + "/v1/models/tiny:predict"
    pixels = np.zeros((1, 28, 28, 1)).tolist()
    for value, message in [(1e39, "1e+39 cannot be converted to float32 without loss of precision"),
                           (16777217, "16777217 cannot be converted to float32 without loss of precision")]:
        pixels[0][3][4][0] = value
        response = httpx.post(url, json={"signature_name": "serving_dense", "instances": pixels})
        assert response.status_code == 400 and message in response.json()["error"], response.text
    pixels[0][3][4][0] = 16777216  # exactly representable: fine
    response = httpx.post(url, json={"signature_name": "serving_dense", "instances": pixels})
    assert response.status_code == 200
    # float32 outputs in their shortest round-trip form: never more than 9 significant digits
    numbers = re.findall(r"-?\d+\.\d+(?:e-?\d+)?", response.text)
    assert numbers and all(len(n.lstrip("-").replace(".", "").split("e")[0].lstrip("0")) <= 9 for n in numbers)
    # NaN in: TF Serving accepts the bare literal
    text = json.dumps({"signature_name": "serving_dense", "inputs": np.full((1, 28, 28, 1), np.nan).tolist()})
    assert "NaN" in text and httpx.post(url, content=text, headers={"content-type": "application/json"}).status_code == 200


def test_nan_and_float32_outputs_are_printed_as_tf_serving_does():
    from toolkit.serving.codec import encode_response

    outputs = {"scores": np.array([[0.2, np.nan], [np.inf, -np.inf]], "float32"), "labels": np.array([b"a", b"b"], object)}
    assert encode_response(outputs, "row") == (b'{"predictions":[{"labels":"a","scores":[0.2,NaN]},'
                                               b'{"labels":"b","scores":[Infinity,-Infinity]}]}')
    assert encode_response({"y": np.array([0.1, 1 / 3], "float32")}, "columnar") == b'{"outputs":[0.1,0.33333334]}'


def test_int_range_and_fractions_for_integer_inputs():
    from toolkit.serving.codec import RequestError, parse_request
    from toolkit.serving.servable import InputSpec

    specs = {"k": InputSpec("int32", (None,))}
    for value, message in [(2**31, "2147483648 cannot be converted to int32 without loss of precision"),
                           (1.5, "1.5 cannot be converted to int32 without loss of precision")]:
        with pytest.raises(RequestError, match=re.escape(message)):
            parse_request({"instances": [1, value]}, specs)
    assert parse_request({"instances": [1, -(2**31)]}, specs)[0]["k"].tolist() == [1, -(2**31)]


def test_unauthenticated_list_is_a_clean_401(guarded, caplog):
    with caplog.at_level(logging.ERROR), httpx.Client(base_url=guarded.url, timeout=30) as client:
        denied = client.get("/v1/models")
        assert denied.status_code == 401 and "bearer token" in denied.json()["error"]
        assert denied.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/models", headers=AUTH).status_code == 200  # same connection, still open
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_content_types(http, pngs):
    body = json.dumps({"instances": [b64(pngs[0])]})
    for kind, status in [("text/plain", 415), ("multipart/form-data; boundary=x", 415),
                         ("application/json; charset=utf-8", 200), ("application/x-www-form-urlencoded", 200)]:
        response = http.post("/v1/models/tiny:predict", content=body, headers={"content-type": kind})
        assert response.status_code == status, (kind, response.text)
    assert "Content-Type 'text/plain' is not accepted" in http.post(
        "/v1/models/tiny:predict", content=body, headers={"content-type": "text/plain"}).json()["error"]


def test_host_and_origin_are_checked(http):
    assert http.get("/v1/models/tiny", headers={"Host": "evil.example"}).status_code == 403
    assert "--allowed-hosts" in http.get("/v1/models/tiny", headers={"Host": "evil.example:80"}).json()["error"]
    assert http.get("/v1/models/tiny", headers={"Host": "models.internal:8501"}).status_code == 200
    assert http.get("/v1/models/tiny", headers={"Host": "localhost"}).status_code == 200
    cross = http.post("/v1/models/tiny:predict", content=b"{}", headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-origin" in cross.json()["error"]


def test_status_errors_show_no_absolute_paths(guarded, http):
    response = http.get("/v1/models/tiny")
    statuses = {s["version"]: s for s in response.json()["model_version_status"]}
    assert statuses["2"]["state"] == "END" and statuses["2"]["status"]["error_message"]
    assert guarded.base not in response.text and "/tmp" not in response.text
    assert guarded.base not in http.get("/v1/models").text


def test_rest_timeout_is_504(http, pngs, slow_model):
    response = http.post("/v1/models/tiny:predict", json={"instances": [b64(pngs[0])]})
    assert response.status_code == 504 and "within 300 ms (--rest-api-timeout-in-ms)" in response.json()["error"]


def test_grpc_deadline_is_honoured_and_not_counted_ok(guarded, pngs, slow_model):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto([pngs[0]]))
    with grpc.insecure_channel(f"127.0.0.1:{guarded.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        metadata = [("authorization", f"Bearer {TOKEN}")]
        first = stub.Predict.future(request, timeout=30, metadata=metadata)  # holds the model for 0.6 s
        while not slow_model:
            time.sleep(0.01)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, timeout=0.2, metadata=metadata)  # queued behind it; deadline passes
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        first.result()
    time.sleep(0.3)
    assert slow_model == [1]  # the expired request never reached the model
    text = httpx.get(guarded.url + "/metrics", headers=AUTH).text
    assert re.search(r'requests_total\{api="grpc",code="DEADLINE_EXCEEDED",method="predict",model="tiny"\} 1\.0', text)
    assert re.search(r'requests_total\{api="grpc",code="OK",method="predict",model="tiny"\} 1\.0', text)


def _raw(guarded, payload: bytes, wait: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", guarded.rest_port), timeout=wait) as connection:
        if payload:
            connection.sendall(payload)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except socket.timeout:
            return received + b"<still open>"
    return received


def test_slow_and_idle_connections_are_closed(guarded):
    assert _raw(guarded, b"") .startswith(b"HTTP/1.1 408")  # connected, sent nothing
    assert _raw(guarded, b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\n").startswith(b"HTTP/1.1 408")
    slow_body = b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{"
    assert b"408" in _raw(guarded, slow_body)
    big_head = b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
    assert _raw(guarded, big_head).startswith(b"HTTP/1.1 431")
    keep_alive = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    answer = _raw(guarded, keep_alive)  # answered, then closed after the idle timeout (not held open)
    assert answer.startswith(b"HTTP/1.1 200") and not answer.endswith(b"<still open>")


def test_full_batching_queue_is_503():
    from toolkit.serving.batcher import Batcher, BatchingOptions, QueueFull

    gate = threading.Event()
    batcher = Batcher(lambda a: (gate.wait(5), a)[1], max_batch_size=2, max_enqueued_batches=1)
    futures = [batcher.submit({"x": np.array([1])})]
    time.sleep(0.05)  # the first call is running; the queue holds one batch of two rows
    futures += [batcher.submit({"x": np.array([i])}) for i in (2, 3)]
    with pytest.raises(QueueFull, match="max_enqueued_batches=1") as info:
        batcher.submit({"x": np.array([4])})
    assert info.value.status == 503 and info.value.grpc_code == "UNAVAILABLE"
    gate.set()
    assert [f.result(5)["x"].tolist() for f in futures] == [[1], [2], [3]]
    batcher.close()
    options = BatchingOptions.from_text("max_batch_size { value: 8 } batch_timeout_micros { value: 100 } "
                                        "num_batch_threads { value: 2 } max_enqueued_batches { value: 3 } "
                                        "allowed_batch_sizes: 2 allowed_batch_sizes: 8 thread_pool_name { value: 'x' }")
    assert (options.max_batch_size, options.batch_timeout_micros, options.num_batch_threads,
            options.max_enqueued_batches, options.allowed_batch_sizes) == (8, 100, 2, 3, (2, 8))
    with pytest.raises(ValueError, match="end with max_batch_size"):
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(2, 4))


def test_serve_flags_reach_the_server(tmp_path):
    import argparse

    from apps import serve

    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    file = tmp_path / "batching.txt"
    file.write_text("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 500 }\n")
    args = parser.parse_args(["--model-base-path", ".", "--batching-parameters-file", str(file), "--num-batch-threads", "2",
                              "--allowed-batch-sizes", "4,16", "--enable-batching"])
    options = serve.batching_options(args)
    assert (options.max_batch_size, options.batch_timeout_micros, options.num_batch_threads,
            options.allowed_batch_sizes, args.batching) == (16, 500, 2, (4, 16), "on")


def test_queue_depth_and_batch_metrics(http, pngs):
    assert http.post("/v1/models/tiny:predict", json={"instances": [b64(pngs[0])]}).status_code == 200
    text = http.get("/monitoring/prometheus/metrics").text
    assert 'toolkit_serving_queue_rows{model="tiny",signature="serving_default"}' in text
    assert 'toolkit_serving_batch_size_count{model="tiny",signature="serving_default"}' in text
    assert 'toolkit_serving_request_latency_seconds_bucket{api="rest"' in text
