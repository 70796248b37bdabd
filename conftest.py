"""Doctest setup for ``toolkit/``: TensorFlow backend, quiet logs, seeded RNGs, a temporary cwd.

At the repository root, not inside the package, so it never ships in the wheel.

pytest collects every module of ``toolkit/`` with ``--doctest-modules`` (see pyproject.toml).
Examples may use ``np``, ``keras`` and ``tf`` without importing them, and run in a fresh
temporary working directory so any file they write is thrown away.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_HOME", os.path.join(os.path.dirname(__file__), ".keras_home"))

import importlib.util  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# toolkit/serving imports its `serving` extra (FastAPI, uvicorn, httpx, prometheus-client, gRPC, TF Serving
# protos) at module level. `make test` installs it (the `test` extra); without it, collecting those modules
# would be an import error, so they are left out of collection instead. Nothing is ignored in the test env.
_SERVING_EXTRA = ("fastapi", "uvicorn", "httpx", "prometheus_client", "grpc", "tensorflow_serving")
collect_ignore_glob = []
if any(importlib.util.find_spec(name) is None for name in _SERVING_EXTRA):
    collect_ignore_glob.append("toolkit/serving/*.py")


@pytest.fixture(autouse=True)
def _doctest_env(request, tmp_path, monkeypatch):
    """For doctest items only: np/keras/tf in the namespace, fixed seeds, cwd in tmp_path."""
    if request.node.__class__.__name__ != "DoctestItem":
        yield
        return
    import keras
    import tensorflow as tf

    namespace = request.getfixturevalue("doctest_namespace")
    namespace.update(np=np, keras=keras, tf=tf)
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session(free_memory=False)  # no gc.collect(): ~0.7 s per example
