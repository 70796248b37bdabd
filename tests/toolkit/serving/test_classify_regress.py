"""TF Serving's input-shape rule, Classify / Regress / MultiInference, tf.Example inputs and zero-padded
version folders, against SavedModels built here with plain TensorFlow (not by this toolkit): a
`tf.compat.v1` graph (predict, classify and regress SignatureDefs) and a TF2 `tf.Module`. Expected bodies
are the ones TF Serving's REST API documentation (api_rest.md) and its json_tensor tests specify."""

import base64

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
FEATURES = {"x": tf.io.FixedLenFeature([1], tf.float32),
            "k": tf.io.FixedLenFeature([1], tf.int64, default_value=[0]),
            "tag": tf.io.FixedLenFeature([], tf.string, default_value="")}


def _from_examples(serialized):
    """0.5 x + 2 + k + len(tag): every feature kind (float, int64, bytes) shows in the value, [B, 1]."""
    f = tf.io.parse_example(serialized, FEATURES)
    return (0.5 * f["x"] + 2.0 + tf.cast(f["k"], tf.float32)
            + tf.cast(tf.strings.length(f["tag"]), tf.float32)[:, None])


def build_tf1(path):
    """half_plus_two the TF1 way: `serving_default` (predict, x: [-1, 1]), classify and regress."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 1], name="x")
        y = 0.5 * x + 2.0
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
        value = _from_examples(serialized)
        labels = tf.tile(tf.constant([["lo", "hi"]]), [tf.shape(value)[0], 1])
        sdu = tf.compat.v1.saved_model.signature_def_utils
        signatures = {
            "serving_default": sdu.predict_signature_def({"x": x}, {"y": y}),
            "classify_x_to_y": sdu.classification_signature_def(serialized, None, value),
            "classify_labels": sdu.classification_signature_def(serialized, labels, tf.concat([value, -value], 1)),
            REGRESS: sdu.regression_signature_def(serialized, value),
        }
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.builder.SavedModelBuilder(str(path))
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=signatures)
            builder.save()


class Module(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(0.5)

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    def predict(self, x):
        return {"y": self.w * x + 2.0}

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    def pairs(self, x):
        return {"y": tf.reduce_sum(tf.reshape(x, [-1, 2]), axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        value = _from_examples(inputs)
        return {"classes": tf.tile(tf.constant([["lo", "hi"]]), [tf.shape(value)[0], 1]),
                "scores": tf.concat([value, -value], 1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        return {"outputs": _from_examples(inputs)[:, 0]}


def build_tf2(path):
    from toolkit.export.saved_model import set_method_names

    module = Module()
    tf.saved_model.save(module, str(path), signatures={
        "serving_default": module.predict, "pairs": module.pairs, "classify": module.classify,
        "regress": module.regress})
    # tf.saved_model.save marks every signature `predict`: give these TF Serving's method names
    set_method_names(str(path), {"classify": CLASSIFY, "regress": REGRESS})


@pytest.fixture(scope="module")
def foreign_server(tmp_path_factory):
    from toolkit.serving import ModelRepository, Server

    base = tmp_path_factory.mktemp("foreign")
    build_tf1(base / "half" / "00000123")  # TF Serving's own test model folder name: version 123
    build_tf2(base / "module" / "1")
    repository = ModelRepository(str(base), poll_interval_s=30, max_wait_ms=2.0)
    server = Server(repository, host="127.0.0.1", rest_port=0, grpc_port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(foreign_server):
    with httpx.Client(base_url=foreign_server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def stub(foreign_server):
    with grpc.insecure_channel(f"127.0.0.1:{foreign_server.grpc_port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


# ---- REST -------------------------------------------------------------------------------------------
def test_zero_padded_version_folder_is_version_123(http):
    status = http.get("/v1/models/half").json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [("123", "AVAILABLE")]
    body = http.post("/v1/models/half/versions/123:predict", json={"instances": [1.0, 2.0, 5.0]}).json()
    assert body == {"predictions": [2.5, 3.0, 4.5]}


@pytest.mark.parametrize("model", ["half", "module"])
@pytest.mark.parametrize("body, want", [
    ({"instances": [2.0, 3.0, 4.0]}, {"predictions": [3.0, 3.5, 4.0]}),  # [3] into x: [-1, 1]: the graph takes it
    ({"inputs": [2.0, 3.0, 4.0]}, {"outputs": [3.0, 3.5, 4.0]}),
    ({"inputs": {"x": 2.0}}, {"outputs": 3.0}),  # a scalar
    ({"instances": [[2.0], [3.0]]}, {"predictions": [[3.0], [3.5]]}),  # the declared shape still works
    ({"inputs": [[2.0, 4.0]]}, {"outputs": [[3.0, 4.0]]}),
])
def test_predict_passes_any_shape_to_the_graph(http, model, body, want):
    response = http.post(f"/v1/models/{model}:predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == want


@pytest.mark.parametrize("body, message", [
    ({"signature_name": "pairs", "instances": [1.0, 2.0, 3.0]}, "Invalid reduction dimension"),
    ({"instances": ["a"]}, "expected float32 numbers, got str"),
    ({"instances": [[1, 2], [3]]}, "ragged"),
])
def test_what_the_graph_or_dtype_refuses_is_a_400(http, body, message):
    response = http.post("/v1/models/module:predict", json=body)
    assert response.status_code == 400 and message in response.json()["error"], response.text
    assert http.post("/v1/models/module:predict", json={"signature_name": "pairs", "instances": [[1.0, 2.0]]}).json() \
        == {"predictions": [3.0]}


@pytest.mark.parametrize("model, signature", [("half", "classify_x_to_y"), ("half", "classify_labels"),
                                              ("module", "classify")])
def test_rest_classify(http, model, signature):
    body = {"signature_name": signature, "examples": [{"x": 2.0}, {"x": [4.0], "tag": "ab"}]}
    response = http.post(f"/v1/models/{model}:classify", json=body)
    assert response.status_code == 200, response.text
    if signature == "classify_x_to_y":  # scores only: the label is "" (TF Serving's rule)
        assert response.json() == {"results": [[["", 3.0]], [["", 6.0]]]}
    else:
        assert response.json() == {"results": [[["lo", 3.0], ["hi", -3.0]], [["lo", 6.0], ["hi", -6.0]]]}


@pytest.mark.parametrize("model, signature", [("half", REGRESS), ("module", "regress")])
def test_rest_regress_with_context_int64_bytes_and_b64(http, model, signature):
    body = {"signature_name": signature, "context": {"k": 1},
            "examples": [{"x": 2.0, "tag": "ab"}, {"x": 4, "tag": b64(b"\x00\xffz")}]}  # 4: int -> int64 ... see below
    response = http.post(f"/v1/models/{model}:regress", json=body)
    # x: 4 is a JSON integer, so an int64 feature: parse_example refuses it for the float feature `x`
    assert response.status_code == 400 and "x" in response.json()["error"], response.text
    body["examples"][1]["x"] = 4.0
    response = http.post(f"/v1/models/{model}:regress", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [6.0, 8.0]}  # 0.5*2+2+1+2, 0.5*4+2+1+3


def test_rest_documented_regress_example(http):
    """api_rest.md: `{"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}`."""
    body = {"signature_name": REGRESS, "examples": [{"x": 1.0}, {"x": 2.0}]}
    assert http.post("/v1/models/half:regress", json=body).json() == {"results": [2.5, 3.0]}


@pytest.mark.parametrize("path, body, message", [
    ("half:classify", {"examples": [{"x": 1.0}]},
     "Expected classify signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict"),
    ("half:regress", {"signature_name": "classify_labels", "examples": [{"x": 1.0}]},
     f"this model's regress signature(s): ['{REGRESS}']"),
    ("half:classify", {"signature_name": "nope", "examples": [{"x": 1.0}]}, "signature_name 'nope' not found"),
    ("half:classify", {"signature_name": "classify_labels", "examples": []}, "non-empty list"),
    ("half:classify", {"signature_name": "classify_labels", "instances": [1.0]}, "unknown key(s) ['instances']"),
    ("half:classify", {"signature_name": "classify_labels", "examples": [{"x": [1, "a"]}]}, "mixed feature types"),
    ("half:classify", {"signature_name": "classify_labels", "examples": [{"x": 2 ** 63}]}, "only int64"),
    ("half:classify", {"signature_name": "classify_labels", "examples": [{"x": True}]}, "booleans"),
    ("half:classify", {"signature_name": "classify_labels", "examples": [{"tag": {"b64": "**"}}]}, "invalid base64"),
    ("half:classify", {"signature_name": "classify_labels", "context": {"x": 1.0}, "examples": [{"x": 1.0}]},
     "also in \"context\""),
    ("half:classify", {"signature_name": "classify_labels", "examples": [{"k": 1}]}, "Feature: x (data type: float) is required"),
    ("missing:classify", {"examples": [{"x": 1.0}]}, "Servable not found for request: Latest(missing)"),
])
def test_rest_classify_regress_errors(http, path, body, message):
    response = http.post(f"/v1/models/{path}", json=body)
    assert response.status_code in (400, 404) and message in response.json()["error"], response.text


def test_client_classify_examples_and_regress(foreign_server):
    from toolkit.serving import Client

    with Client(foreign_server.url) as client:
        assert client.regress("half", [{"x": 1.0}], signature_name=REGRESS) == [2.5]
        assert client.classify_examples("module", [{"x": 2.0}], signature_name="classify", context={"k": 2}) == \
            [[["lo", 5.0], ["hi", -5.0]]]
        assert client.predict("half", instances=[2.0]) == [3.0]


# ---- gRPC -------------------------------------------------------------------------------------------
def _example(**features):
    def feature(v):
        if isinstance(v, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
        if isinstance(v, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
        return tf.train.Feature(float_list=tf.train.FloatList(value=[v]))

    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()}))


def test_grpc_predict_any_shape(stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "module"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))  # [1] into x: [-1, 1]
    response = stub.Predict(request, timeout=30)
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [2.5]
    request.model_spec.signature_name = "pairs"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.0, 3.0], np.float32)))
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Invalid reduction dimension" in info.value.details()


@pytest.mark.parametrize("model, signature", [("half", "classify_labels"), ("module", "classify")])
def test_grpc_classify_example_list_and_with_context(stub, model, signature):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.input.example_list.examples.extend([_example(x=2.0), _example(x=4.0, tag=b"ab")])
    response = stub.Classify(request, timeout=30)
    assert response.model_spec.name == model and response.model_spec.signature_name == signature
    assert response.model_spec.version.value == (123 if model == "half" else 1)
    want = classification_pb2.ClassificationResult()
    for value in (3.0, 6.0):
        row = want.classifications.add()
        row.classes.add(label="lo", score=value)
        row.classes.add(label="hi", score=-value)
    assert response.result == want
    request.input.Clear()
    request.input.example_list_with_context.context.CopyFrom(_example(k=1, tag=b"xyz"))
    request.input.example_list_with_context.examples.extend([_example(x=2.0), _example(x=4.0, tag=b"a")])
    scores = [[c.score for c in row.classes] for row in stub.Classify(request, timeout=30).result.classifications]
    assert scores == [[7.0, -7.0], [6.0, -6.0]]  # the example's `tag` replaces the context's


def test_grpc_regress_and_multi_inference(stub):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "half"
    request.model_spec.signature_name = REGRESS
    request.input.example_list.examples.extend([_example(x=1.0), _example(x=2.0, k=3)])
    response = stub.Regress(request, timeout=30)
    assert [r.value for r in response.result.regressions] == [2.5, 6.0]
    assert response.model_spec.signature_name == REGRESS and response.model_spec.version.value == 123

    multi = inference_pb2.MultiInferenceRequest()
    for signature, method in [("classify_x_to_y", CLASSIFY), (REGRESS, REGRESS)]:
        task = multi.tasks.add()
        task.model_spec.name = "half"
        task.model_spec.signature_name = signature
        task.method_name = method
    multi.input.example_list.examples.extend([_example(x=2.0)])
    results = stub.MultiInference(multi, timeout=30).results
    assert [r.model_spec.signature_name for r in results] == ["classify_x_to_y", REGRESS]
    assert results[0].classification_result.classifications[0].classes[0].score == 3.0
    assert results[0].classification_result.classifications[0].classes[0].label == ""
    assert results[1].regression_result.regressions[0].value == 3.0


def _multi(*tasks):
    request = inference_pb2.MultiInferenceRequest()
    for name, signature, method in tasks:
        task = request.tasks.add()
        task.model_spec.name, task.model_spec.signature_name, task.method_name = name, signature, method
    request.input.example_list.examples.extend([_example(x=2.0)])
    return request


@pytest.mark.parametrize("call, make, message", [
    ("Classify", lambda: classification_pb2.ClassificationRequest(model_spec={"name": "half"}),
     "Input is empty"),
    ("Regress", lambda: regression_pb2.RegressionRequest(
        model_spec={"name": "half", "signature_name": "classify_labels"},
        input={"example_list": {"examples": [_example(x=1.0)]}}), "Expected regress signature method_name"),
    ("Classify", lambda: classification_pb2.ClassificationRequest(
        model_spec={"name": "half"}, input={"example_list": {"examples": [_example(x=1.0)]}}),
     "Was: tensorflow/serving/predict"),
    ("MultiInference", lambda: _multi(("half", REGRESS, REGRESS), ("half", REGRESS, REGRESS)),
     "Duplicate evaluation of signature"),
    ("MultiInference", lambda: _multi(("half", REGRESS, REGRESS), ("module", "regress", REGRESS)),
     "same model name"),
    ("MultiInference", lambda: _multi(("half", REGRESS, "tensorflow/serving/predict")), "Unsupported signature method_name"),
    ("MultiInference", lambda: _multi(), "no tasks"),
])
def test_grpc_errors_are_invalid_argument(stub, call, make, message):
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, call)(make(), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert message in info.value.details()


# ---- our own classifier exports: the `classify` signature --------------------------------------------
@pytest.fixture(scope="module")
def own(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield server, client


def test_own_export_classify_signature_over_rest_and_grpc(own, pngs, reference):
    server, client = own
    meta = client.get("/v1/models/tiny/metadata").json()["metadata"]["signature_def"]["signature_def"]
    assert meta["classify"]["method_name"] == CLASSIFY
    assert list(meta["classify"]["inputs"]) == ["inputs"] and set(meta["classify"]["outputs"]) == {"classes", "scores"}
    body = {"signature_name": "classify", "examples": [{"images": b64(p)} for p in pngs]}
    response = client.post("/v1/models/tiny:classify", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [[label for label, _ in row] for row in results] == [["ant", "bee", "cat"]] * len(pngs)
    np.testing.assert_allclose([[s for _, s in row] for row in results], reference["scores"], atol=1e-6)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name, request.model_spec.signature_name = "tiny", "classify"
        request.input.example_list.examples.extend([_example(images=p) for p in pngs])
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request, timeout=30).result
    best = [max(row.classes, key=lambda c: c.score).label for row in result.classifications]
    assert best == [label.decode() for label in reference["labels"]]


def test_loader_reads_a_zero_padded_version_folder(tmp_path):
    from toolkit.export import load

    build_tf2(tmp_path / "m" / "00000123")
    predictor = load(str(tmp_path / "m"))
    assert predictor.version == 123 and predictor.path.endswith("00000123")
