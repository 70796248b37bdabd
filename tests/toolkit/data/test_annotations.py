"""COCO / VOC / YOLO readers and writers: round trips, the tf.data form, and errors naming file and line."""

import json
import logging
import os
import re

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
    with pytest.raises(DataError, match=r"000000.txt:1: box .* outside the 40x32 image \(by 4 px"):
        load_detections(root, "yolo")
    label.write_text(good[0] + "\n")
    (tmp_path / "labels" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=r"orphan.txt:1: no image"):
        load_detections(root, "yolo")


def test_unknown_format_is_clear(tmp_path):
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(DataError, match="cannot tell the annotation format"):
        load_detections(str(tmp_path))


def test_coco_reports_every_bad_annotation_at_once(tiny, tmp_path):
    path, doc = _coco(tmp_path, tiny)
    doc["annotations"][0]["category_id"] = 99
    doc["annotations"][1]["bbox"] = [30.0, 5.0, 19.0, 27.0]  # x_max 49: far outside the 40-wide image
    doc["annotations"][2]["image_id"] = 42
    doc["annotations"].append({"id": 9, "image_id": 1, "category_id": 1, "bbox": [5, 5, -3, 4]})
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    with pytest.raises(DataError) as error:
        load_detections(path)
    message = str(error.value)
    assert message.startswith(f"4 problems in {path}:\n")
    lines = message.splitlines()[1:]
    assert len(lines) == 4
    assert re.search(r"annotations.json:\d+ \(annotations\[0\], id 1\): unknown category_id 99", lines[0])
    assert re.search(r"\(annotations\[1\], id 2\): box .* outside the 40x32 image \(by 9 px", lines[1])
    assert re.search(r"\(annotations\[2\], id 3\): unknown image_id 42", lines[2])
    assert re.search(r"\(annotations\[3\], id 9\): empty or inverted box", lines[3])
    assert error.value.problems == [line.strip() for line in lines]


def test_problems_across_files_are_listed_up_to_a_limit(tiny, tmp_path):
    root = write_detections(tiny, str(tmp_path / "yolo"), "yolo")
    (tmp_path / "yolo" / "labels" / "000000.txt").write_text("".join("7 0.5 0.5 0.1 0.1\n" for _ in range(24)))
    (tmp_path / "yolo" / "labels" / "000001.txt").write_text("1 0.5 0.5\n")
    with pytest.raises(DataError) as error:
        load_detections(root, "yolo")
    lines = str(error.value).splitlines()
    assert lines[0] == f"25 problems in {root}:"
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "  ... and 5 more"
    assert lines[1].endswith("000000.txt:1: unknown class id 7 (classes.txt lists 3)")
    assert len(error.value.problems) == 25 and "000001.txt:1: expected 'class cx cy w h'" in error.value.problems[-1]
    # VOC: one problem in each of two files, both reported
    root = write_detections(tiny, str(tmp_path / "voc"), "voc")
    for stem, old, new in (("000000", "<name>zebra</name>", "<name>unicorn</name>"),
                           ("000001", "<xmin>1</xmin>", "<xmin>one</xmin>")):
        xml = tmp_path / "voc" / "Annotations" / f"{stem}.xml"
        xml.write_text(xml.read_text().replace(old, new))
    with pytest.raises(DataError, match=r"(?s)2 problems in .*000000.xml:\d+: unknown class 'unicorn'"
                                        r".*000001.xml:\d+: <xmin> must be a number. Received: 'one'"):
        load_detections(root, "voc")


@pytest.mark.parametrize("fmt", ["coco", "voc", "yolo"])
def test_box_one_pixel_past_the_edge_is_clipped_with_a_warning_or_refused_when_strict(tiny, tmp_path, fmt, caplog):
    past = DetectionData([DetectionRecord(None, 40, 32, np.array([[20, 5, 41, 31], [1, 2, 11, 12]], np.float32),
                                          np.array([0, 1], np.int32), pixels=tiny.records[0].pixels)],
                         tiny.class_names)
    path = write_detections(past, str(tmp_path), fmt)
    with caplog.at_level(logging.WARNING, logger="toolkit.data.detections"):
        data = load_detections(path, fmt)
    np.testing.assert_allclose(data.records[0].boxes, [[20, 5, 40, 31], [1, 2, 11, 12]], atol=1e-4)
    warnings = [r.getMessage() for r in caplog.records if r.name == "toolkit.data.detections"]
    assert len(warnings) == 1
    assert f"{path}: clipped 1 box(es) extending past the image border" in warnings[0]
    assert {"coco": "annotations.json:", "voc": "000000.xml:", "yolo": "000000.txt:1"}[fmt] in warnings[0]
    with pytest.raises(DataError, match=r"box .* lies outside the 40x32 image \(by 1 px; strict=True refuses"):
        load_detections(path, fmt, strict=True)


def test_box_clearly_outside_stays_an_error(tiny, tmp_path):
    past = DetectionData([DetectionRecord(None, 40, 32, np.array([[40, 5, 41, 31], [1, 2, 11, 45]], np.float32),
                                          np.array([0, 1], np.int32), pixels=tiny.records[0].pixels)],
                         tiny.class_names)
    path = write_detections(past, str(tmp_path), "coco")
    with pytest.raises(DataError) as error:
        load_detections(path)
    assert "2 problems" in str(error.value)
    assert "(nothing of it is inside)" in error.value.problems[0]  # 1 px past, but entirely outside
    clipped_rule = "by 13 px; only boxes past the edge by at most max(2 px, 2% of the side) are clipped"
    assert clipped_rule in error.value.problems[1]


def test_non_utf8_annotation_file_names_line_and_byte(tiny, tmp_path):
    root = write_detections(tiny, str(tmp_path), "yolo")
    (tmp_path / "classes.txt").write_bytes(b"cat\ndog\nz\xe8bre\n")
    with pytest.raises(DataError, match=r"classes.txt is not valid utf-8 \(byte 0xe8 at line 3\); save it as UTF-8"):
        load_detections(root, "yolo")
