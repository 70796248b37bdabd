"""Shared test setup: TensorFlow backend, quiet logs, no downloads, small thread pools."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_HOME", os.path.join(os.path.dirname(__file__), "..", ".keras_home"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import toolkit  # noqa: E402,F401


@pytest.fixture
def rng():
    return np.random.default_rng(0)
