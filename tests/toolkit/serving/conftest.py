"""Shared fixtures: two tiny exported image classifiers (distinct weights) and a running server."""

import os
import shutil

import numpy as np
import pytest

LABELS = ["ant", "bee", "cat"]


def export_classifier(directory, seed):
    import keras

    from toolkit.export import export, image_classification_adapter
    from toolkit.models.transfer import build_image_classifier

    keras.utils.set_random_seed(seed)
    model = build_image_classifier((28, 28, 1), 3, width=4)
    # Spread the (near-uniform) initial scores so each model's prediction is distinct and checkable.
    head = model.layers[-1]
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 40.0, bias + np.array([0.0, 1.0, -1.0]) * (1 if seed % 2 else -1)])
    samples = np.random.default_rng(seed).integers(0, 255, (2, 28, 28, 1))
    adapter = image_classification_adapter(model, LABELS, samples)
    return export(model, directory, adapter=adapter)


class _Exports(dict):
    """`{"v1": <tiny/1 folder>, "v2": <another model's version folder>}`, each exported on first use."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def __missing__(self, key):
        seed = {"v1": 1, "v2": 2}[key]
        self[key] = export_classifier(str(self.root / key / "tiny"), seed=seed)
        return self[key]


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    return _Exports(tmp_path_factory.mktemp("exports"))


@pytest.fixture(scope="session")
def pngs():
    """A few PNG images of different sizes (the signature resizes in-graph)."""
    from toolkit.export import encode_png

    rng = np.random.default_rng(7)
    return [encode_png(rng.integers(0, 255, shape)) for shape in [(28, 28, 1), (40, 30, 1), (17, 50, 3)]]


def make_base(tmp_path, exports, versions=("v1",)):
    """A model base path `<tmp>/models/tiny/<n>/` holding copies of the given exports as versions 1, 2, ..."""
    base = tmp_path / "models"
    for number, key in enumerate(versions, start=1):
        shutil.copytree(exports[key], base / "tiny" / str(number))
    return str(base)


def publish(exports, key, model_dir, number):
    """Drops an export in as version `number` the way the exporter does it: copy aside, then rename."""
    staging = os.path.join(model_dir, f".tmp-{number}")
    shutil.copytree(exports[key], staging)
    os.rename(staging, os.path.join(model_dir, str(number)))


@pytest.fixture(scope="module")
def server(exports, tmp_path_factory):
    """A running server (REST + gRPC on free loopback ports) over a base path with `tiny` version 1."""
    from toolkit.serving import ModelRepository, Server

    base = make_base(tmp_path_factory.mktemp("serve"), exports)
    repository = ModelRepository(base, poll_interval_s=0.5, max_wait_ms=2.0)
    srv = Server(repository, host="127.0.0.1", rest_port=0, grpc_port=0, max_body_bytes=256 * 1024).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def reference(exports, pngs):
    """In-process predictions of version 1 for `pngs` (what the server must return)."""
    from toolkit.export import load

    return load(exports["v1"])({"images": pngs})


@pytest.fixture(scope="session")
def tools():
    """The helpers above for test modules (importlib mode: conftest is not importable)."""
    import types

    return types.SimpleNamespace(make_base=make_base, publish=publish, export_classifier=export_classifier)
