"""Box-aware augmentation keeps boxes on the objects' pixels."""

import numpy as np
import pytest
import tensorflow as tf

from toolkit.data.box_augment import augment_example, flip_horizontal, scale_crop


def _scene():
    image = np.zeros((40, 48, 3), np.float32)
    boxes = np.array([[4, 6, 14, 20], [30, 22, 44, 36]], np.float32)
    for x0, y0, x1, y1 in boxes.astype(int):
        image[y0:y1, x0:x1] = 255.0
    return image, boxes, np.array([3, 7], np.int32)


def _pixel_box(image, box):
    """Tight box of the bright pixels inside `box` (grown by 1 px)."""
    x0, y0, x1, y1 = np.round(box).astype(int)
    region = image[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1, 0] > 127
    ys, xs = np.nonzero(region)
    return np.array([xs.min() + max(0, x0 - 1), ys.min() + max(0, y0 - 1), xs.max() + 1 + max(0, x0 - 1),
                     ys.max() + 1 + max(0, y0 - 1)], np.float32)


def test_flip_maps_x_to_w_minus_x():
    image, boxes, _ = _scene()
    flipped, new = flip_horizontal(image, boxes)
    np.testing.assert_allclose(new.numpy(), [[34, 6, 44, 20], [4, 22, 18, 36]])
    for box in new.numpy():
        np.testing.assert_allclose(_pixel_box(flipped.numpy(), box), box)


@pytest.mark.parametrize("scale,offset", [(2.0, (0.0, 0.0)), (0.5, (1.0, 1.0)), (1.5, (0.3, 0.7))])
def test_scale_crop_keeps_boxes_on_pixels(scale, offset):
    image, boxes, classes = _scene()
    out, new, kept = scale_crop(image, boxes, classes, scale, offset)
    assert out.shape == image.shape
    for box in new.numpy():
        np.testing.assert_allclose(_pixel_box(out.numpy(), box), box, atol=1.0)
        assert 0 <= box[0] < box[2] <= 48 and 0 <= box[1] < box[3] <= 40
    assert len(kept.numpy()) == len(new.numpy())


def test_scale_crop_clips_and_drops():
    image, boxes, classes = _scene()
    # 2x zoom on the top-left: box 1 -> [8, 12, 28, 40] fully inside, box 2 -> [60, 44, ...] outside: dropped
    _, new, kept = scale_crop(image, boxes, classes, 2.0, (0.0, 0.0))
    np.testing.assert_allclose(new.numpy(), [[8, 12, 28, 40]])
    assert kept.numpy().tolist() == [3]
    # a box cut to less than half its area is dropped; more than half is kept (clipped)
    half = np.array([[40, 0, 48, 10]], np.float32)  # 2x zoom with the window at the left: x 80..96 -> gone
    _, gone, _ = scale_crop(image, half, np.array([1]), 2.0, (0.0, 0.0))
    assert gone.shape[0] == 0
    wide = np.array([[16, 0, 26, 10]], np.float32)  # -> x 32..52 clipped to 32..48: 80% remains
    _, clipped, _ = scale_crop(image, wide, np.array([1]), 2.0, (0.0, 0.0))
    np.testing.assert_allclose(clipped.numpy(), [[32, 0, 48, 20]])


def test_random_augmentation_keeps_boxes_on_objects():
    image, boxes, classes = _scene()
    tf.random.set_seed(3)
    for _ in range(8):
        out = augment_example({"images": image, "boxes": boxes, "classes": classes}, color=0.0)
        assert out["images"].shape == image.shape
        assert len(out["boxes"]) == len(out["classes"])
        for box in out["boxes"].numpy():
            np.testing.assert_allclose(_pixel_box(out["images"].numpy(), box), box, atol=1.0)


def test_keras_zoom_keeps_slivers_that_scale_crop_drops():
    """The module docstring's reason for not using keras.layers.RandomZoom: it keeps a box clipped to a sliver."""
    import keras

    image, boxes, classes = _scene()
    zoom = keras.layers.RandomZoom((-0.5, -0.5), fill_mode="constant", bounding_box_format="xyxy")  # 2x, centred
    out = zoom({"images": image, "bounding_boxes": {"boxes": boxes, "labels": classes}}, training=True)
    kept = out["bounding_boxes"]["boxes"].numpy()
    # the 2x window is x 12..36, y 10..30: box 1 keeps 2x10 of its 10x14 pixels, box 2 6x8 of 14x14
    assert out["bounding_boxes"]["labels"].numpy().tolist() == [3, 7]
    scaled_area = 4 * (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area = (kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1])
    assert np.all(area > 0) and np.all(area < 0.5 * scaled_area)  # slivers keep their classes
    # the same centred 2x zoom here drops both (each keeps under half its area)
    _, new, left = scale_crop(image, boxes, classes, 2.0, (0.5, 0.5))
    assert new.shape[0] == 0 and left.shape[0] == 0
