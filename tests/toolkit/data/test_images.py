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
