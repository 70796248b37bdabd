"""Doctest setup for ``toolkit/``: TensorFlow backend, quiet logs, seeded RNGs, a temporary cwd.

pytest collects every module of ``toolkit/`` with ``--doctest-modules`` (see pyproject.toml).
Examples may use ``np``, ``keras`` and ``tf`` without importing them, and run in a fresh
temporary working directory so any file they write is thrown away.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_HOME", os.path.join(os.path.dirname(__file__), "..", ".keras_home"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402


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
