"""SSD: default boxes, matching, offsets, Smooth-L1 + hard-negative-mined loss, serialisation."""

import numpy as np

import keras
from toolkit.models.detection import SSDLoss, SSDMatcher, build_ssd, numpy_iou, ssd_decode, ssd_default_boxes
from toolkit.models.detection.ssd import decode_offsets, encode_offsets


def test_default_boxes_sizes():
    boxes, per = ssd_default_boxes((64, 64), [(2, 2)], scales=[0.5], aspect_ratios=(1.0, 4.0))
    assert per == 3 and boxes.shape == (12, 4)
    # cell (0, 0): centre (16, 16); ratio 1: 32x32; ratio 4: (s*2, s/2) -> 64x16; extra sqrt(0.5*0.75)*64
    np.testing.assert_allclose(boxes[:3], [[16, 16, 32, 32], [16, 16, 64, 16],
                                           [16, 16, np.sqrt(0.375) * 64, np.sqrt(0.375) * 64]], atol=1e-4)
    np.testing.assert_allclose(boxes[3, :2], [48, 16])  # next position along x


def test_matching_assigns_expected_default_boxes():
    defaults, _ = ssd_default_boxes((64, 64), [(4, 4), (2, 2)], scales=[0.25, 0.5], aspect_ratios=(1.0,))
    xyxy = np.concatenate([defaults[:, :2] - defaults[:, 2:] / 2, defaults[:, :2] + defaults[:, 2:] / 2], 1)
    gt = np.array([[0, 0, 16, 16], [34, 30, 62, 62]], np.float32)  # box 0 == default box 0 exactly
    matcher = SSDMatcher(defaults)
    matched, _ = matcher.match(gt, [0, 1])
    matched = matched.numpy()
    iou = numpy_iou(gt, xyxy)
    expected = np.where(iou.max(0) >= 0.5, iou.argmax(0), -1)  # threshold rule ...
    expected[iou.argmax(1)] = [0, 1]  # ... plus each ground truth's best default box
    np.testing.assert_array_equal(matched, expected)
    assert matched[0] == 0 and (matched == 1).sum() >= 1
    target = matcher.encode(gt, [0, 1]).numpy()
    np.testing.assert_allclose(target[0], [0, 0, 0, 0, 1])  # exact match: zero offsets, class 0 + 1
    assert set(target[:, 4][matched == -1]) == {0.0}
    assert set(target[:, 4][matched == 1]) == {2.0}


def test_offsets_round_trip():
    defaults = np.array([[16, 16, 32, 32], [40, 20, 10, 30]], np.float32)
    boxes = np.array([[3, 5, 30, 28], [33, 2, 47, 40]], np.float32)
    np.testing.assert_allclose(decode_offsets(encode_offsets(boxes, defaults), defaults).numpy(), boxes, atol=1e-4)
    # seed decode: x = x_a + dx * w_a with the 0.1 variance: dx = 1 -> centre moves by 0.1 * w_a
    np.testing.assert_allclose(decode_offsets([[1.0, 0, 0, 0]], defaults[:1]).numpy(), [[3.2, 0, 35.2, 32]], atol=1e-5)


def test_loss_hard_negative_mining_and_smooth_l1():
    # 1 positive (class 1), 5 negatives with increasing background loss: 3:1 keeps the 3 hardest negatives
    labels = np.array([1, 0, 0, 0, 0, 0], np.float32)
    offsets = np.zeros((6, 4), np.float32)
    y_true = np.concatenate([offsets, labels[:, None]], 1)[None]
    logits = np.zeros((6, 3), np.float32)
    logits[1:, 1] = [0.0, 1.0, 2.0, 3.0, 4.0]  # negatives: growing class-1 logit = harder
    loc = np.zeros((6, 4), np.float32)
    loc[0] = [0.5, 2.0, 0.0, 0.0]  # smooth L1: 0.5 * 0.25 + (2 - 0.5) = 1.625
    y_pred = np.concatenate([loc, logits], 1)[None]
    ce = -np.log(np.exp(logits[np.arange(6), labels.astype(int)]) / np.exp(logits).sum(1))
    expected = ce[0] + np.sort(ce[1:])[-3:].sum() + 1.625
    assert np.isclose(float(SSDLoss(2)(y_true, y_pred)), expected, atol=1e-5)


def test_model_loss_serialise_and_decode(tmp_path):
    model = build_ssd((64, 64, 3), 2, 4, levels=2, width=4)
    assert tuple(model.output.shape) == (None, 8 * 8 * 4 + 4 * 4 * 4, 7)
    model.compile(optimizer="adam", loss=SSDLoss(2, neg_pos_ratio=2.0))
    model.save(str(tmp_path / "ssd.keras"))
    again = keras.saving.load_model(str(tmp_path / "ssd.keras"))
    assert again.loss.neg_pos_ratio == 2.0
    defaults, _ = ssd_default_boxes((64, 64), [(8, 8), (4, 4)], aspect_ratios=(1.0, 2.0, 0.5))
    raw = np.zeros((1, len(defaults), 7), np.float32)
    boxes, scores = ssd_decode(raw, defaults)
    np.testing.assert_allclose(boxes[0, 0].numpy(), [defaults[0, 0] - defaults[0, 2] / 2, defaults[0, 1] - defaults[0, 3] / 2,
                                                     defaults[0, 0] + defaults[0, 2] / 2, defaults[0, 1] + defaults[0, 3] / 2], atol=1e-4)
    np.testing.assert_allclose(scores.numpy(), 1 / 3, atol=1e-6)
