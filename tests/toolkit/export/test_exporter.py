import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.export import (
    ExportError,
    encode_png,
    export,
    function_has_xla,
    image_classification_adapter,
    list_versions,
    load,
)
from toolkit.models.transfer import build_image_classifier

LABELS = ["dark", "bright"]


@pytest.fixture(scope="module")
def trained():
    """A tiny classifier that learned dark (0) vs bright (1) 10x10 grey images."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    dark = rng.uniform(0, 60, (64, 10, 10, 1))
    bright = rng.uniform(195, 255, (64, 10, 10, 1))
    x = np.concatenate([dark, bright]).astype("float32")
    y = np.array([0] * 64 + [1] * 64)
    model = build_image_classifier((10, 10, 1), 2, width=4, dense_units=16, dropout=0.0)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=15, batch_size=32, verbose=0, shuffle=True)
    for _ in range(300):  # settle BatchNorm's moving statistics (momentum 0.99) on the training data
        model(x, training=True)
    assert (model.predict(x, verbose=0).argmax(axis=1) == y).mean() == 1.0
    samples = np.concatenate([dark[:2], bright[:2]]).astype("uint8")
    return model, image_classification_adapter(model, LABELS, sample_images=samples), samples


@pytest.mark.parametrize("target", ["cpu", "gpu", "tpu"])
def test_round_trip_each_target_with_parity(trained, tmp_path, target):
    model, adapter, samples = trained
    path = export(model, str(tmp_path / "m"), target=target, adapter=adapter, batch_size=4)
    assert path == str(tmp_path / "m" / "1")
    predictor = load(str(tmp_path / "m"))
    meta = predictor.metadata
    assert meta["target"] == target and meta["labels"] == LABELS and meta["task"] == "image_classification"
    assert max(meta["parity_max_abs_diff"]["saved_model"].values()) <= 1e-4
    dense = predictor(samples.astype("float32"), signature="serving_dense")
    np.testing.assert_allclose(dense["scores"], model(samples.astype("float32")).numpy(), atol=1e-4)
    assert set(predictor.signatures) >= {"serving_default", "serving_dense"}


def test_raw_png_bytes_in_correct_label_out(trained, tmp_path):
    model, adapter, _ = trained
    path = export(model, str(tmp_path / "m"), adapter=adapter)
    predictor = load(path)
    # different sizes from the training data: the graph decodes and resizes
    images = [np.full((23, 17, 1), 10, "uint8"), np.full((40, 40, 3), 240, "uint8"), np.full((10, 10, 1), 250, "uint8")]
    out = predictor([encode_png(image) for image in images])
    assert [label.decode() for label in out["labels"]] == ["dark", "bright", "bright"]
    assert out["scores"].shape == (3, 2) and out["classes"].tolist() == [0, 1, 1]


def test_tpu_signature_has_xla_and_static_batch(trained, tmp_path):
    model, adapter, samples = trained
    path = export(model, str(tmp_path / "m"), target="tpu", adapter=adapter, batch_size=4)
    assert function_has_xla(path)
    loaded = tf.saved_model.load(path)
    for name in ("serving_default", "serving_dense"):
        spec = next(iter(loaded.signatures[name].structured_input_signature[1].values()))
        assert spec.shape[0] == 4
    assert "tpu_func" in loaded.signatures
    cpu_path = export(model, str(tmp_path / "c"), target="cpu", adapter=adapter)
    assert not function_has_xla(cpu_path)
    # the predictor pads a short batch to the static batch and trims the result
    out = load(path)([encode_png(samples[0])])
    assert out["scores"].shape == (1, 2)


def test_versions_increment_and_metadata_carries_extras(trained, tmp_path):
    model, adapter, _ = trained
    first = export(model, str(tmp_path / "m"), adapter=adapter, metadata={"metrics": {"accuracy": 0.9}})
    second = export(model, str(tmp_path / "m"), adapter=adapter)
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    assert list_versions(str(tmp_path / "m")) == [1, 2]
    with open(os.path.join(first, "assets.extra", "toolkit.json")) as f:
        meta = json.load(f)
    assert meta["metrics"] == {"accuracy": 0.9}
    assert meta["versions"]["tensorflow"] == tf.__version__
    assert load(str(tmp_path / "m")).version == 2


def test_failed_export_leaves_nothing_behind(trained, tmp_path):
    model, adapter, _ = trained
    with pytest.raises(ExportError, match="tolerance"):
        export(model, str(tmp_path / "m"), adapter=adapter, tolerance=-1.0)
    assert not (tmp_path / "m").exists()  # not even an empty model folder for `toolkit serve` to list
    os.makedirs(tmp_path / "m" / "1")  # an existing model folder keeps its versions, gains nothing
    with pytest.raises(ExportError, match="tolerance"):
        export(model, str(tmp_path / "m"), adapter=adapter, tolerance=-1.0)
    assert os.listdir(tmp_path / "m") == ["1"]


def test_tflite_and_onnx_formats_are_parity_checked(trained, tmp_path):
    model, adapter, samples = trained
    path = export(model, str(tmp_path / "m"), adapter=adapter, formats=("saved_model", "tflite", "onnx"))
    meta = load(path).metadata
    assert meta["files"] == {"tflite": "model.tflite", "onnx": "model.onnx"}
    assert meta["parity_max_abs_diff"]["tflite"] <= 1e-4 and meta["parity_max_abs_diff"]["onnx"] <= 1e-4
    from toolkit.export.tflite import run_tflite

    with open(os.path.join(path, "model.tflite"), "rb") as f:
        out = run_tflite(f.read(), {"pixels": samples.astype("float32")})
    assert out["classes"].tolist() == [0, 0, 1, 1]


def test_plain_model_gets_a_dense_signature(tmp_path):
    model = keras.Sequential([keras.Input((3,), name="features"), keras.layers.Dense(2)])
    path = export(model, str(tmp_path / "plain"))
    out = load(path)(np.ones((2, 3), "float32"))
    np.testing.assert_allclose(out["outputs"], model(np.ones((2, 3))).numpy(), atol=1e-6)


def test_bad_arguments_are_named(trained, tmp_path):
    model, adapter, _ = trained
    with pytest.raises(ValueError, match="target='fpga'"):
        export(model, str(tmp_path / "m"), target="fpga", adapter=adapter)
    with pytest.raises(ValueError, match="pdf"):
        export(model, str(tmp_path / "m"), formats=("pdf",), adapter=adapter)
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        load(str(tmp_path / "nothing"))


def test_tpu_static_batch_converts_to_tflite_and_onnx(tmp_path):
    """The converters get the static batch and a parity sample padded to it (XNNPack cannot shrink it)."""
    import keras

    from toolkit.export import export, load

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
    path = export(model, str(tmp_path / "tiny"), target="tpu", formats=("saved_model", "tflite", "onnx"), batch_size=4)
    meta = load(path).metadata
    assert meta["batch_size"] == 4 and meta["parity_max_abs_diff"]["tflite"] <= 1e-4
    assert meta["parity_max_abs_diff"]["onnx"] <= 1e-4

