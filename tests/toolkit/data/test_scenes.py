import numpy as np

from toolkit.data.samples import digit_scenes


def test_scenes_boxes_are_tight_around_mask_pixels():
    scenes = digit_scenes(5, image_size=64, objects=(1, 3), object_size=(16, 24), max_overlap=0.0, seed=2)
    assert scenes.images.shape == (5, 64, 64, 3)
    for boxes, classes, instances, mask in zip(scenes.boxes, scenes.classes, scenes.instance_masks, scenes.masks):
        assert 1 <= len(boxes) <= 3 and len(classes) == len(boxes)
        for box, cls, instance in zip(boxes, classes, instances):
            ys, xs = np.nonzero(instance)
            # no overlap allowed, so every object is fully visible and its box is exact
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            assert np.all(mask[instance] == cls + 1)
    assert scenes.masks.max() <= 10


def test_scenes_are_reproducible_and_class_subset_renumbers():
    a = digit_scenes(2, image_size=48, object_size=(16, 20), classes=[3, 7], seed=5)
    b = digit_scenes(2, image_size=48, object_size=(16, 20), classes=[3, 7], seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.class_names == ["3", "7"]
    assert set(np.concatenate(a.classes).tolist()) <= {0, 1}
