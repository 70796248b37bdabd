"""YOLO: the notes' cell encoding, encode -> decode round trip, loss values, serialisation."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from toolkit.models.detection import YoloEncoder, YoloLoss, build_yolo, cell_anchors, kmeans_anchors, yolo_detect

ANCHORS = np.array([[12, 12], [20, 36]], np.float32)  # pixels
BOXES = np.array([[4, 4, 20, 12], [30, 10, 50, 46], [40, 50, 56, 62]], np.float32)
CLASSES = np.array([2, 0, 1])


def test_cell_encoding_matches_the_notes():
    enc = YoloEncoder((64, 64), (8, 8), ANCHORS, 3)  # 8 px cells
    target = enc.encode(BOXES, CLASSES).numpy()
    assert target.shape == (8, 8, 2, 5 + 3)
    # box 0: centre (12, 8) -> cell row 1, col 1; bx = 12/8 - 1 = 0.5, by = 8/8 - 1 = 0; bw = 16/8 = 2 (> 1), bh = 1
    np.testing.assert_allclose(target[1, 1, 0], [1, 0.5, 0.0, 2.0, 1.0, 0, 0, 1])
    # box 1: centre (40, 28) -> row 3, col 5; tall box -> anchor 1; bw = 20/8, bh = 36/8
    np.testing.assert_allclose(target[3, 5, 1], [1, 0.0, 0.5, 2.5, 4.5, 1, 0, 0])
    assert target[..., 0].sum() == 3


def test_encode_decode_round_trip():
    enc = YoloEncoder((64, 64), (8, 8), ANCHORS, 3)
    boxes, classes = enc.decode(enc.encode(BOXES, CLASSES).numpy())
    order = np.argsort(boxes[:, 0])
    np.testing.assert_allclose(boxes[order], BOXES[np.argsort(BOXES[:, 0])], atol=1e-4)
    assert classes[order].tolist() == CLASSES[np.argsort(BOXES[:, 0])].tolist()


def _perfect_raw(target, anchors_cells, logit=12.0):
    obj = target[..., :1]
    xy = np.clip(target[..., 1:3], 1e-4, 1 - 1e-4)
    t_xy = np.log(xy / (1 - xy))
    t_wh = np.log(np.maximum(target[..., 3:5], 1e-6) / anchors_cells)
    conf = np.where(obj > 0, logit, -logit)
    cls = np.where(target[..., 5:] > 0, logit, -logit)
    return np.concatenate([conf, t_xy, t_wh, cls], -1).astype("float32")


def test_decode_and_nms_return_the_boxes():
    enc = YoloEncoder((64, 64), (8, 8), ANCHORS, 3)
    target = enc.encode(BOXES, CLASSES).numpy()
    raw = _perfect_raw(target, cell_anchors(ANCHORS, (64, 64), (8, 8)))[None]
    out = yolo_detect(raw, ANCHORS, (64, 64))
    n = int(out["num_detections"][0])
    assert n == 3
    got = out["boxes"][0, :n].numpy()
    order = np.argsort(got[:, 0])
    np.testing.assert_allclose(got[order], BOXES[np.argsort(BOXES[:, 0])], atol=1e-2)


def test_loss_hand_computed_classic():
    enc = YoloEncoder((64, 64), (8, 8), ANCHORS, 3)
    target = enc.encode(BOXES[:1], CLASSES[:1]).numpy()
    anchors = cell_anchors(ANCHORS, (64, 64), (8, 8))
    raw = _perfect_raw(target, anchors, logit=30.0)
    loss = YoloLoss(anchors, classic=True)
    assert float(loss(target[None], raw[None])) < 1e-6
    raw[1, 1, 0, 0] = 0.0  # pc = 0.5 on the responsible box: (1 - 0.5)^2
    assert np.isclose(float(loss(target[None], raw[None])), 0.25, atol=1e-5)
    raw[1, 1, 0, 0] = 30.0
    raw[2, 2, 1, 0] = 0.0  # pc = 0.5 where there is no object: lambda_noobj * 0.5^2
    assert np.isclose(float(loss(target[None], raw[None])), 0.5 * 0.25, atol=1e-5)
    raw[2, 2, 1, 0] = -30.0
    raw[1, 1, 0, 3] += np.log(4.0)  # w^ = 4 w: lambda_coord * (sqrt(8) - sqrt(2))^2 = 5 * 2
    assert np.isclose(float(loss(target[None], raw[None])), 10.0, atol=1e-4)


def test_default_loss_is_lower_for_the_right_answer():
    enc = YoloEncoder((64, 64), (8, 8), ANCHORS, 3)
    target = enc.encode(BOXES, CLASSES).numpy()[None]
    anchors = cell_anchors(ANCHORS, (64, 64), (8, 8))
    loss = YoloLoss(anchors)
    good = float(loss(target, _perfect_raw(target[0], anchors)[None]))
    assert good < 0.01 < float(loss(target, np.zeros_like(target)))


def test_model_and_loss_serialise(tmp_path):
    model = build_yolo((64, 64, 3), 3, ANCHORS, width=4)
    assert tuple(model.output.shape) == (None, 8, 8, 2, 8)
    loss = YoloLoss(cell_anchors(ANCHORS, (64, 64), (8, 8)), lambda_coord=4.0)
    model.compile(optimizer="adam", loss=loss)
    path = str(tmp_path / "yolo.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy(), atol=1e-5)
    assert again.loss.get_config()["lambda_coord"] == 4.0


def test_kmeans_anchors_find_the_clusters():
    rng = np.random.default_rng(0)
    wh = np.concatenate([rng.normal([10, 10], 0.5, (50, 2)), rng.normal([20, 40], 0.5, (50, 2))])
    np.testing.assert_allclose(kmeans_anchors(wh, 2), [[10, 10], [20, 40]], atol=0.5)


def test_bad_method_is_an_error():
    with pytest.raises(ValueError, match="method must be one of"):
        yolo_detect(tf.zeros([1, 2, 2, 1, 6]), [[8, 8]], (16, 16), method="soft")


def test_anchor_match_adds_responsible_boxes():
    anchors = np.array([[12, 12], [20, 36], [16, 20]], np.float32)
    enc = YoloEncoder((64, 64), (8, 8), anchors, 3, match_iou=0.4)
    target = enc.encode(BOXES[:2], CLASSES[:2]).numpy()
    # box 0 (16x8): shape IoU 0.55 with 12x12 (best), 0.4 with 16x20 -> both; box 1 (20x36): 20x36 and 16x20
    assert np.argwhere(target[..., 0] > 0).tolist() == [[1, 1, 0], [1, 1, 2], [3, 5, 1], [3, 5, 2]]
    np.testing.assert_allclose(target[1, 1, 2], target[1, 1, 0])  # same cell encoding, another anchor
