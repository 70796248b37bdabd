"""Versions while serving: availability-preserving swaps under load (add, corrupt, half-write, delete the
served version: 0 failed requests), load retries, odd folder names, and the END status of unloaded and failed
versions."""

import base64
import logging
import os
import shutil
import threading
import time

import httpx
import numpy as np
import pytest

POLL = 0.2


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _states(http):
    return {s["version"]: s["state"] for s in http.get("/v1/models/tiny").json()["model_version_status"]}


def _half_written(exports, key, model_dir, number):
    """A version folder as a slow copy leaves it at first: only saved_model.pb (no variables yet)."""
    folder = os.path.join(model_dir, str(number))
    staging = os.path.join(os.path.dirname(os.path.dirname(model_dir)), f"half-written-{number}")
    os.makedirs(staging)
    shutil.copy(os.path.join(exports[key], "saved_model.pb"), staging)
    # appears at once with its saved_model.pb: a poll seeing an empty folder first would fail the load, see
    # the folder change when the .pb lands, and retry (LOADING) while the test reads the first failure
    os.rename(staging, folder)
    return folder


def test_versions_added_corrupted_half_written_and_deleted_under_load_fail_no_request(exports, tools, pngs,
                                                                                      tmp_path):
    """3 clients predict on "latest" throughout; every request must succeed (before: deleting the served
    version failed requests with `Servable not found ... Latest(tiny)` until the next one loaded)."""
    from toolkit.export import load
    from toolkit.serving import ModelRepository, Server

    base = tools.make_base(tmp_path, exports)
    model_dir = os.path.join(base, "tiny")
    repository = ModelRepository(base, poll_interval_s=POLL, batching="off", load_retry_interval_s=60.0)
    server = Server(repository, rest_port=0, grpc_port=None).start()
    image = {"b64": base64.b64encode(pngs[1]).decode()}
    expected = {key: load(exports[key])({"images": [pngs[1]]})["scores"][0] for key in ("v1", "v2")}
    assert np.abs(expected["v1"] - expected["v2"]).max() > 1e-3  # the two versions are distinguishable
    results, stop = [], threading.Event()

    def client():  # bounded: at most 3000 requests or until told to stop
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(3000):
                if stop.is_set():
                    return
                response = http.post("/v1/models/tiny:predict", json={"instances": [image]})
                scores = response.json()["predictions"][0]["scores"] if response.status_code == 200 else None
                results.append((response.status_code, scores, response.text[:200]))
                time.sleep(0.01)  # steady load without starving the loader of the 2 cores

    def served_since(count):
        return ["v1" if np.allclose(s, expected["v1"], atol=1e-5) else
                "v2" if np.allclose(s, expected["v2"], atol=1e-5) else "?" for _, s, _ in results[count:] if s]

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert _wait_for(lambda: len(results) >= 8, 30)
            # a new version swaps in: loaded before version 1 is unloaded, which then shows END (not gone)
            tools.publish(exports, "v2", model_dir, 2)
            assert _wait_for(lambda: _states(http) == {"2": "AVAILABLE", "1": "END"}, 30), _states(http)
            ended = next(s for s in http.get("/v1/models/tiny").json()["model_version_status"] if s["version"] == "1")
            assert ended["status"] == {"error_code": "OK", "error_message": ""}

            # a corrupt version 3: END with its error (no server paths in it); version 2 keeps serving
            os.makedirs(os.path.join(model_dir, "3"))
            with open(os.path.join(model_dir, "3", "saved_model.pb"), "wb") as f:
                f.write(b"this is not a SavedModel")
            assert _wait_for(lambda: _states(http).get("3") == "END", 20), _states(http)
            status = http.get("/v1/models/tiny/versions/3").json()["model_version_status"][0]["status"]
            assert status["error_code"] == "UNKNOWN" and "DecodeError" in status["error_message"]
            assert http.get("/v1/models/tiny/versions/3/metadata").status_code == 404

            # a half-written version 4 fails (NOT_FOUND: no variables), then loads once it is complete,
            # long before the 60 s retry interval: its folder changed
            folder = _half_written(exports, "v1", model_dir, 4)
            assert _wait_for(lambda: _states(http).get("4") == "END", 20), _states(http)
            status = http.get("/v1/models/tiny/versions/4").json()["model_version_status"][0]["status"]
            assert status["error_code"] == "NOT_FOUND" and status["error_message"]
            assert base not in status["error_message"] and str(tmp_path) not in status["error_message"]
            assert "/tmp" not in status["error_message"] and "tiny/4" in status["error_message"]
            assert _states(http)["2"] == "AVAILABLE"
            for name in os.listdir(exports["v1"]):
                if name != "saved_model.pb":
                    copy = shutil.copytree if os.path.isdir(os.path.join(exports["v1"], name)) else shutil.copy
                    copy(os.path.join(exports["v1"], name), os.path.join(folder, name))
            assert _wait_for(lambda: _states(http).get("4") == "AVAILABLE" and _states(http)["2"] == "END", 30), \
                _states(http)
            count = len(results)
            assert _wait_for(lambda: served_since(count).count("v1") >= 6, 30)  # version 4 is a copy of v1

            # delete the served version 4 (and the corrupt 3): version 2 loads while 4 keeps answering
            shutil.rmtree(os.path.join(model_dir, "4"))
            shutil.rmtree(os.path.join(model_dir, "3"))
            assert _wait_for(lambda: _states(http) == {"4": "END", "3": "END", "2": "AVAILABLE", "1": "END"}, 30), \
                _states(http)
            count = len(results)
            assert _wait_for(lambda: len(served_since(count)) >= 6, 30)
            assert set(served_since(count + 3)) == {"v2"}
            # and once more down to version 1
            shutil.rmtree(os.path.join(model_dir, "2"))
            assert _wait_for(lambda: _states(http)["1"] == "AVAILABLE" and _states(http)["2"] == "END", 30), \
                _states(http)
            count = len(results)
            assert _wait_for(lambda: len(served_since(count)) >= 6, 30)
            assert set(served_since(count + 3)) == {"v1"}
            metrics = http.get("/metrics").text
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        server.stop()
    failures = [(code, text) for code, _, text in results if code != 200]
    assert len(results) > 100 and not failures, (len(results), failures[:3])
    assert "?" not in served_since(0)
    assert 'toolkit_serving_load_failures_total{model="tiny"} 2.0' in metrics  # versions 3 and 4, once each


def test_failed_load_is_retried_max_num_load_retries_times(exports, tools, tmp_path):
    """Scan-once mode (poll 0) still retries: 1 load + 2 retries, 50 ms apart, then no more."""
    from toolkit.serving import ModelRepository

    base = tools.make_base(tmp_path, exports)
    _half_written(exports, "v1", os.path.join(base, "tiny"), 2)
    repository = ModelRepository(base, poll_interval_s=0, batching="off", max_num_load_retries=2,
                                 load_retry_interval_s=0.05).start()
    try:
        broken = repository.versions("tiny", 2)[0]
        assert _wait_for(lambda: broken.attempts == 3 and repository._thread is None, 20), broken.attempts
        time.sleep(0.3)
        assert broken.attempts == 3 and broken.state == "END" and broken.error_code == "NOT_FOUND"
        assert repository.get("tiny").number == 1  # the older version serves meanwhile
    finally:
        repository.close()
    with pytest.raises(ValueError, match="max_num_load_retries"):
        ModelRepository(base, max_num_load_retries=-1)


def test_non_ascii_integer_folders_are_ignored_with_one_warning(exports, tools, tmp_path, caplog):
    """`²` passes str.isdigit() but int() rejects it: before, it stopped the server at start and the polling
    of every model after it; now it is skipped with one warning, and `٣` (int() accepts it) too."""
    from toolkit.export.exporter import list_versions
    from toolkit.serving import ModelRepository

    base = tools.make_base(tmp_path, exports)
    shutil.copytree(os.path.join(base, "tiny"), os.path.join(base, "tiny2"))
    odd = ["²", "٣", "v3", "1.5"]
    for name in odd:
        shutil.copytree(exports["v1"], os.path.join(base, "tiny", name))
    os.makedirs(os.path.join(base, "tiny", ".tmp-export-1234"))  # the exporter's staging folder: silent
    caplog.set_level(logging.WARNING, logger="toolkit.serving.versions")
    repository = ModelRepository(base, poll_interval_s=0, batching="off").start()
    try:
        repository.poll()
        assert repository.get("tiny").number == 1 and repository.get("tiny2").number == 1
        assert [v.number for v in repository.versions("tiny")] == [1]
    finally:
        repository.close()
    warnings = [r.getMessage() for r in caplog.records if "ignoring folder" in r.getMessage()]
    assert len(warnings) == len(odd) and all(any(repr(n) in w for w in warnings) for n in odd), warnings
    assert list_versions(os.path.join(base, "tiny")) == [1]  # the exporter's next-version scan ignores them too


def test_version_policy_all_and_validation(exports, tools, tmp_path):
    from toolkit.serving import ModelRepository, NotFoundError

    base = tools.make_base(tmp_path, exports, versions=("v1", "v1"))
    repository = ModelRepository(base, poll_interval_s=0, version_policy="all", batching="off").start()
    try:
        assert [v.number for v in repository.versions("tiny")] == [2, 1]
        assert repository.get("tiny").number == 2 and repository.get("tiny", "1").number == 1
        with pytest.raises(NotFoundError):
            repository.get("tiny", 5)
        with pytest.raises(ValueError, match="invalid model name"):
            repository.get("../tiny")
        for bad in ("-1", "²", "٣"):
            with pytest.raises(ValueError, match="invalid model version"):
                repository.get("tiny", bad)
        # deleting version 2 with policy all: version 1 is already loaded and serves "latest" at once
        shutil.rmtree(os.path.join(base, "tiny", "2"))
        repository.poll()
        assert [(v.number, v.state) for v in repository.versions("tiny")] == [(2, "END"), (1, "AVAILABLE")]
        assert repository.get("tiny").number == 1
    finally:
        repository.close()
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ModelRepository(str(tmp_path / "missing"))
