import keras
import numpy as np
import pytest

from toolkit.metrics.segmentation import (
    MeanDice,
    confusion_matrix,
    dice_per_class,
    format_segmentation_report,
    iou_per_class,
    pixel_accuracy,
    segmentation_report,
)

# 3x4 masks, classes 0 (background), 1, 2 (class 2 is never predicted)
TRUE = np.array([[0, 0, 1, 1],
                 [0, 1, 1, 1],
                 [0, 0, 2, 2]])
PRED = np.array([[0, 1, 1, 1],
                 [0, 0, 1, 1],
                 [0, 0, 1, 0]])
# by hand: class 0: TP 4 (0,0)(1,0)(2,0)(2,1), FP 2 (1,1)(2,3), FN 1 (0,1)
#          class 1: TP 4 (0,2)(0,3)(1,2)(1,3), FP 2 (0,1)(2,2), FN 1 (1,1)
#          class 2: TP 0, FP 0, FN 2


def test_confusion_matrix_by_hand():
    assert confusion_matrix(TRUE, PRED, 3).tolist() == [[4, 1, 0], [1, 4, 0], [1, 1, 0]]


def test_iou_dice_and_pixel_accuracy_by_hand():
    matrix = confusion_matrix(TRUE, PRED, 3)
    np.testing.assert_allclose(iou_per_class(matrix), [4 / 7, 4 / 7, 0.0])
    np.testing.assert_allclose(dice_per_class(matrix), [8 / 11, 8 / 11, 0.0])
    assert pixel_accuracy(matrix) == pytest.approx(8 / 12)
    report = segmentation_report(TRUE, PRED, ["background", "a", "b"])
    assert report["mean_iou"] == pytest.approx((4 / 7 + 4 / 7 + 0) / 3)
    assert report["mean_dice"] == pytest.approx((8 / 11 + 8 / 11) / 3)
    assert report["per_class"]["b"] == {"iou": 0.0, "dice": 0.0, "support": 2}
    assert "mean" in format_segmentation_report(report)


def test_probabilities_are_argmaxed_and_absent_classes_leave_the_mean():
    probs = np.eye(4)[PRED]  # one-hot probabilities over 4 classes; class 3 absent everywhere
    report = segmentation_report(TRUE, probs, ["bg", "a", "b", "c"])
    assert report["per_class"]["c"]["iou"] is None
    assert report["mean_iou"] == pytest.approx((4 / 7 + 4 / 7 + 0) / 3)


def test_perfect_and_disjoint_masks():
    mask = np.array([[0, 1], [1, 0]])
    assert segmentation_report(mask, mask, ["bg", "fg"])["mean_iou"] == 1.0
    assert segmentation_report(mask, 1 - mask, ["bg", "fg"])["mean_iou"] == 0.0


def test_keras_mean_iou_and_mean_dice_agree_with_the_report():
    probs = np.eye(3)[PRED][None].astype("float32")
    miou = keras.metrics.MeanIoU(num_classes=3, sparse_y_pred=False)
    miou.update_state(TRUE[None], probs)
    dice = MeanDice(num_classes=3, sparse_y_pred=False)
    dice.update_state(TRUE[None], probs)
    report = segmentation_report(TRUE, PRED, ["bg", "a", "b"])
    assert float(miou.result()) == pytest.approx(report["mean_iou"], abs=1e-6)
    assert float(dice.result()) == pytest.approx(report["mean_dice"], abs=1e-6)
    restored = MeanDice.from_config(dice.get_config())
    assert restored.num_classes == 3


def test_out_of_range_ids_are_errors():
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)
