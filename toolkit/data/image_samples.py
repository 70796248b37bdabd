"""Offline image datasets (see shared/OFFLINE.md): real images that reach machines with no internet.

Import them through `toolkit.data.samples`, which also holds the scenes generated from them.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

FASHION_MNIST_CLASSES = [
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot",
]
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(split: str = "train", directory: str | None = None):
    """Fashion-MNIST as `(x uint8 [N, 28, 28, 1], y int64 [N], class_names)`.

    Reads the original .gz files from `directory` (default: Debian's `dataset-fashion-mnist` location,
    `/usr/share/datasets/fashion-mnist`); falls back to `keras.datasets.fashion_mnist` (downloads).

    Args:
        split: `"train"` (60,000 images) or `"test"` (10,000 images).
        directory: folder holding the four original .gz files.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test'. Received: split={split!r}")
    directory = directory or os.environ.get("FASHION_MNIST_DIR", DEBIAN_FASHION_MNIST)
    images_file, labels_file = (os.path.join(directory, f) for f in _FILES[split])
    if os.path.exists(images_file) and os.path.exists(labels_file):
        x, y = _read_idx(images_file), _read_idx(labels_file)
    else:  # the online path, for users with internet
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
        x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    return x[..., None], y.astype("int64"), list(FASHION_MNIST_CLASSES)


def digits():
    """scikit-learn's 1,797 8x8 handwritten digits as `(x uint8 [N, 8, 8, 1] in [0, 255], y, class_names)`."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.round(bunch.images * (255.0 / 16.0)).astype("uint8")[..., None]
    return x, bunch.target.astype("int64"), [str(i) for i in range(10)]
