import os

import numpy as np
import pytest
from PIL import Image

from toolkit.data.images import DataError
from toolkit.data.mask_writer import colorize, overlay, write_segmentation_folder
from toolkit.data.masks import (
    JointAugmentation,
    build_joint_augmentation,
    default_palette,
    load_segmentation_dataset,
    read_mask_file,
    to_arrays,
)
from toolkit.data.samples import digit_scenes


@pytest.fixture(scope="module")
def scenes():
    return digit_scenes(6, image_size=32, objects=(1, 2), object_size=(12, 20), classes=[0, 1], seed=4)


def test_scenes_round_trip_through_grey_and_colour_mask_folders(tmp_path, scenes):
    for colour in (False, True):
        folder = write_segmentation_folder(scenes, str(tmp_path / f"c{colour}"), colour_masks=colour)
        x, y, names, palette = to_arrays(folder)
        np.testing.assert_array_equal(x, scenes.images)
        np.testing.assert_array_equal(y, scenes.masks)
        assert names == ["background", "0", "1"]
        np.testing.assert_array_equal(palette, default_palette(3))
    data = load_segmentation_dataset(folder, validation_split=0.5, batch_size=2, image_size=(16, 16))
    images, masks = next(iter(data.train))
    assert images.shape == (2, 16, 16, 3) and masks.shape == (2, 16, 16) and data.num_validation == 3
    assert set(np.unique(masks.numpy())) <= {0, 1, 2}  # nearest-neighbour resize keeps class ids


def test_palette_png_masks_read_as_class_indices(tmp_path):
    mask = np.array([[0, 1], [2, 1]], np.uint8)
    image = Image.fromarray(mask, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    image.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask_file(str(tmp_path / "m.png"), num_classes=3), mask)


def _folder(tmp_path, image_size=(8, 8), mask=None):
    os.makedirs(tmp_path / "images", exist_ok=True)
    os.makedirs(tmp_path / "masks", exist_ok=True)
    Image.fromarray(np.zeros((*image_size, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8) if mask is None else mask).save(tmp_path / "masks" / "a.png")
    (tmp_path / "classes.txt").write_text("background 0 0 0\nthing 255 0 0\n")
    return str(tmp_path)


def test_mask_size_mismatch_names_both_files(tmp_path):
    folder = _folder(tmp_path, image_size=(10, 8))
    with pytest.raises(DataError, match=r"masks/a\.png' is 8x8 but its image .*images/a\.png' is 10x8"):
        to_arrays(folder)


def test_out_of_range_class_id_names_the_file(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[3, 5] = 7
    with pytest.raises(DataError, match=r"masks/a\.png' holds class id 7 \(first at row 3, column 5\) outside"):
        to_arrays(_folder(tmp_path, mask=mask))


def test_unknown_colour_and_missing_mask_name_the_file(tmp_path):
    mask = np.zeros((8, 8, 3), np.uint8)
    mask[1, 2] = (0, 0, 255)
    with pytest.raises(DataError, match=r"masks/a\.png' has colour \(0, 0, 255\) at row 1, column 2"):
        to_arrays(_folder(tmp_path, mask=mask))
    os.remove(tmp_path / "masks" / "a.png")
    with pytest.raises(DataError, match=r"images/a\.png' has no mask"):
        to_arrays(str(tmp_path))


def test_tfds_style_dict_datasets_are_read_and_resized():
    import tensorflow as tf

    # TFDS segmentation datasets yield {"image", "segmentation_mask" [H, W, 1]} of varying sizes
    def examples():
        for size in ((10, 12), (16, 8)):
            mask = np.zeros((*size, 1), np.uint8)
            mask[: size[0] // 2] = 1
            yield {"image": np.full((*size, 3), 9, np.uint8), "segmentation_mask": mask}

    spec = {"image": tf.TensorSpec([None, None, 3], tf.uint8),
            "segmentation_mask": tf.TensorSpec([None, None, 1], tf.uint8)}
    ds = tf.data.Dataset.from_generator(examples, output_signature=spec)
    x, y, names, _ = to_arrays(ds, image_size=(8, 8), class_names=["background", "thing"])
    assert x.shape == (2, 8, 8, 3) and y.shape == (2, 8, 8) and names == ["background", "thing"]
    np.testing.assert_array_equal(y[:, :4], 1)
    np.testing.assert_array_equal(y[:, 4:], 0)
    with pytest.raises(DataError, match="different sizes"):
        to_arrays(ds)


def test_array_errors():
    x = np.zeros((2, 8, 8, 3))
    with pytest.raises(DataError, match="masks are 6x8 but images are 8x8"):
        to_arrays((x, np.zeros((2, 6, 8), int)))
    with pytest.raises(DataError, match="mask 1 holds class id 3 outside the class list"):
        to_arrays((x, np.stack([np.zeros((8, 8), int), np.full((8, 8), 3)]), ["bg", "a"]))


def _coded_pair(rng):
    mask = np.zeros((32, 32), np.int32)
    mask[4:20, 6:14] = 1
    mask[18:30, 16:28] = 2
    codes = np.array([0.0, 100.0, 230.0])  # blends of two codes almost never land on the third
    image = np.stack([codes[mask], np.zeros_like(mask, float), np.zeros_like(mask, float)], -1).astype("float32")
    return image, mask


def _assert_pure_pixels_match(images, masks):
    """Wherever an augmented `_coded_pair` image pixel is a pure class colour, the mask holds that class.

    The image is resampled bilinearly and the mask with nearest neighbour, so only region borders differ;
    a blend can land exactly on a class value between two other regions (100 between 0 and 230), so only
    pixels whose 4 neighbours read the same class count. Returns the mask of the pixels checked.
    """
    distance = np.abs(images[..., 0][..., None] - np.array([0.0, 100.0, 230.0]))
    nearest = distance.argmin(-1)
    pure = distance.min(-1) < 0.5
    padded = np.pad(nearest, ((0, 0), (1, 1), (1, 1)), mode="edge")
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        pure &= padded[:, dy:dy + nearest.shape[1], dx:dx + nearest.shape[2]] == nearest
    np.testing.assert_array_equal(nearest[pure], masks[pure])
    return pure


def _square_pair(size=32):
    """A bright square (class 1) off-centre on a dark image: any flip or shift moves it."""
    image = np.zeros((size, size, 3), np.float32)
    mask = np.zeros((size, size), np.int32)
    image[3:13, 5:12] = 200.0
    mask[3:13, 5:12] = 1
    return image, mask


def test_flips_and_shifts_move_the_mask_with_the_image():
    image, mask = _square_pair()
    augment = JointAugmentation(flip="horizontal_and_vertical", zoom=0.0, translate=0.2, seed=5)
    images, masks = (t.numpy() for t in augment(np.repeat(image[None], 24, 0), np.repeat(mask[None], 24, 0)))
    assert images.shape == (24, 32, 32, 3) and masks.shape == (24, 32, 32) and masks.dtype == np.int32
    assert set(np.unique(masks)) <= {0, 1}
    moved = 0
    for aug_image, aug_mask in zip(images, masks):
        bright = aug_image[..., 0] > 100.0
        # the mask marks the same square the image shows (bilinear edges may differ by at most one pixel row
        # or column of the square's outline: a fractional shift blends the edge pixels)
        ys, xs = np.nonzero(aug_mask == 1)
        bys, bxs = np.nonzero(bright)
        assert len(ys) and len(bys)
        np.testing.assert_allclose([ys.mean(), xs.mean()], [bys.mean(), bxs.mean()], atol=0.5)
        assert np.mean(bright == (aug_mask == 1)) > 0.95
        moved += not np.array_equal(aug_mask, mask)
    assert moved >= 20
    # which corner the square went to tells the flips apart: all four combinations occur
    corners = {(int(np.nonzero(m)[0].mean() > 16), int(np.nonzero(m)[1].mean() > 16)) for m in masks}
    assert corners == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_joint_augmentation_keeps_masks_aligned(rng):
    image, mask = _coded_pair(rng)
    augment = JointAugmentation(flip="horizontal_and_vertical", zoom=0.3, translate=0.15, seed=1)
    changed = 0
    for _ in range(12):
        aug_image, aug_mask = (t.numpy() for t in augment(image, mask))
        assert aug_image.shape == image.shape and aug_mask.shape == mask.shape
        assert set(np.unique(aug_mask)) <= {0, 1, 2}  # nearest neighbour: no invented class ids
        pure = _assert_pure_pixels_match(aug_image[None], aug_mask[None])
        assert pure.mean() > 0.7, pure.mean()
        changed += not np.array_equal(aug_mask, mask)
    assert changed >= 10
    # a seed makes the draws reproducible
    first = JointAugmentation(flip="horizontal", zoom=0.3, translate=0.15, seed=3)(image, mask)[1]
    again = JointAugmentation(flip="horizontal", zoom=0.3, translate=0.15, seed=3)(image, mask)[1]
    np.testing.assert_array_equal(first, again)
    assert np.mean((image[..., 0] > 0) == (mask[::-1] > 0)) < 0.8


def test_brightness_changes_the_image_only_and_specs_parse():
    image, mask = _square_pair()
    images, masks = (t.numpy() for t in build_joint_augmentation("brightness", seed=2)(
        np.repeat(image[None], 8, 0), np.repeat(mask[None], 8, 0)))
    np.testing.assert_array_equal(masks, np.repeat(mask[None], 8, 0))
    assert images.min() >= 0.0 and images.max() <= 255.0
    shifts = images[:, 20, 20, 0]  # a background pixel: 0 + delta, clipped at 0
    assert shifts.max() > 0.0 and shifts.max() <= 0.1 * 255 + 1e-3
    assert build_joint_augmentation("none") is None
    aug = build_joint_augmentation("flip,vflip,zoom,translate")
    assert (aug.flip, aug.zoom, aug.translate, aug.brightness) == ("horizontal_and_vertical", 0.15, 0.1, 0.0)
    assert [type(layer).__name__ for layer in aug.pipeline.layers] == [
        "RandomFlip", "RandomFlip", "RandomZoom", "RandomTranslation"]
    with pytest.raises(ValueError, match="unknown augmentation"):
        build_joint_augmentation("flip,rotate")


def test_overlay_colours_only_the_foreground():
    image = np.full((2, 2), 200, np.uint8)
    mask = np.array([[0, 1], [2, 0]])
    out = overlay(image, mask, alpha=0.5)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[0, 0], [200, 200, 200])
    np.testing.assert_array_equal(out[0, 1], (0.5 * 200 + 0.5 * default_palette(3)[1]).astype(np.uint8))
    np.testing.assert_array_equal(colorize(mask)[1, 0], default_palette(3)[2])


def test_training_pipeline_augments_pairs_together(rng):
    image, mask = _coded_pair(rng)
    x, y = np.repeat(image[None], 8, 0), np.repeat(mask[None], 8, 0)
    data = load_segmentation_dataset((x, y, ["bg", "a", "b"]), validation_split=0.0, batch_size=8,
                                     augment=JointAugmentation(flip="horizontal", zoom=0.3, translate=0.1, seed=0))
    images, masks = (t.numpy() for t in next(iter(data.train)))
    assert len({m.tobytes() for m in masks}) > 1  # each example drew its own transform
    _assert_pure_pixels_match(images, masks)
