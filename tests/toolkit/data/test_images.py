import os

import numpy as np
import pytest
import tensorflow as tf

from toolkit.data import DataError, load_image_dataset
from toolkit.data import samples
from toolkit.export import encode_png


def write_folder(root, classes=("cat", "dog"), per_class=3, size=(8, 8), channels=3):
    rng = np.random.default_rng(0)
    for name in classes:
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 255, (*size, channels)).astype("uint8")
            with open(os.path.join(root, name, f"{i}.png"), "wb") as f:
                f.write(encode_png(image))
    return root


def test_folder_source_reads_classes_and_shapes(tmp_path):
    root = write_folder(str(tmp_path / "data"))
    data = load_image_dataset(root, validation_split=0.0, batch_size=4)
    assert data.class_names == ["cat", "dog"]
    assert data.image_shape == (8, 8, 3)
    images, labels = next(iter(data.train))
    assert images.dtype == tf.float32 and images.shape[1:] == (8, 8, 3)
    assert sorted(np.concatenate([l.numpy() for _, l in data.train]).tolist()) == [0, 0, 0, 1, 1, 1]


def test_folder_resize_and_grey(tmp_path):
    root = write_folder(str(tmp_path / "data"), size=(10, 12))
    data = load_image_dataset(root, image_size=(6, 6), channels=1, validation_split=0.0)
    assert data.image_shape == (6, 6, 1)


def test_array_source_split_sizes():
    x = np.zeros((40, 4, 4), "uint8")
    y = np.arange(40) % 4
    data = load_image_dataset((x, y, ["a", "b", "c", "d"]), validation_split=0.25, batch_size=8)
    assert (data.num_train, data.num_validation) == (30, 10)
    assert data.image_shape == (4, 4, 1)
    assert data.class_names == ["a", "b", "c", "d"]


def test_tf_data_source_batched_or_not():
    x = np.ones((6, 4, 4, 1), "float32")
    y = np.array([0, 1, 0, 1, 0, 1])
    plain = tf.data.Dataset.from_tensor_slices((x, y))
    for source in (plain, plain.batch(4)):
        data = load_image_dataset(source, validation_split=0.0)
        assert data.num_train == 6 and data.class_names == ["0", "1"]


def test_tfds_source_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        data = load_image_dataset("tfds:mnist", validation_split=0.25)
    assert data.num_train + data.num_validation == 12
    assert data.image_shape == (28, 28, 1)
    assert data.class_names == [str(i) for i in range(10)]


def test_empty_folder_is_a_named_error(tmp_path):
    with pytest.raises(DataError, match="no class sub-folders"):
        load_image_dataset(str(tmp_path))


def test_one_class_folder_is_a_named_error(tmp_path):
    root = write_folder(str(tmp_path / "data"), classes=("only",))
    with pytest.raises(DataError, match="only one class.*'only'"):
        load_image_dataset(root)


def test_corrupt_image_is_skipped_and_reported_or_strict(tmp_path, caplog):
    root = write_folder(str(tmp_path / "data"))
    bad = os.path.join(root, "cat", "broken.png")
    with open(bad, "wb") as f:
        f.write(b"this is not a png")
    data = load_image_dataset(root, validation_split=0.0)
    assert data.skipped == [bad]
    assert data.num_train == 6
    assert "broken.png" in caplog.text
    with pytest.raises(DataError, match="broken.png"):
        load_image_dataset(root, strict=True)


def test_mismatched_label_count_is_a_named_error():
    with pytest.raises(DataError, match="10 images but 9 labels"):
        load_image_dataset((np.zeros((10, 4, 4)), np.arange(9) % 2))


def test_label_outside_class_list_is_a_named_error():
    with pytest.raises(DataError, match="label 2 is outside the class list"):
        load_image_dataset((np.zeros((3, 4, 4)), np.array([0, 1, 2]), ["a", "b"]))


def test_digits_sample_is_real_data():
    x, y, names = samples.digits()
    assert x.shape == (1797, 8, 8, 1) and x.max() == 255 and len(names) == 10
    assert np.bincount(y).min() > 170


def _save(path, array, fmt=None):
    from PIL import Image

    array = np.asarray(array, "uint8")
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path, fmt)
    return str(path)


def write_mixed_folder(root):
    """PNG and JPEG files of different sizes with 1, 3 and 4 channels, two classes."""
    rng = np.random.default_rng(0)
    files = {
        "cat": [("grey.png", (9, 7, 1)), ("rgb.jpg", (12, 10, 3)), ("rgba.png", (6, 6, 4))],
        "dog": [("grey.jpg", (10, 14, 1)), ("rgb.png", (8, 8, 3)), ("rgba.png", (16, 5, 4))],
    }
    for name, items in files.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for filename, shape in items:
            _save(os.path.join(root, name, filename), rng.integers(0, 255, shape))
    return str(root)


@pytest.mark.parametrize("channels, expected", [(None, 3), (1, 1), (3, 3), (4, 4)])
def test_mixed_formats_sizes_and_channels_with_image_size(tmp_path, channels, expected):
    root = write_mixed_folder(tmp_path / "mixed")
    data = load_image_dataset(root, image_size=(6, 5), channels=channels, validation_split=0.0, shuffle=False)
    assert data.image_shape == (6, 5, expected) and data.class_names == ["cat", "dog"] and data.skipped == []
    batches = list(data.train)
    images = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert images.shape == (6, 6, 5, expected) and images.dtype == np.float32
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]  # class by class, files sorted: the source's order
    assert 0 <= images.min() and images.max() <= 255
    # the grey PNG, resized bilinearly as one array would be
    grey = tf.io.decode_png(tf.io.read_file(os.path.join(root, "cat", "grey.png"))).numpy()
    reference = tf.image.resize(grey, (6, 5)).numpy()
    if expected >= 3:
        np.testing.assert_allclose(images[0][..., :3], np.repeat(reference, 3, axis=-1), atol=1e-4)
    else:
        np.testing.assert_allclose(images[0], reference, atol=1e-4)
    if expected == 4:
        assert (images[0][..., 3] == 255).all()  # opaque alpha added to a grey file


def test_mixed_sizes_without_image_size_name_files_and_the_fix(tmp_path):
    root = write_mixed_folder(tmp_path / "mixed")
    with pytest.raises(DataError, match=r"different shapes.*\.(png|jpg) is \d+x\d+.*pass image_size=\(H, W\)"):
        load_image_dataset(root)


def test_rgb_to_grey_matches_the_array_conversion(tmp_path):
    from toolkit.data.images import convert_channels

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, (4, 8, 8, 3)).astype("uint8")
    for i, image in enumerate(rgb):
        os.makedirs(tmp_path / "d" / f"c{i % 2}", exist_ok=True)
        _save(tmp_path / "d" / f"c{i % 2}" / f"{i}.png", image)
    data = load_image_dataset(str(tmp_path / "d"), channels=1, validation_split=0.0, shuffle=False)
    images = np.concatenate([b[0].numpy() for b in data.train])
    expected = convert_channels(rgb[[0, 2, 1, 3]], 1)  # c0: 0, 2; c1: 1, 3
    np.testing.assert_array_equal(images, expected.astype("float32"))


def test_unreadable_files_are_named_in_the_warning_and_strict_raises(tmp_path, caplog):
    root = write_mixed_folder(tmp_path / "mixed")
    empty = os.path.join(root, "dog", "empty.png")
    open(empty, "wb").close()
    tiff = os.path.join(root, "cat", "tiff.png")  # a format tf.io.decode_image cannot read, named .png
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), "uint8")).save(tiff, "TIFF")
    data = load_image_dataset(root, image_size=(4, 4), validation_split=0.0)
    assert sorted(data.skipped) == sorted([empty, tiff]) and data.num_train == 6
    assert "empty.png" in caplog.text and "tiff.png" in caplog.text
    assert sum(len(b[0]) for b in data.train) == 6
    with pytest.raises(DataError, match="tiff.png"):
        load_image_dataset(root, image_size=(4, 4), strict=True)


def test_file_whose_pixels_do_not_decode_is_dropped_when_read(tmp_path):
    root = write_folder(str(tmp_path / "data"))
    path = os.path.join(root, "dog", "1.png")
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(raw[: len(raw) // 2])  # the header still reads; the pixels are cut off
    data = load_image_dataset(root, validation_split=0.0, shuffle=False)
    assert data.skipped == [] and data.num_train == 6 and data.train.cardinality() == 1
    labels = np.concatenate([b[1].numpy() for b in data.train])
    assert labels.tolist() == [0, 0, 0, 1, 1, 0]  # dog/1.png dropped when read; the epoch refilled from cat/0
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(load_image_dataset(root, validation_split=0.0, strict=True).train)


def test_flat_folder_is_unlabelled_data(tmp_path):
    x, _, _ = samples.digits()
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(12):
        _save(flat / f"{i:02d}.png", x[i])
    with pytest.raises(DataError, match="no class sub-folders"):
        load_image_dataset(str(flat))  # a classifier needs labels
    data = load_image_dataset(str(flat), require_labels=False, validation_split=0.0, shuffle=False, batch_size=5)
    assert data.class_names == [] and not data.labelled and data.num_classes == 0
    assert data.image_shape == (8, 8, 1) and data.num_train == 12
    batch = next(iter(data.train))
    assert isinstance(batch, tf.Tensor) and batch.shape == (5, 8, 8, 1)  # images alone, no labels
    np.testing.assert_array_equal(np.concatenate(list(data.train.as_numpy_iterator())), x[:12])
    split = load_image_dataset(str(flat), require_labels=False, validation_split=0.25)
    assert (split.num_train, split.num_validation) == (9, 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no images"):
        load_image_dataset(str(tmp_path / "empty"), require_labels=False)


def test_array_file_and_sample_sources(tmp_path, monkeypatch):
    x, y, names = samples.digits()
    npz = str(tmp_path / "d.npz")
    np.savez(npz, x=x[:30], y=y[:30])
    data = load_image_dataset(npz, validation_split=0.0)
    assert data.num_train == 30 and data.class_names == [str(i) for i in range(10)]
    np.savez(str(tmp_path / "x_only.npz"), x=x[:10])
    np.save(str(tmp_path / "x.npy"), x[:10])
    for path in ("x_only.npz", "x.npy"):
        unlabelled = load_image_dataset(str(tmp_path / path), validation_split=0.0, require_labels=False)
        assert unlabelled.class_names == [] and unlabelled.num_train == 10
        with pytest.raises(DataError, match="no labels"):
            load_image_dataset(str(tmp_path / path))
    np.savez(str(tmp_path / "bad.npz"), images=x[:10])
    with pytest.raises(DataError, match="has no array 'x'"):
        load_image_dataset(str(tmp_path / "bad.npz"))
    with pytest.raises(DataError, match="does not exist"):
        load_image_dataset(str(tmp_path / "missing.npz"))
    with pytest.raises(DataError, match="does not exist.*fashion-mnist"):
        load_image_dataset(str(tmp_path / "missing"))
    digits = load_image_dataset("digits", image_size=(4, 4), channels=3, validation_split=0.0)
    assert digits.num_train == 1797 and digits.image_shape == (4, 4, 3) and len(digits.class_names) == 10
    calls = []

    def fake_fashion_mnist(split="train"):
        calls.append(split)
        return x[:20], y[:20] % 2, ["a", "b"]

    from toolkit.data import sources

    monkeypatch.setattr(sources, "fashion_mnist", fake_fashion_mnist)
    for source, split, expected in (("fashion-mnist", "train", "train"), ("fashion-mnist", "test", "test"),
                                    ("fashion-mnist:test", "train", "test"), ("Fashion_MNIST:train", "test", "train")):
        data = load_image_dataset(source, split=split, validation_split=0.0)
        assert data.class_names == ["a", "b"] and calls[-1] == expected


def test_folder_loading_streams_from_the_files(tmp_path, monkeypatch):
    """Nothing is decoded when the dataset is built: the pipeline reads each file when it is iterated."""
    root = write_folder(str(tmp_path / "data"), per_class=2, size=(4, 4), channels=1)
    decoded = []
    real_decode = tf.io.decode_image
    monkeypatch.setattr(tf.io, "decode_image", lambda *a, **k: decoded.append(1) or real_decode(*a, **k))
    monkeypatch.setattr(np, "stack", lambda *a, **k: pytest.fail("a folder must not be stacked into one array"))
    data = load_image_dataset(root, validation_split=0.0, shuffle=False)
    monkeypatch.undo()
    assert len(decoded) <= 1  # traced once into the tf.data graph at most, never run per file in Python
    first = os.path.join(root, "cat", "0.png")
    with open(first, "wb") as f:  # rewrite a file after loading: the pipeline sees the new pixels
        f.write(encode_png(np.full((4, 4, 1), 7, "uint8")))
    images, labels = next(iter(data.train))
    assert (images[0].numpy() == 7).all() and labels[0] == 0


def test_an_empty_class_folder_is_an_error_as_in_text_folders(tmp_path):
    from PIL import Image

    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name / "1.png")
    (tmp_path / "bird").mkdir()
    with pytest.raises(DataError, match=r"class folder\(s\) \[.*bird'\] have no images"):
        load_image_dataset(str(tmp_path))
