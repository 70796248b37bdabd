"""`--model-config-file` (TF Serving's text-proto ModelServerConfig): several models, their version policies
and version labels, through the repository, REST `/labels/LABEL` and gRPC `model_spec.version_label`."""

import base64
import os
import shutil

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from toolkit.serving.model_config import ModelConfig, VersionPolicy, parse_model_config, read_model_config_file

CONFIG = """
model_config_list {
  config {
    name: "tiny"
    base_path: "%(tiny)s"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
  config {
    name: "pair"
    base_path: "%(pair)s"
    model_version_policy { latest { num_versions: 2 } }
  }
}
"""


def test_parse_policies_labels_and_errors(tmp_path):
    file = tmp_path / "models.config"
    file.write_text(CONFIG % {"tiny": "/m/tiny", "pair": "/m/pair"})
    tiny, pair = read_model_config_file(str(file))
    assert (tiny.name, tiny.base_path, tiny.labels) == ("tiny", "/m/tiny", {"stable": 1, "canary": 2})
    assert tiny.policy == VersionPolicy("specific", versions=(1, 2)) and tiny.policy.select([1, 2, 3]) == [1, 2]
    assert pair.policy.describe() == "latest 2" and pair.policy.select([1, 2, 3]) == [2, 3] and pair.labels == {}
    [every] = parse_model_config('model_config_list { config { name: "a" base_path: "/a" '
                                 'model_version_policy { all {} } } }')
    assert every.policy.select([3, 1]) == [1, 3]

    bad = {
        'model_config_list { config { nam: "a" } }': r"models.config: not a text-format .*no field named \"nam\"",
        'model_config_list { config { base_path: "/a" } }': r"config #1: 'name' is required",
        'model_config_list { config { name: "a" } }': r"config #1 \(name 'a'\): 'base_path' is required",
        'model_config_list { config { name: "a" base_path: "/a" model_platform: "pytorch" } }':
            r"model_platform 'pytorch' is not supported",
        'model_config_list { config { name: "a" base_path: "/a" } config { name: "a" base_path: "/b" } }':
            r"config #2 \(name 'a'\): model name 'a' appears twice",
        'model_config_list { config { name: "../a" base_path: "/a" } }': r"invalid model name",
        'model_config_list { config { name: "a" base_path: "/a" version_labels { key: "a/b" value: 1 } } }':
            r"invalid version label 'a/b'",
        'model_config_list { config { name: "a" base_path: "/a" model_version_policy { specific { versions: 1 } } '
        'version_labels { key: "canary" value: 2 } } }': r"label 'canary' names version 2, which its policy specific "
                                                        r"\[1\] never serves",
        'model_config_list { }': r"has no 'config' entries",
        '': r"expected a 'model_config_list",
    }
    for text, message in bad.items():
        with pytest.raises(ValueError, match=message):
            parse_model_config(text, source=str(file.name))
    with pytest.raises(FileNotFoundError, match="missing.config"):
        read_model_config_file(str(tmp_path / "missing.config"))
    with pytest.raises(ValueError, match="num_versions"):
        VersionPolicy("latest", num_versions=0)


@pytest.fixture(scope="module")
def configured(exports, tools, tmp_path_factory):
    """A server over a config file: `tiny` (versions 1=v1, 2=v2, 3=v1; policy specific 1,2; labels) and
    `pair` (versions 1=v2, 2=v1; latest 2)."""
    from toolkit.serving import ModelRepository, Server

    root = tmp_path_factory.mktemp("configured")
    for number, key in ((1, "v1"), (2, "v2"), (3, "v1")):
        shutil.copytree(exports[key], root / "tiny" / str(number))
    for number, key in ((1, "v2"), (2, "v1")):
        shutil.copytree(exports[key], root / "pair" / str(number))
    file = root / "models.config"
    file.write_text(CONFIG % {"tiny": root / "tiny", "pair": root / "pair"})
    repository = ModelRepository(model_configs=read_model_config_file(str(file)), poll_interval_s=0, batching="off")
    server = Server(repository, rest_port=0, grpc_port=0).start()
    yield server
    server.stop()


def test_policies_and_labels_in_the_repository(configured):
    from toolkit.serving import NotFoundError

    repository = configured.repository
    assert repository.names() == ["pair", "tiny"]
    assert [(v.number, v.state) for v in repository.versions("tiny")] == [(2, "AVAILABLE"), (1, "AVAILABLE")]
    assert [(v.number, v.state) for v in repository.versions("pair")] == [(2, "AVAILABLE"), (1, "AVAILABLE")]
    assert repository.get("tiny").number == 2  # "latest" of the served ones; version 3 is not in the policy
    assert repository.get("tiny", label="stable").number == 1 and repository.get("tiny", label="canary").number == 2
    assert [v.number for v in repository.versions("tiny", label="stable")] == [1]
    with pytest.raises(NotFoundError, match=r"Unrecognized servable version label: beta \(model tiny; its labels "
                                            r"are \['canary', 'stable'\]\)"):
        repository.get("tiny", label="beta")
    with pytest.raises(NotFoundError, match="label: stable .*no labels"):
        repository.get("pair", label="stable")
    with pytest.raises(ValueError, match="not both"):
        repository.get("tiny", 1, label="stable")
    with pytest.raises(NotFoundError, match=r"Specific\(name: tiny, version: 3\)"):
        repository.get("tiny", 3)


def test_labels_over_rest_and_grpc(configured, exports, pngs):
    from toolkit.export import load

    expected = {key: load(exports[key])({"images": [pngs[0]]})["scores"][0] for key in ("v1", "v2")}
    body = {"instances": [{"b64": base64.b64encode(pngs[0]).decode()}]}
    with httpx.Client(base_url=configured.url, timeout=30) as http:
        for label, key in (("stable", "v1"), ("canary", "v2")):
            response = http.post(f"/v1/models/tiny/labels/{label}:predict", json=body)
            assert response.status_code == 200, response.text
            np.testing.assert_allclose(response.json()["predictions"][0]["scores"], expected[key], atol=1e-5)
        status = http.get("/v1/models/tiny/labels/stable").json()["model_version_status"]
        assert [(s["version"], s["state"]) for s in status] == [("1", "AVAILABLE")]
        assert http.get("/v1/models/tiny/labels/canary/metadata").json()["model_spec"]["version"] == "2"
        missing = http.post("/v1/models/tiny/labels/beta:predict", json=body)
        assert missing.status_code == 404 and "Unrecognized servable version label: beta" in missing.json()["error"]
        assert http.get("/v1/models/tiny/labels/beta").status_code == 404
        # the pair model: latest 2 serves both; "latest" is version 2 (= v1's weights)
        response = http.post("/v1/models/pair:predict", json=body)
        np.testing.assert_allclose(response.json()["predictions"][0]["scores"], expected["v1"], atol=1e-5)
        response = http.post("/v1/models/pair/versions/1:predict", json=body)
        np.testing.assert_allclose(response.json()["predictions"][0]["scores"], expected["v2"], atol=1e-5)

    with grpc.insecure_channel(f"127.0.0.1:{configured.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "tiny"
        request.model_spec.version_label = "canary"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([pngs[0]], dtype=tf.string))
        response = stub.Predict(request, timeout=30)
        assert response.model_spec.version.value == 2
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["scores"])[0], expected["v2"], atol=1e-5)
        request.model_spec.version_label = "beta"
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=30)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND and "label: beta" in error.value.details()
        from tensorflow_serving.apis import get_model_status_pb2

        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "tiny"
        status_request.model_spec.version_label = "stable"
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=30)
        assert [(s.version, s.state) for s in status.model_version_status] == [(1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]


def test_model_config_validation(tmp_path):
    from toolkit.serving import ModelRepository

    with pytest.raises(FileNotFoundError, match=r"model path .*nowhere.* for model 'a' is not a folder"):
        ModelRepository(model_configs=[ModelConfig("a", str(tmp_path / "nowhere"))])
    os.makedirs(tmp_path / "a")
    with pytest.raises(ValueError, match="model 'a' is configured twice"):
        ModelRepository(models={"a": str(tmp_path / "a")}, model_configs=[ModelConfig("a", str(tmp_path / "a"))])
    with pytest.raises(ValueError, match="label 'x' must map to a version"):
        ModelConfig("a", "/a", labels={"x": -1})


def test_serve_flags(tmp_path):
    import argparse

    from apps import serve

    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    file = tmp_path / "models.config"
    file.write_text(CONFIG % {"tiny": tmp_path, "pair": tmp_path})
    args = parser.parse_args(["--model-config-file", str(file), "--max-num-load-retries", "2",
                              "--load-retry-interval-ms", "250"])
    assert (args.model_config_file, args.max_num_load_retries, args.load_retry_interval_ms) == (str(file), 2, 250)
    defaults = parser.parse_args([])
    assert (defaults.max_num_load_retries, defaults.load_retry_interval_ms) == (5, 60000)  # TF Serving's
    help_text = parser.format_help()
    assert "--model-config-file" in help_text and "version_labels" in help_text and "/labels/LABEL" in help_text
    with pytest.raises(ValueError, match="--model-config-file replaces --model-base-path"):
        serve.main(parser.parse_args(["--model-config-file", str(file), "--model-base-path", str(tmp_path)]))
    with pytest.raises(ValueError, match="config #1 \\(name 'tiny'\\): 'base_path' is required"):
        file.write_text('model_config_list { config { name: "tiny" } }')
        serve.main(parser.parse_args(["--model-config-file", str(file)]))
