import math

import keras
import numpy as np
import pytest

from toolkit.training.segmentation_losses import CEDiceLoss, DiceLoss, FocalLoss, get_segmentation_loss

Y = np.array([[[0, 1], [1, 1]]])                       # [1, 2, 2]
P1 = np.array([[[0.2, 0.6], [0.9, 0.5]]])              # probability of class 1
P = np.stack([1 - P1, P1], axis=-1).astype("float32")  # [1, 2, 2, 2]
# Dice by hand: class 1: 2 (0.6 + 0.9 + 0.5) / (2.2 + 3) = 4 / 5.2; class 0: 2 * 0.8 / (1.8 + 1) = 1.6 / 2.8
DICE = (4 / 5.2 + 1.6 / 2.8) / 2
TRUE_PROBS = [0.8, 0.6, 0.9, 0.5]


def test_soft_dice_loss_by_hand():
    assert float(DiceLoss(smooth=0.0)(Y, P)) == pytest.approx(1 - DICE, abs=1e-6)
    assert float(DiceLoss(smooth=0.0, ignore_background=True)(Y, P)) == pytest.approx(1 - 4 / 5.2, abs=1e-6)
    smooth = ((4 + 1) / (5.2 + 1) + (1.6 + 1) / (2.8 + 1)) / 2
    assert float(DiceLoss(smooth=1.0)(Y, P)) == pytest.approx(1 - smooth, abs=1e-6)


def test_one_hot_and_sparse_labels_agree():
    one_hot = np.eye(2)[Y].astype("float32")
    for loss in (DiceLoss(), FocalLoss(), CEDiceLoss()):
        assert float(loss(one_hot, P)) == pytest.approx(float(loss(Y, P)), abs=1e-6)
        assert float(loss(Y[..., None], P)) == pytest.approx(float(loss(Y, P)), abs=1e-6)


def test_focal_loss_by_hand():
    expected = -sum((1 - p) ** 2 * math.log(p) for p in TRUE_PROBS) / 4
    assert float(FocalLoss(gamma=2.0)(Y, P)) == pytest.approx(expected, abs=1e-6)
    ce = -sum(math.log(p) for p in TRUE_PROBS) / 4
    assert float(FocalLoss(gamma=0.0)(Y, P)) == pytest.approx(ce, abs=1e-6)  # gamma 0 = cross-entropy
    weighted = -(0.25 * 0.2**2 * math.log(0.8) + 0.75 * sum((1 - p) ** 2 * math.log(p) for p in TRUE_PROBS[1:])) / 4
    assert float(FocalLoss(alpha=[0.25, 0.75])(Y, P)) == pytest.approx(weighted, abs=1e-6)


def test_ce_plus_dice_by_hand():
    ce = -sum(math.log(p) for p in TRUE_PROBS) / 4
    assert float(CEDiceLoss(smooth=0.0)(Y, P)) == pytest.approx(ce + 1 - DICE, abs=1e-6)
    assert float(CEDiceLoss(0.5, 2.0, smooth=0.0)(Y, P)) == pytest.approx(0.5 * ce + 2 * (1 - DICE), abs=1e-6)


def test_losses_serialize_and_the_factory_rejects_unknown_names():
    for loss in (DiceLoss(smooth=2.0, ignore_background=True), FocalLoss(gamma=1.5, alpha=[1, 2]), CEDiceLoss(0.3)):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
    assert isinstance(get_segmentation_loss("ce"), keras.losses.SparseCategoricalCrossentropy)
    with pytest.raises(ValueError, match="ce\\+dice"):
        get_segmentation_loss("lovasz")


def test_dice_matches_keras_dice_without_smoothing_and_differs_on_absent_classes():
    one_hot = np.eye(2, dtype="float32")[Y]
    per_class = keras.losses.Dice(axis=(1, 2), reduction=None)(one_hot, P)  # [B, K]: 1 - Dice_k
    assert float(DiceLoss(smooth=0.0)(Y, P)) == pytest.approx(float(np.mean(per_class)), abs=1e-6)
    # an image holding only background, predicted perfectly: keras' Dice charges the absent class 1 in full;
    # our smoothing scores it as matched (and smooth=0 stays finite: 0 / epsilon, like keras)
    y = np.zeros((1, 2, 2), int)
    p = np.eye(2, dtype="float32")[y]
    keras_loss = float(np.mean(keras.losses.Dice(axis=(1, 2), reduction=None)(p, p)))
    assert keras_loss == pytest.approx(0.5, abs=1e-6)
    assert float(DiceLoss(smooth=1.0)(y, p)) == pytest.approx(0.0, abs=1e-6)
    assert float(DiceLoss(smooth=0.0)(y, p)) == pytest.approx(keras_loss, abs=1e-6)
