"""Shared fixtures: two tiny exported image classifiers (distinct weights), a running server, and one tiny
export per task type (detector, segmenter, text classifier, text embedder, VAE) for the web-page tests."""

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


def export_task_models(root):
    """One tiny export per task the toolkit's apps export, each through its app (train -> `run.export`):
    `{"detector", "segmenter", "sentiment", "embedder", "vae"}` -> version folder. Untrained or barely
    trained (1 epoch, a few examples): the page tests need the exports' outputs, not their accuracy. The apps'
    plots (their own tests check them; matplotlib costs seconds per run) and TensorBoard logs are skipped."""
    from apps import (
        image_segmenter,
        object_detector,
        text_classifier,
        text_embedder,
        vae,
    )

    apps = (image_segmenter, object_detector, text_classifier, text_embedder, vae)
    with pytest.MonkeyPatch.context() as patch:
        for app in apps:
            patch.setattr(app.APP, "plot", lambda run, ctx=None: {})
        return _export_task_models(root, *apps)


def _export_task_models(root, image_segmenter, object_detector, text_classifier, text_embedder, vae):
    import keras

    from toolkit.data import samples
    from toolkit.data.scenes import digit_scenes
    from toolkit.models import bert

    runs, out, quiet = str(root / "runs"), {}, {"verbose": 0, "tensorboard": False}
    scenes = digit_scenes(4, image_size=64, objects=(1, 2), object_size=(20, 28), classes=[0, 1, 2], seed=1)
    # score_threshold 0 and 3 detections: an untrained detector still returns exactly 3 boxes
    run = object_detector.train(scenes, model="yolo", image_size="64x64", epochs=1, repeat=1, batch_size=4,
                                validation_split=0.0, augment="none", width=8, anchors=2, **quiet,
                                score_threshold=0.0, max_detections=3, run_dir=runs)
    out["detector"] = run.export(str(root / "detector"))
    seg = digit_scenes(4, image_size=24, objects=(1, 2), object_size=(10, 16), classes=[0, 1], seed=3)
    run = image_segmenter.train((seg.images, seg.masks, ["background", "0", "1"]), epochs=1, batch_size=4,
                                filters="4,8", bottleneck=8, validation_split=0.0, patience=-1, augment="none",
                                run_dir=runs, seed=0, **quiet)
    out["segmenter"] = run.export(str(root / "segmenter"))
    texts = ["a wonderful film", "great fun", "a lovely story", "a dull film", "an awful mess", "a boring story"]
    run = text_classifier.train((texts, ["pos"] * 3 + ["neg"] * 3), model="tfidf-mlp", epochs=10, batch_size=8,
                                learning_rate=0.05, validation_split=0.0, patience=-1, run_dir=runs, seed=1, **quiet)
    out["sentiment"] = run.export(str(root / "sentiment"))
    keras.utils.set_random_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["the", "a", "cat", "dog", "sat", "on", "mat", "good", "bad", "film", "movie"]
    backbone, tokenizer = bert.tiny_bert(vocab, hidden_dim=16, num_heads=2, max_sequence_length=32)
    preset = str(root / "tiny_bert")
    backbone.save_to_preset(preset)
    tokenizer.save_to_preset(preset)
    run = text_embedder.train(EMBEDDER_CORPUS, checkpoint=preset, top_k=2, sequence_length=16, run_dir=runs, **quiet)
    out["embedder"] = run.export(str(root / "embedder"))
    x, y, names = samples.digits()
    run = vae.train((x[:64], y[:64], names), epochs=1, batch_size=32, architecture="dense", latent_dim=2,
                    hidden=16, iw_samples=2, iw_images=20, semi_supervised="2", semi_supervised_repeats=1,
                    patience=-1, run_dir=runs, **quiet)
    out["vae"] = run.export(str(root / "vae"))
    return out


EMBEDDER_CORPUS = ["the cat sat on the mat", "a dog sat", "good film", "bad movie"]


@pytest.fixture(scope="session")
def task_exports(tmp_path_factory):
    """`export_task_models` once per session (about 50 s on 2 cores)."""
    return export_task_models(tmp_path_factory.mktemp("task-exports"))
