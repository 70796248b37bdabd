"""The object-detector app: tiny YOLO and SSD overfit 4 scenes (mAP@0.5 = 1), export with NMS, predict, CLI."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from apps import object_detector
from toolkit.data.scenes import digit_scenes
from toolkit.export import encode_png, load
from toolkit.models.detection import numpy_iou

TINY = dict(image_size="64x64", epochs=3, repeat=40, batch_size=4, validation_split=0.0, augment="none",
            learning_rate=5e-3, verbose=0, width=8, anchors=2, ssd_levels=2, score_threshold=0.5)


@pytest.fixture(scope="module")
def scenes():
    return digit_scenes(4, image_size=64, objects=(1, 2), object_size=(20, 28), classes=[0, 1, 2], seed=1)


@pytest.fixture(scope="module")
def yolo_run(scenes, tmp_path_factory):
    run = object_detector.train(scenes, test_data=scenes, model="yolo", run_dir=str(tmp_path_factory.mktemp("runs")),
                                **{**TINY, "repeat": 100})
    run.sample_images = list(scenes.images[:3])  # parity on real scenes, not noise
    return run


@pytest.fixture(scope="module")
def ssd_run(scenes, tmp_path_factory):
    run = object_detector.train(scenes, test_data=scenes, model="ssd", run_dir=str(tmp_path_factory.mktemp("runs")),
                                **TINY)
    run.sample_images = list(scenes.images[:3])
    return run


def test_tiny_yolo_overfits(yolo_run):
    assert yolo_run.metrics["map_50"] == 1.0, yolo_run.metrics
    assert set(yolo_run.metrics["per_class"]) <= {"0", "1", "2"}
    assert os.path.isfile(os.path.join(yolo_run.run_dir, "model.keras"))


def test_tiny_ssd_overfits(ssd_run):
    assert ssd_run.metrics["map_50"] == 1.0, ssd_run.metrics


def _check_detections(out, index, scenes, scale):
    n = int(out["num_detections"][index])
    boxes = out["boxes"][index][:n]
    truth = scenes.boxes[index] * scale
    assert n == len(truth)
    iou = numpy_iou(truth, boxes)
    assert (iou.max(1) > 0.5).all(), (truth, boxes)
    names = [lab.decode() if isinstance(lab, bytes) else lab for lab in out["labels"][index][:n]]
    want = [scenes.class_names[c] for c in scenes.classes[index][iou.argmax(0)]]
    assert names == want
    assert list(out["classes"][index][n:]) == [-1] * (len(out["classes"][index]) - n)


def test_export_all_formats_round_trip(yolo_run, scenes, tmp_path):
    path = yolo_run.export(str(tmp_path / "yolo"), formats=("saved_model", "tflite", "onnx"))
    assert path.endswith("1")
    predictor = load(path)
    meta = predictor.metadata
    assert meta["task"] == "object_detection" and meta["nms"]["method"] == "padded"
    assert os.path.isfile(os.path.join(path, "model.tflite")) and os.path.isfile(os.path.join(path, "model.onnx"))
    parity = meta["parity_max_abs_diff"]
    assert parity["tflite"] <= 1e-4 and parity["onnx"] <= 1e-4 and parity["saved_model"]["serving_default"] <= 1e-4
    # bytes of any size: an image twice as large gets boxes in its own pixels
    big = np.asarray(Image.fromarray(scenes.images[0]).resize((128, 128), Image.NEAREST))
    out = predictor({"images": [encode_png(big), encode_png(scenes.images[1])]})
    assert out["boxes"].shape == (2, 100, 4) and out["scores"].shape == (2, 100)
    _check_detections(out, 0, scenes, 2.0)
    _check_detections(out, 1, scenes, 1.0)


def test_export_saved_model_evaluate_and_predict(ssd_run, scenes, tmp_path):
    path = ssd_run.export(str(tmp_path / "ssd"))
    predictor = load(path)
    meta = predictor.metadata
    assert meta["nms"]["method"] == "combined" and meta["detector"] == "ssd" and meta["box_format"] == "xyxy"
    assert "detect" in predictor.signatures and meta["eval_score_threshold"] == 0.01
    metrics = object_detector.evaluate(path, scenes)
    assert metrics["map_50"] == pytest.approx(ssd_run.metrics["map_50"], abs=1e-6)
    # mAP is scored COCO-style below the serving threshold; a threshold can be asked for
    assert metrics["score_threshold"] == 0.01 == ssd_run.metrics["score_threshold"]
    strict = object_detector.evaluate(path, scenes, score_threshold=0.999)
    assert strict["score_threshold"] == 0.999 and strict["map"] <= metrics["map"]
    picky = object_detector.predict(path, [scenes.images[2]], score_threshold=0.999)[0]["detections"]
    assert all(d["score"] >= 0.999 for d in picky)
    assert load(ssd_run.export(str(tmp_path / "ssd"), score_threshold=0.8)).metadata["nms"]["score_threshold"] == 0.8
    file = tmp_path / "scene.png"
    Image.fromarray(scenes.images[2]).save(file)
    results = object_detector.predict(path, [str(file)], output_dir=str(tmp_path / "drawn"))
    dets = results[0]["detections"]
    assert len(dets) == len(scenes.boxes[2])
    assert numpy_iou(scenes.boxes[2], [d["box"] for d in dets]).max(1).min() > 0.5
    drawn = Image.open(results[0]["drawn"])
    assert drawn.size == (64, 64)
    assert np.abs(np.asarray(drawn.convert("RGB"), float) - scenes.images[2]).max() > 0  # boxes were drawn


def test_cli_help_lists_options(capsys):
    from apps.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["object-detector", "train", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--format", "--model", "{yolo,ssd}", "--score-threshold", "--iou-threshold", "--anchors", "--nms"):
        assert flag in text


def test_bad_options_are_clear(scenes):
    with pytest.raises(ValueError, match="model must be one of"):
        object_detector.train(scenes, model="rcnn")
    with pytest.raises(ValueError, match="image_size must look like HxW"):
        object_detector.train(scenes, image_size="big")


@pytest.mark.slow
def test_cli_train_on_yolo_folder_and_tpu_export(scenes, tmp_path):
    from apps.cli import main
    from toolkit.data.annotations import from_scenes, write_detections

    data = write_detections(from_scenes(scenes), str(tmp_path / "data"), "yolo")
    code = main(["object-detector", "train", "--data", data, "--format", "yolo", "--image-size", "64x64",
                 "--epochs", "1", "--repeat", "2", "--batch-size", "4", "--width", "4", "--validation-split", "0",
                 "--run-dir", str(tmp_path / "runs"), "--verbose", "0", "--export", str(tmp_path / "m"),
                 "--target", "tpu"])
    assert code == 0
    meta = json.loads(open(os.path.join(tmp_path, "m", "1", "assets.extra", "toolkit.json")).read())
    assert meta["target"] == "tpu" and meta["nms"]["method"] == "padded"
