"""Quantized edge formats through the public export API: sizes, the held-out guard, sidecars, int8 I/O."""

import json
import os

import keras
import numpy as np
import pytest

from toolkit.export import ExportError, export, image_classification_adapter
from toolkit.export.edge import EdgePredictor, read_edge_metadata
from toolkit.export.quantize import QuantizationOptions

LABELS = ["dark", "bright"]
QUANTIZED = ("tflite-dynamic", "tflite-fp16", "tflite-int8", "onnx-int8")


@pytest.fixture(scope="module")
def classifier():
    """Dark vs bright 12x12 grey images; a Dense layer big enough (36k weights) for int8 to shrink the file ~4x."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 110, (96, 12, 12, 1)), rng.uniform(145, 255, (96, 12, 12, 1))]).astype("float32")
    y = np.array([0] * 96 + [1] * 96)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.Flatten(),
                              keras.layers.Dense(48, activation="relu"), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:128], y[:128], epochs=8, batch_size=32, verbose=0)
    adapter = image_classification_adapter(model, LABELS, sample_images=x[:3].astype("uint8"))
    held_out_x, held_out_y = x[128:], y[128:]

    def evaluate(predictor):
        scores = predictor({"pixels": held_out_x}, signature="serving_dense")["scores"]
        return {"accuracy": float((scores.argmax(-1) == held_out_y).mean())}

    return model, adapter, x[:128], evaluate


def _options(classifier, **overrides):
    _, _, train_x, evaluate = classifier
    return QuantizationOptions(evaluate=evaluate, representative=[{"pixels": train_x[:64]}, {"pixels": train_x[64:100]}],
                               **overrides)


@pytest.fixture(scope="module")
def exported(classifier, tmp_path_factory):
    model, adapter, _, _ = classifier
    path = export(model, str(tmp_path_factory.mktemp("q") / "m"), adapter=adapter,
                  formats=("saved_model", "tflite", "onnx", *QUANTIZED), quantization=_options(classifier))
    with open(os.path.join(path, "assets.extra", "toolkit.json")) as f:
        return path, json.load(f)


def test_every_quantized_file_is_scored_sized_and_published(exported):
    path, meta = exported
    report = meta["quantization"]
    assert report["metric"] == "accuracy" and report["calibration_examples"] == 100 and report["max_drop"] == 1.0
    assert report["float"] >= 0.95, report
    for fmt in QUANTIZED:
        entry = report["formats"][fmt]
        assert entry["published"] and os.path.isfile(os.path.join(path, entry["file"])), entry
        assert meta["files"][fmt] == entry["file"]
        assert entry["drop"] == pytest.approx((report["float"] - entry["metric"]) * 100, abs=1e-6)
        assert entry["size_bytes"] == os.path.getsize(os.path.join(path, entry["file"]))
    float_tflite = os.path.getsize(os.path.join(path, "model.tflite"))
    assert report["formats"]["tflite-int8"]["float_size_bytes"] == float_tflite
    assert float_tflite / report["formats"]["tflite-int8"]["size_bytes"] >= 3.5  # int8 weights: ~4x smaller
    assert float_tflite / report["formats"]["tflite-dynamic"]["size_bytes"] >= 3.5
    assert 1.8 <= float_tflite / report["formats"]["tflite-fp16"]["size_bytes"] <= 2.1  # float16 weights: ~2x
    onnx = os.path.getsize(os.path.join(path, "model.onnx"))
    # int8 weights, but float biases, scales and the graph's fixed overhead stay: 2.99x measured on this tiny model
    assert onnx / report["formats"]["onnx-int8"]["size_bytes"] >= 2.8


def test_edge_files_carry_labels_and_normalisation_and_run_alone(exported, classifier):
    path, meta = exported
    model, _, train_x, _ = classifier
    with open(os.path.join(path, "labels.txt")) as f:
        assert f.read().splitlines() == LABELS
    side = read_edge_metadata(os.path.join(path, "model-int8.tflite"))
    assert side["labels"] == LABELS and side["associated_files"][0]["name"] == "labels.txt"
    assert side["normalization"]["input_range"] == [0.0, 255.0] and side["preprocessing"]["resize"] == [12, 12]
    assert side["quantization"]["file"] == "model-int8.tflite" and side["quantization"]["published"]
    live = model(train_x[:8]).numpy()
    for name, atol in (("model-int8.tflite", 0.05), ("model-fp16.tflite", 1e-3), ("model-int8.onnx", 0.05)):
        out = EdgePredictor(os.path.join(path, name))({"pixels": train_x[:8]}, signature="serving_dense")
        assert np.abs(out["scores"] - live).max() <= atol, name
        assert list(out["labels"]) == [LABELS[c] for c in out["classes"]]


def test_guard_refuses_a_file_past_the_threshold_and_keeps_the_float_formats(classifier, tmp_path):
    model, adapter, _, _ = classifier
    # a drop of at most -50 points (the file would have to score 50 points better): impossible, so refused
    path = export(model, str(tmp_path / "m"), adapter=adapter, formats=("saved_model", "tflite", "tflite-dynamic"),
                  quantization=_options(classifier, max_drop=-50.0))
    meta = json.load(open(os.path.join(path, "assets.extra", "toolkit.json")))
    entry = meta["quantization"]["formats"]["tflite-dynamic"]
    assert entry["published"] is False and not os.path.exists(os.path.join(path, "model-dynamic.tflite"))
    assert f"dropped {entry['drop']:.2f} points" in entry["reason"] and "> max_quantization_drop -50" in entry["reason"]
    assert "tflite-dynamic" not in meta["files"] and os.path.isfile(os.path.join(path, "model.tflite"))
    assert not [n for n in os.listdir(path) if n.startswith(".")]  # no scratch files left


def test_int8_io_file_takes_and_returns_int8_tensors(classifier, tmp_path):
    model, adapter, train_x, _ = classifier
    path = export(model, str(tmp_path / "m"), adapter=adapter, formats=("saved_model", "tflite-int8"),
                  quantization=_options(classifier, int8_io=True))
    side = read_edge_metadata(os.path.join(path, "model-int8.tflite"))
    (pixels,) = side["tensors"]["inputs"]
    assert pixels["dtype"] == "int8" and pixels["scale"] > 0
    assert {t["name"]: t["dtype"] for t in side["tensors"]["outputs"]} == {"classes": "int32", "scores": "int8"}
    out = EdgePredictor(os.path.join(path, "model-int8.tflite"))({"pixels": train_x[:8]}, signature="serving_dense")
    assert np.abs(out["scores"] - model(train_x[:8]).numpy()).max() <= 0.05  # dequantized with the file's scale


def test_quantized_formats_without_a_guard_fail_and_write_nothing(classifier, tmp_path):
    model, adapter, _, _ = classifier
    with pytest.raises(ExportError, match="need held-out data for the accuracy guard"):
        export(model, str(tmp_path / "m"), adapter=adapter, formats=("saved_model", "tflite-fp16"))
    assert not os.path.exists(tmp_path / "m")


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """A tiny untrained YOLO (16x16, width 4) with padded NMS in the graph, exported tflite-int8 / onnx-int8."""
    from toolkit.export.detection import detection_adapter
    from toolkit.models.detection.yolo import build_yolo, yolo_detect

    keras.utils.set_random_seed(1)
    anchors = np.array([[4.0, 4.0], [9.0, 9.0]], "float32")
    model = build_yolo((16, 16, 3), 2, anchors, width=4)
    head = model.get_layer("yolo_out")  # distinct scores per cell and anchor (an untrained head ties them all)
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 0.05, np.random.default_rng(2).normal(0.0, 2.0, bias.shape).astype("float32")])
    x = np.random.default_rng(1).uniform(0, 255, (24, 16, 16, 3)).astype("float32")

    def detect(raw):
        return yolo_detect(raw, anchors, (16, 16), max_detections=10, score_threshold=0.05, method="padded")

    adapter = detection_adapter(model, ["a", "b"], detect, sample_images=x[:2].astype("uint8"))
    reference = {}

    def evaluate(predictor):  # agreement with the live model's detections (IoU >= 0.5, same class)
        out = predictor({"pixels": x[16:]}, signature="serving_dense")
        if not reference:
            reference.update(out)
        return {"agreement": _agreement(reference, out)}

    options = QuantizationOptions(evaluate=evaluate, representative=[{"pixels": x[:16]}], metric="agreement",
                                  max_drop=100.0)
    path = export(model, str(tmp_path_factory.mktemp("det") / "m"), adapter=adapter,
                  formats=("saved_model", "tflite", "tflite-int8", "onnx-int8"), quantization=options)
    return path, x


def _agreement(reference, out) -> float:
    from toolkit.models.detection.boxes import box_iou

    hits, total = 0, 0
    for i in range(len(reference["num_detections"])):
        n, m = int(reference["num_detections"][i]), int(out["num_detections"][i])
        total += n
        if n and m:
            iou = np.asarray(box_iou(reference["boxes"][i][:n], out["boxes"][i][:m]))
            same = reference["classes"][i][:n, None] == out["classes"][i][None, :m]
            hits += int(((iou >= 0.5) & same).any(axis=1).sum())
    return hits / max(total, 1)


@pytest.mark.slow  # ~25 s idle (calibration + three int8 conversions), ~75 s under the shared load
def test_detector_int8_keeps_nms_float_and_runs_at_any_batch(detector):
    """The whole-graph int8 file aborted inside LiteRT's padded-NMS graph; the network-only one runs."""
    path, x = detector
    meta = json.load(open(os.path.join(path, "assets.extra", "toolkit.json")))
    for fmt in ("tflite-int8", "onnx-int8"):
        entry = meta["quantization"]["formats"][fmt]
        assert entry["published"], entry
        predictor = EdgePredictor(os.path.join(path, entry["file"]))
        for batch in (1, 3):
            out = predictor({"pixels": x[:batch]}, signature="serving_dense")
            assert out["boxes"].shape == (batch, 10, 4) and out["num_detections"].shape == (batch,), fmt
            n = int(out["num_detections"][0])
            assert n > 0 and np.isfinite(out["boxes"]).all() and set(np.unique(out["classes"][0][:n])) <= {0, 1}, fmt
        assert entry["metric"] >= 0.5, entry  # same detections as the float model, boxes decoded in float
    assert meta["quantization"]["formats"]["tflite-int8"]["size_ratio"] > 1.2
