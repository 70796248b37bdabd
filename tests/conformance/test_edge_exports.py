"""Conformance: quantized edge exports (tflite-dynamic, tflite-fp16, tflite-int8, onnx-int8) through the CLI, each
step in a new process: export with the accuracy guard's figures in the metadata and the CLI summary, a file refused
past `--max-quantization-drop`, and `evaluate` / `predict` on the .tflite / .onnx file itself. The image
classifier's int8 cells are in the fast set; the other formats and apps are `slow`."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests import harness
from tests.conformance import cells
from tests.conformance.cells import Family, json_out, toolkit

QUANTIZED = ("tflite-dynamic", "tflite-fp16", "tflite-int8", "onnx-int8")
slow = pytest.mark.slow


def _classifier(fixture):
    folder = fixture("image_folder")
    return {"task": "image-classifier", "train_args": ["--data", folder, "--backbone", "small_cnn", "--image-size",
                                                       "32x32", "--width", "4", "--dense-units", "8", "--batch-size", "4"],
            "eval_data": folder, "inputs": fixture("image_inputs"), "extra_export": []}


def _segmenter(fixture):
    data = cells.segmentation_data(str(fixture("data_root") / "segmentation"))
    return {"task": "image-segmenter", "train_args": ["--data", data, "--test-data", data, "--image-size", "24x24",
                                                      "--filters", "4,8", "--bottleneck", "8", "--batch-size", "4",
                                                      "--validation-split", "0", "--augment", "none"],
            "eval_data": data, "inputs": cells.images_under(data), "extra_export": []}


def _detector(fixture):
    data = cells.detection_data(str(fixture("data_root") / "detection-coco-edge"), "coco")
    return {"task": "object-detector", "model": "yolo",
            "train_args": ["--data", data, "--format", "coco", "--image-size", "32x32", "--width", "4", "--batch-size",
                           "4", "--validation-split", "0", "--repeat", "1", "--augment", "none", "--anchors", "2"],
            "eval_data": data, "inputs": cells.images_under(data), "extra_export": ["--test-data", data]}


def _ssd(fixture):
    return {**_detector(fixture), "model": "ssd"}


SPECS = {"image-classifier": _classifier, "image-segmenter": _segmenter, "object-detector": _detector,
         "object-detector-ssd": _ssd}
METRICS = {"image-classifier": "accuracy", "image-segmenter": "mean_iou", "object-detector": "map_50",
           "object-detector-ssd": "map_50"}


class EdgeFamily:
    """One app trained once through the CLI (`cells.Family`), then exported with quantized formats."""

    def __init__(self, name, request, tmp_path_factory):
        args = SPECS[name](request.getfixturevalue)
        self.extra_export = args.pop("extra_export")
        model = args.pop("model", None)
        root = tmp_path_factory.mktemp(f"edge-{name}")
        self.family = Family(args.pop("task"), model, root, serve_base=str(root / "serve"), **args)
        self.root, self.exports = str(root), {}

    def export(self, formats, *flags):
        key = (formats, flags)
        if key not in self.exports:
            self.exports[key] = cells.Outcome(lambda: self._export(formats, flags))
        return self.exports[key].get(f"{self.family.kind} export {formats}")

    def _export(self, formats, flags):
        output = os.path.join(self.root, "exports", re.sub(r"[^a-z0-9]+", "-", formats + "".join(flags)))
        done = toolkit(self.family.task, "export", self.family.run_dir(), "--output", output, "--formats", formats,
                       *self.extra_export, *flags)
        match = re.search(r"^exported: (.+)$", done.stdout, re.M)
        assert match, harness.tail(done.stdout)
        path = match.group(1).strip()
        with open(os.path.join(path, "assets.extra", "toolkit.json")) as f:
            return {"path": path, "stdout": done.stdout, "metadata": json.load(f)}


@pytest.fixture(scope="module")
def edge(request, tmp_path_factory):
    families = {}

    def get(name):
        if name not in families:
            families[name] = EdgeFamily(name, request, tmp_path_factory)
        return families[name]

    return get


def _check_published(result, fmt):
    entry = result["metadata"]["quantization"]["formats"][fmt]
    assert entry["published"], entry
    path = os.path.join(result["path"], entry["file"])
    assert os.path.isfile(path) and os.path.isfile(path + ".json"), os.listdir(result["path"])
    assert f"{fmt:<15} {entry['file']}" in result["stdout"] and "published" in result["stdout"], result["stdout"]
    return path


# --- the image classifier: int8 in the fast set ----------------------------------------------------------------

def test_classifier_int8_export_records_the_guard(edge):
    result = edge("image-classifier").export("saved_model,tflite-int8")
    report = result["metadata"]["quantization"]
    assert report["metric"] == "accuracy" and report["max_drop"] == 1.0 and report["calibration_examples"] > 0
    assert report["formats"]["tflite-int8"]["drop"] <= 1.0
    _check_published(result, "tflite-int8")


def test_classifier_evaluate_the_tflite_file(edge):
    family = edge("image-classifier")
    result = family.export("saved_model,tflite-int8")
    tflite = os.path.join(result["path"], "model-int8.tflite")
    metrics = json_out(toolkit(family.family.task, "evaluate", tflite, "--data", family.family.eval_data, "--json"))
    assert 0.0 <= metrics["accuracy"] <= 1.0 and "per_class" in metrics, metrics


@slow
def test_classifier_predict_the_tflite_file_as_the_folder_does(edge):
    family = edge("image-classifier")
    result = family.export("saved_model,tflite-int8")
    tflite = os.path.join(result["path"], "model-int8.tflite")
    rows = json_out(toolkit(family.family.task, "predict", tflite, *family.family.inputs, "--json"))
    folder = json_out(toolkit(family.family.task, "predict", result["path"], *family.family.inputs, "--json"))
    assert [r["input"] for r in rows] == [r["input"] for r in folder]
    for a, b in zip(rows, folder):
        assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) <= 0.1, (a, b)


# --- slow: every format, the refusal, the other apps -----------------------------------------------------------

@slow
def test_classifier_every_quantized_format(edge):
    result = edge("image-classifier").export("saved_model,tflite,onnx," + ",".join(QUANTIZED))
    for fmt in QUANTIZED:
        _check_published(result, fmt)


@slow
def test_classifier_guard_refuses_past_the_threshold(edge):
    result = edge("image-classifier").export("saved_model,tflite,tflite-dynamic", "--max-quantization-drop", "-100")
    entry = result["metadata"]["quantization"]["formats"]["tflite-dynamic"]
    assert not entry["published"] and "NOT published: accuracy dropped" in result["stdout"], result["stdout"]
    assert not os.path.exists(os.path.join(result["path"], "model-dynamic.tflite"))
    assert os.path.isfile(os.path.join(result["path"], "model.tflite"))


@slow
def test_classifier_int8_io(edge):
    result = edge("image-classifier").export("saved_model,tflite-int8", "--int8-io")
    path = _check_published(result, "tflite-int8")
    with open(path + ".json") as f:
        assert json.load(f)["tensors"]["inputs"][0]["dtype"] == "int8"


@slow
@pytest.mark.parametrize("name", ["image-segmenter", "object-detector", "object-detector-ssd"])
@pytest.mark.parametrize("fmt", ["tflite-int8", "onnx-int8"])
def test_segmenter_and_detector_quantized_evaluate(edge, name, fmt):
    """The detectors' int8 files keep box decoding and NMS float (the whole-graph int8 YOLO file aborted LiteRT
    inside its padded-NMS loop); every file is scored with the app's own metric through its own runtime."""
    family = edge(name)
    result = family.export(f"saved_model,{fmt}", "--max-quantization-drop", "100")  # tiny 1-epoch models: wiring
    report = result["metadata"]["quantization"]
    assert report["metric"] == METRICS[name] and report["max_drop"] == 100.0, report
    path = _check_published(result, fmt)
    metrics = json_out(toolkit(family.family.task, "evaluate", path, "--data", family.family.eval_data, "--json"))
    assert METRICS[name] in metrics, metrics
    rows = json_out(toolkit(family.family.task, "predict", path, *family.family.inputs, "--json",
                            cwd=os.path.join(family.root)))
    assert len(rows) == len(family.family.inputs), rows


@slow
@pytest.mark.parametrize("name", ["image-segmenter", "object-detector"])
def test_guard_defaults_and_int8_io_for_segmenter_and_detector(edge, name):
    """The default guard is 2 points of mIoU / mAP@.5 (no flag), and --int8-io works with NMS inside."""
    family = edge(name)
    result = family.export("saved_model,tflite-int8", "--int8-io", "--max-quantization-drop", "100")
    path = _check_published(result, "tflite-int8")
    with open(path + ".json") as f:
        assert json.load(f)["tensors"]["inputs"][0]["dtype"] == "int8"
    default = family.export("saved_model,tflite-dynamic")
    report = default["metadata"]["quantization"]
    assert report["max_drop"] == 2.0 and report["metric"] == METRICS[name], report
    entry = report["formats"]["tflite-dynamic"]
    assert entry["published"] == (entry["drop"] <= 2.0), entry


@slow
@pytest.mark.parametrize("task,model", [("vae", None), ("text-classifier", "tfidf-mlp")])
def test_quantized_formats_refused_up_front(task, model, tmp_path):
    from toolkit.export.formats import unsupported_reason

    kind = f"{task}/{model}" if model else task
    reason = unsupported_reason(kind, "cpu", "tflite-int8")
    done = toolkit(task, "train", "--data", str(tmp_path / "absent"), "--export", str(tmp_path / "out"),
                   "--formats", "tflite-int8", *(["--model", model] if model else []), expect=2)
    assert reason and reason in done.stderr and "Traceback" not in done.stderr, done.stderr
