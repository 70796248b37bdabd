"""Every REST endpoint against a running server on a loopback port, with TF Serving's JSON conventions."""

import base64
import json

import httpx
import numpy as np
import pytest


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def b64(data):
    return {"b64": base64.b64encode(data).decode()}


def test_binds_loopback_and_status(server, http):
    assert server.url.startswith("http://127.0.0.1:")
    want = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}
    assert http.get("/v1/models/tiny").json() == want
    assert http.get("/v1/models/tiny/versions/1").json() == want
    response = http.get("/v1/models/tiny/versions/7")
    assert response.status_code == 404 and "version 7" in response.json()["error"]


def test_metadata_has_signature_defs_and_labels(http):
    body = http.get("/v1/models/tiny/metadata").json()
    assert body["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "serving_dense", "classify"}
    assert signatures["classify"]["method_name"] == "tensorflow/serving/classify"
    images = signatures["serving_default"]["inputs"]["images"]
    assert images["dtype"] == "DT_STRING" and images["tensor_shape"]["dim"][0]["size"] == "-1"
    assert set(signatures["serving_default"]["outputs"]) == {"classes", "labels", "scores"}
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert body["metadata"]["toolkit"]["labels"] == ["ant", "bee", "cat"]
    assert http.get("/v1/models/tiny/versions/1/metadata").json() == body


def test_row_format_matches_in_process_predictions(http, pngs, reference):
    response = http.post("/v1/models/tiny:predict", json={"instances": [b64(p) for p in pngs]})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    predictions = response.json()["predictions"]
    assert len(predictions) == len(pngs)
    for i, prediction in enumerate(predictions):
        assert set(prediction) == {"classes", "labels", "scores"}
        np.testing.assert_allclose(prediction["scores"], reference["scores"][i], atol=1e-6)
        assert prediction["classes"] == int(reference["classes"][i])
        assert prediction["labels"] == reference["labels"][i].decode()
        assert abs(sum(prediction["scores"]) - 1.0) < 1e-5


def test_columnar_format_and_versions_path(http, pngs, reference):
    body = {"inputs": {"images": [b64(p) for p in pngs[:2]]}}
    outputs = http.post("/v1/models/tiny/versions/1:predict", json=body).json()["outputs"]
    assert sorted(outputs) == ["classes", "labels", "scores"]
    np.testing.assert_allclose(outputs["scores"], reference["scores"][:2], atol=1e-6)
    assert outputs["labels"] == [label.decode() for label in reference["labels"][:2]]
    # a bare value for a single-input signature is the same request
    same = http.post("/v1/models/tiny:predict", json={"inputs": [b64(p) for p in pngs[:2]]}).json()["outputs"]
    assert same["classes"] == outputs["classes"]


def test_dense_signature(http, pngs, reference):
    pixels = np.zeros((1, 28, 28, 1)).tolist()
    body = {"signature_name": "serving_dense", "instances": pixels}
    prediction = http.post("/v1/models/tiny:predict", json=body).json()["predictions"][0]
    assert len(prediction["scores"]) == 3 and prediction["labels"] in ["ant", "bee", "cat"]


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/models/tiny:predict", b"{not json", 400, "malformed JSON"),
    ("/v1/models/tiny:predict", {"instances": [{"b64": "***"}]}, 400, "invalid base64"),
    ("/v1/models/tiny:predict", {"instances": [{"b64": "aGVsbG8="}]}, 400, "cannot decode the image bytes"),
    ("/v1/models/tiny:predict", {"instances": [3.5]}, 400, "expected a string"),
    ("/v1/models/tiny:predict", {"signature_name": "serving_dense", "instances": [[1, 2]]}, 400,
     "this model's graph has convolutions"),  # rank kept (oneDNN conv aborts on another rank)
    # the fuzz's only 500s: a 1-pixel-high image into the max-pool made oneDNN abort ("could not create a
    # descriptor for a pooling forward propagation primitive"); static dimensions are now checked first
    ("/v1/models/tiny:predict", {"signature_name": "serving_dense", "instances": [[[[0.0]] * 28]]}, 400,
     "a tensor of shape [1, 1, 28, 1] for the signature's [-1, 28, 28, 1]"),
    ("/v1/models/tiny:predict", {"signature_name": "serving_dense", "instances": [[[["x"]] * 28] * 28]}, 400,
     "expected float32 numbers"),
    ("/v1/models/tiny:predict", {"signature_name": "nope", "instances": [1]}, 400, "signature_name 'nope' not found"),
    ("/v1/models/tiny:predict", {"instances": []}, 400, "non-empty list"),
    ("/v1/models/tiny:classify", {"instances": []}, 400, "unknown key(s) ['instances']"),
    ("/v1/models/tiny:classify", {"examples": [{"images": "x"}]}, 400, "this model's classify signature(s): ['classify']"),
    ("/v1/models/tiny:explain", {"instances": []}, 400, "use ':predict', ':classify' or ':regress'"),
    ("/v1/models/missing:predict", {"instances": ["x"]}, 404, "Servable not found for request: Latest(missing)"),
    ("/v1/models/tiny/versions/9:predict", {"instances": ["x"]}, 404, "version: 9"),
    ("/v1/models/tiny/versions/x1:predict", {"instances": ["x"]}, 400, "invalid model version"),
])
def test_bad_requests_get_4xx_naming_the_problem(http, path, body, status, message):
    if isinstance(body, bytes):
        response = http.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = http.post(path, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert http.get("/v1/models/tiny").status_code == 200  # still up


def test_oversized_body_is_413(http):
    big = {"instances": [{"b64": base64.b64encode(b"x" * 300_000).decode()}]}
    response = http.post("/v1/models/tiny:predict", json=big)
    assert response.status_code == 413 and "exceeds the limit of 262144 bytes" in response.json()["error"]

    def chunks():  # no Content-Length: the limit holds while streaming too
        yield b'{"instances": ["'
        for _ in range(40):
            yield b"y" * 10_000
        yield b'"]}'

    response = http.post("/v1/models/tiny:predict", content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize("raw_path", [b"/v1/models/..", b"/v1/models/..%2F..%2Fetc/metadata",
                                      b"/v1/models/%2E%2E/versions/1", b"/v1/models/a%2F..%2F..:predict"])
def test_path_traversal_is_refused(server, raw_path):
    with httpx.Client(timeout=10) as client:
        request = client.build_request("POST" if raw_path.endswith(b":predict") else "GET", server.url + "/x",
                                       content=b"{}")
        request.url = request.url.copy_with(raw_path=raw_path)
        response = client.send(request)
    assert response.status_code in (400, 404)
    error = response.json()["error"]
    assert "invalid model name" in error or "Not Found" in error


def test_model_list_metrics_and_unknown_route(http, pngs):
    models = http.get("/v1/models").json()["models"]
    assert [m["name"] for m in models] == ["tiny"]
    assert models[0]["task"] == "image_classification" and models[0]["labels"] == ["ant", "bee", "cat"]
    http.post("/v1/models/tiny:predict", json={"instances": [b64(pngs[0])]})
    text = http.get("/monitoring/prometheus/metrics").text
    ok = [line for line in text.splitlines()
          if line.startswith('toolkit_serving_requests_total{api="rest",code="200",method="predict",model="tiny"}')]
    assert ok and float(ok[0].split()[-1]) >= 1
    assert 'toolkit_serving_batch_size_bucket{le="1.0",model="tiny",signature="serving_default"}' in text
    assert 'toolkit_serving_model_versions{model="tiny",state="AVAILABLE"} 1.0' in text
    assert "toolkit_serving_request_latency_seconds_bucket" in text
    assert http.get("/metrics").status_code == 200
    response = http.get("/v2/nothing")
    assert response.status_code == 404 and "error" in response.json()


def test_auth_token(server):
    from fastapi.testclient import TestClient

    from toolkit.serving import create_app

    app = create_app(server.repository, auth_token="s3cret")
    with TestClient(app, base_url="http://localhost") as client:
        denied = client.get("/v1/models/tiny")
        assert denied.status_code == 401 and "bearer token" in denied.json()["error"]
        assert client.get("/v1/models/tiny", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/v1/models/tiny", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/metrics").status_code == 401
        assert client.get("/").status_code == 200  # the page itself is public; it asks for the token


def test_client_helper(server, pngs, reference):
    from toolkit.serving import Client, ServingError

    with Client(server.url) as client:
        assert client.status("tiny")[0]["state"] == "AVAILABLE"
        assert "serving_default" in client.metadata("tiny")["metadata"]["signature_def"]["signature_def"]
        results = client.classify("tiny", pngs)
        assert [r["labels"] for r in results] == [label.decode() for label in reference["labels"]]
        outputs = client.predict("tiny", inputs={"images": [{"b64": base64.b64encode(pngs[0]).decode()}]})
        assert outputs["classes"] == [int(reference["classes"][0])]
        with pytest.raises(ServingError, match="HTTP 404"):
            client.status("nope")
        assert json.loads(json.dumps(client.models()))[0]["name"] == "tiny"
