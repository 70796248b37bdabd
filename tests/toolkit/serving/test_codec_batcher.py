"""TF Serving JSON conventions (row / columnar / b64) and the batcher, without a server."""

import base64
import threading
import time

import numpy as np
import pytest

from toolkit.serving.batcher import Batcher
from toolkit.serving.codec import RequestError, format_response, parse_request
from toolkit.serving.servable import InputSpec

IMAGES = {"images": InputSpec("string", (None,))}
TWO = {"x": InputSpec("float32", (None, 2)), "k": InputSpec("int32", (None,))}


def test_row_format_single_input_b64_and_object_forms():
    raw = [b"\x89PNG\x00\xff", b"abc"]
    body = {"instances": [{"b64": base64.b64encode(raw[0]).decode()}, {"images": {"b64": base64.b64encode(raw[1]).decode()}}]}
    arrays, layout = parse_request(body, IMAGES)
    assert layout == "row" and arrays["images"].tolist() == raw


def test_row_and_columnar_multi_input():
    arrays, layout = parse_request({"instances": [{"x": [1, 2], "k": 3}, {"x": [4.5, 5], "k": 6}]}, TWO)
    assert layout == "row"
    np.testing.assert_array_equal(arrays["x"], np.array([[1, 2], [4.5, 5]], "float32"))
    assert arrays["k"].dtype == np.int32 and arrays["k"].tolist() == [3, 6]
    cols, layout = parse_request({"inputs": {"x": [[1, 2]], "k": [3]}}, TWO)
    assert layout == "columnar" and cols["x"].shape == (1, 2)


@pytest.mark.parametrize("body, message", [
    ([1, 2], "must be a JSON object"),
    ({}, "missing \"instances\""),
    ({"instances": [], }, "non-empty list"),
    ({"instances": [1], "inputs": [1]}, "not both"),
    ({"instances": [{"b64": "%%%"}]}, "invalid base64"),
    ({"instances": [5]}, "expected a string"),
    ({"instances": [{"image": "x"}]}, "unknown input(s) ['image']"),
])
def test_bad_requests_name_the_problem(body, message):
    with pytest.raises(RequestError, match=None) as info:
        parse_request(body, IMAGES)
    assert message in str(info.value)


@pytest.mark.parametrize("body, message", [
    ({"instances": [{"x": ["a", 2], "k": 1}]}, "expected float32 numbers, got str"),
    ({"instances": [{"x": [1, 2], "k": 1}, {"x": [1], "k": 1}]}, "ragged"),
    ({"instances": [{"x": [1, 2]}]}, "missing input(s) ['k']"),
    ({"instances": [{"x": [1, 2], "k": {"b64": "AA=="}}]}, "b64"),
])
def test_wrong_dtypes_and_ragged_values(body, message):
    with pytest.raises(RequestError) as info:
        parse_request(body, TWO)
    assert message in str(info.value)


def test_response_layouts_match_tf_serving():
    outputs = {"scores": np.array([[0.25, 0.75], [1.0, 0.0]], "float32"), "labels": np.array([b"b", b"a"], object),
               "raw_bytes": np.array([b"\x00\x01", b"\xff"], object)}
    rows = format_response(outputs, "row")
    assert rows == {"predictions": [
        {"labels": "b", "raw_bytes": {"b64": "AAE="}, "scores": [0.25, 0.75]},
        {"labels": "a", "raw_bytes": {"b64": "/w=="}, "scores": [1.0, 0.0]}]}
    cols = format_response(outputs, "columnar")
    assert cols["outputs"]["scores"] == [[0.25, 0.75], [1.0, 0.0]] and cols["outputs"]["labels"] == ["b", "a"]
    single = {"y": np.array([1, 2])}
    assert format_response(single, "row") == {"predictions": [1, 2]}
    assert format_response(single, "columnar") == {"outputs": [1, 2]}


def test_batcher_merges_concurrent_requests_and_splits_results():
    calls = []
    gate = threading.Event()

    def fn(arrays):
        calls.append(len(arrays["x"]))
        gate.wait(2)
        return {"y": arrays["x"] * 10, "n": np.full(len(arrays["x"]), len(arrays["x"]))}

    batcher = Batcher(fn, max_batch_size=16, max_wait_ms=20)
    first = batcher.submit({"x": np.array([0])})  # occupies the worker until the gate opens
    time.sleep(0.05)
    futures = [batcher.submit({"x": np.array([i, i + 100])}) for i in range(1, 6)]
    gate.set()
    assert first.result(5)["y"].tolist() == [0]
    for i, future in enumerate(futures, start=1):
        assert future.result(5)["y"].tolist() == [10 * i, 10 * (i + 100)]
    # the five queued requests ran as one call: 10 rows, padded to the allowed batch size 16
    assert calls == [1, 16]
    batcher.close()


def test_one_bad_request_never_fails_its_batch_mates():
    gate = threading.Event()

    def fn(arrays):
        gate.wait(2)
        if (arrays["x"] < 0).any():
            raise ValueError("negative input")
        return {"y": arrays["x"] + 1}

    batcher = Batcher(fn, max_batch_size=8, max_wait_ms=10)
    warm = batcher.submit({"x": np.array([1])})
    time.sleep(0.05)
    good = [batcher.submit({"x": np.array([i])}) for i in range(3)]
    bad = batcher.submit({"x": np.array([-1])})
    gate.set()
    warm.result(5)
    assert [f.result(5)["y"].tolist() for f in good] == [[1], [2], [3]]
    with pytest.raises(ValueError, match="negative input"):
        bad.result(5)
    batcher.close()


def test_lone_client_is_not_delayed_and_shapes_do_not_mix():
    batcher = Batcher(lambda a: {"y": a["x"].sum(axis=1)}, max_batch_size=8, max_wait_ms=500)
    started = time.perf_counter()
    assert batcher.submit({"x": np.ones((1, 3))}).result(5)["y"].tolist() == [3.0]
    assert time.perf_counter() - started < 0.4  # no 500 ms timer for a single client
    a = batcher.submit({"x": np.ones((1, 2))})
    b = batcher.submit({"x": np.ones((2, 4))})
    assert a.result(5)["y"].tolist() == [2.0] and b.result(5)["y"].tolist() == [4.0, 4.0]
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit({"x": np.ones((1, 2))})


def test_shapes_are_left_to_the_graph():
    """TF Serving does not enforce a signature's static dims: a [1, 3] `x` for `[-1, 2]`, or columns of
    different lengths, reach the graph (which takes them or answers its own error, a 400)."""
    arrays, _ = parse_request({"instances": [{"x": [1, 2, 3], "k": 1}]}, TWO)
    assert arrays["x"].shape == (1, 3)
    arrays, layout = parse_request({"inputs": {"x": [[1, 2]], "k": [1, 2]}}, TWO)
    assert (arrays["x"].shape, arrays["k"].shape, layout) == ((1, 2), (2,), "columnar")
