"""COCO / VOC / YOLO readers and writers: round trips, the tf.data form, and errors naming file and line."""

import json
import os

import numpy as np
import pytest

from toolkit.data.annotations import (
    DetectionData,
    DetectionRecord,
    detection_dataset,
    load_detections,
    write_detections,
)
from toolkit.data.images import DataError


@pytest.fixture
def tiny():
    rng = np.random.default_rng(0)
    records = [
        DetectionRecord(None, 40, 32, np.array([[1, 2, 11, 12], [20, 5, 39, 31]], np.float32), np.array([0, 2], np.int32),
                        pixels=rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)),
        DetectionRecord(None, 40, 32, np.array([[0, 0, 40, 32]], np.float32), np.array([1], np.int32),
                        pixels=rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)),
        DetectionRecord(None, 40, 32, np.zeros((0, 4), np.float32), np.zeros((0,), np.int32),
                        pixels=rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)),
    ]
    return DetectionData(records, ["cat", "dog", "zebra"])


@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo"])
def test_round_trip(tiny, tmp_path, fmt):
    path = write_detections(tiny, str(tmp_path / fmt), fmt)
    back = load_detections(path, fmt)
    assert back.class_names == tiny.class_names
    assert len(back) == 3
    for want, got in zip(tiny.records, back.records):
        assert (got.width, got.height) == (40, 32)
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-4)
        np.testing.assert_array_equal(got.classes, want.classes)
    batch = next(iter(detection_dataset(back).ragged_batch(3)))
    np.testing.assert_array_equal(batch["images"].numpy().astype(np.uint8), np.stack([r.pixels for r in tiny.records]))
    assert batch["boxes"].shape.as_list() == [3, None, 4]
    assert batch["classes"].row_lengths().numpy().tolist() == [2, 1, 0]
    # a second round trip from files (not pixels) is stable too
    again = load_detections(write_detections(back, str(tmp_path / (fmt + "2")), fmt), fmt)
    np.testing.assert_allclose(again.records[0].boxes, tiny.records[0].boxes, atol=1e-4)


def test_dataset_resize_scales_boxes(tiny):
    example = next(iter(detection_dataset(tiny, image_size=(64, 80))))
    assert example["images"].shape == (64, 80, 3)
    np.testing.assert_allclose(example["boxes"].numpy(), tiny.records[0].boxes * 2)


def _coco(tmp_path, tiny):
    path = write_detections(tiny, str(tmp_path), "coco")
    with open(path) as f:
        return path, json.load(f)


def _line_after(path, start, needle):
    with open(path) as f:
        lines = f.read().splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    return next(i for i, line in enumerate(lines[first:], first + 1) if needle in line)


def test_coco_box_outside_image_names_file_and_line(tiny, tmp_path):
    path, doc = _coco(tmp_path, tiny)
    doc["annotations"][1]["bbox"] = [30.0, 5.0, 19.0, 27.0]  # x_max 49 > width 40
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    line = _line_after(path, '"annotations"', '"id": 2,')  # where annotations[1] starts (its "id" is its first key)
    with pytest.raises(DataError, match=rf"annotations.json:{line - 1} .*outside the 40x32 image"):
        load_detections(path)


def test_coco_unknown_category_and_missing_image(tiny, tmp_path):
    path, doc = _coco(tmp_path, tiny)
    doc["annotations"][0]["category_id"] = 99
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    with pytest.raises(DataError, match=r"annotations.json:\d+ .*unknown category_id 99"):
        load_detections(path)
    path, doc = _coco(tmp_path, tiny)
    os.remove(tmp_path / "images" / doc["images"][1]["file_name"])
    with pytest.raises(DataError, match=r"000001.png.*not found"):
        load_detections(path)


def test_coco_invalid_json_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n "images": [],\n "annotations": [,]\n}')
    with pytest.raises(DataError, match=r"bad.json:3: invalid JSON"):
        load_detections(str(path))


def test_voc_errors(tiny, tmp_path):
    root = write_detections(tiny, str(tmp_path), "voc")
    xml = tmp_path / "Annotations" / "000000.xml"
    text = xml.read_text()
    xml.write_text(text.replace("<name>zebra</name>", "<name>unicorn</name>"))
    second_object = [i for i, line in enumerate(text.splitlines(), 1) if "<object>" in line][1]
    with pytest.raises(DataError, match=rf"000000.xml:{second_object}: unknown class 'unicorn'"):
        load_detections(root, "voc")
    xml.write_text(text.replace("<xmax>39</xmax>", "<xmax>45</xmax>"))
    with pytest.raises(DataError, match=rf"000000.xml:{second_object}: box .* outside"):
        load_detections(root, "voc")
    xml.write_text(text.replace("</annotation>", ""))
    with pytest.raises(DataError, match=r"000000.xml:\d+: malformed XML"):
        load_detections(root, "voc")


def test_yolo_errors(tiny, tmp_path):
    root = write_detections(tiny, str(tmp_path), "yolo")
    label = tmp_path / "labels" / "000000.txt"
    good = label.read_text().splitlines()
    label.write_text(good[0] + "\n0 0.5 0.5\n")
    with pytest.raises(DataError, match=r"000000.txt:2: expected 'class cx cy w h'"):
        load_detections(root, "yolo")
    label.write_text(good[0] + "\n7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=r"000000.txt:2: unknown class id 7"):
        load_detections(root, "yolo")
    label.write_text("1 0.9 0.5 0.4 0.2\n")
    with pytest.raises(DataError, match=r"000000.txt:1: box .* outside the image"):
        load_detections(root, "yolo")
    label.write_text(good[0] + "\n")
    (tmp_path / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=r"orphan.txt:1: no image"):
        load_detections(root, "yolo")


def test_unknown_format_is_clear(tmp_path):
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(DataError, match="cannot tell the annotation format"):
        load_detections(str(tmp_path))
