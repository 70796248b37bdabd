"""Versions while serving: a new version swaps in under load, a corrupt one is reported, removed ones unload."""

import base64
import os
import shutil
import threading
import time

import httpx
import numpy as np
import pytest

POLL = 0.3


@pytest.fixture(scope="module")
def live(exports, tools, tmp_path_factory):
    from toolkit.serving import ModelRepository, Server

    base = tools.make_base(tmp_path_factory.mktemp("versions"), exports)
    repository = ModelRepository(base, poll_interval_s=POLL, max_wait_ms=2.0)
    server = Server(repository, rest_port=0, grpc_port=None).start()
    yield server, os.path.join(base, "tiny")
    server.stop()


def _status(http):
    return [(s["version"], s["state"]) for s in http.get("/v1/models/tiny").json()["model_version_status"]]


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_new_version_swaps_in_under_load_corrupt_version_is_reported(live, exports, tools, pngs):
    from toolkit.export import load

    server, model_dir = live
    image = {"b64": base64.b64encode(pngs[1]).decode()}
    expected = {key: load(exports[key])({"images": [pngs[1]]})["scores"][0] for key in ("v1", "v2")}
    assert np.abs(expected["v1"] - expected["v2"]).max() > 1e-3  # the two versions are distinguishable

    results, stop = [], threading.Event()

    def client():  # bounded: at most 400 requests or until told to stop
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(400):
                if stop.is_set():
                    return
                response = http.post("/v1/models/tiny:predict", json={"instances": [image]})
                scores = response.json()["predictions"][0]["scores"] if response.status_code == 200 else None
                results.append((response.status_code, scores))
                time.sleep(0.01)  # steady load without starving the loader of the 2 cores

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert _wait_for(lambda: len(results) >= 8, 30)
        published = time.monotonic()
        tools.publish(exports, "v2", model_dir, 2)
        assert _wait_for(lambda: _status(http) == [("2", "AVAILABLE")], POLL + 30), _status(http)
        swap_seconds = time.monotonic() - published
        count = len(results)
        assert _wait_for(lambda: len(results) >= count + 8, 30)
        stop.set()
        for thread in threads:
            thread.join(30)

        assert results and all(code == 200 for code, _ in results), {code for code, _ in results}
        served = ["v1" if np.allclose(s, expected["v1"], atol=1e-5) else
                  "v2" if np.allclose(s, expected["v2"], atol=1e-5) else "?" for _, s in results]
        assert "?" not in served and served[0] == "v1" and served[-1] == "v2"
        assert served.index("v2") > 0 and "v1" not in served[served.index("v2") + 8:]  # swapped once
        assert swap_seconds < POLL + 30

        # a corrupt version 3: reported as END with its error; version 2 keeps serving
        os.makedirs(os.path.join(model_dir, "3"))
        with open(os.path.join(model_dir, "3", "saved_model.pb"), "wb") as f:
            f.write(b"this is not a SavedModel")
        assert _wait_for(lambda: ("3", "END") in _status(http), POLL + 20), _status(http)
        status = http.get("/v1/models/tiny").json()["model_version_status"]
        broken = next(s for s in status if s["version"] == "3")
        assert broken["status"]["error_code"] == "UNKNOWN" and broken["status"]["error_message"]
        assert ("2", "AVAILABLE") in _status(http)
        response = http.post("/v1/models/tiny:predict", json={"instances": [image]})
        np.testing.assert_allclose(response.json()["predictions"][0]["scores"], expected["v2"], atol=1e-5)
        assert http.get("/v1/models/tiny/versions/3/metadata").status_code == 404

        # removing versions 3 and 2 from disk unloads them; version 1 (still on disk) serves again
        shutil.rmtree(os.path.join(model_dir, "3"))
        shutil.rmtree(os.path.join(model_dir, "2"))
        assert _wait_for(lambda: _status(http) == [("1", "AVAILABLE")], POLL + 30), _status(http)
        response = http.post("/v1/models/tiny:predict", json={"instances": [image]})
        np.testing.assert_allclose(response.json()["predictions"][0]["scores"], expected["v1"], atol=1e-5)
        metrics = http.get("/metrics").text
        assert 'toolkit_serving_load_failures_total{model="tiny"} 1.0' in metrics


def test_version_policy_all_and_validation(exports, tools, tmp_path):
    from toolkit.serving import ModelRepository, NotFoundError

    base = tools.make_base(tmp_path, exports, versions=("v1", "v1"))
    repository = ModelRepository(base, poll_interval_s=0, version_policy="all").start()
    try:
        assert [v.number for v in repository.versions("tiny")] == [2, 1]
        assert repository.get("tiny").number == 2 and repository.get("tiny", "1").number == 1
        with pytest.raises(NotFoundError):
            repository.get("tiny", 5)
        with pytest.raises(ValueError, match="invalid model name"):
            repository.get("../tiny")
        with pytest.raises(ValueError, match="invalid model version"):
            repository.get("tiny", "-1")
    finally:
        repository.close()
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ModelRepository(str(tmp_path / "missing"))
