"""Image classification datasets: folders, arrays, tf.data and TFDS into one form.

Every source becomes an `ImageDataset`: batched `tf.data` pipelines of `(float32 pixels in [0, 255],
int32 labels)`, class names and the image shape. Pixels stay un-normalised on purpose: normalisation
lives inside the model (a Keras layer), so the exported SavedModel applies it too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from toolkit.data.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclasses.dataclass
class ImageDataset:
    """Train / validation (/ test) pipelines plus what a model needs to know about them.

    Args:
        train: tf.data.Dataset. batched `(images, labels)`; images float32 `[B, H, W, C]` in [0, 255].
        validation: tf.data.Dataset or None. same form, held out from `train`.
        class_names: list of str. label names, index = class id.
        image_shape: tuple. `(H, W, C)` of every image.
        num_train: int. number of training examples (after the split).
        num_validation: int. number of validation examples.
        skipped: list of str. files that could not be read (reported, never silently dropped).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    class_names: list
    image_shape: tuple
    num_train: int = 0
    num_validation: int = 0
    skipped: list = dataclasses.field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_image_dataset(
    source,
    *,
    image_size: tuple | None = None,
    channels: int | None = None,
    class_names: Sequence[str] | None = None,
    validation_split: float = 0.1,
    batch_size: int = 32,
    seed: int = 1337,
    strict: bool = False,
    data_dir: str | None = None,
    shuffle: bool = True,
) -> ImageDataset:
    """Loads an image classification dataset from any supported source.

    Args:
        source: a folder path (one sub-folder per class), an `(x, y)` or `(x, y, class_names)` tuple, a
            `tf.data.Dataset` of `(image, label)` pairs, or `"tfds:NAME"` (optionally `"tfds:NAME:SPLIT"`).
        image_size: `(height, width)` to resize to; `None` keeps the source's size (folders need it
            when image sizes differ).
        channels: 1 or 3 to force grey or RGB; `None` keeps the source's.
        class_names: names for integer labels (arrays, tf.data); folders use sub-folder names.
        validation_split: fraction held out for validation (0 for none).
        batch_size: batch size of the returned pipelines.
        seed: shuffling and split seed.
        strict: raise on an unreadable image instead of skipping it with a warning.
        data_dir: TFDS data directory.
        shuffle: shuffle the training pipeline each epoch.

    Examples:
    >>> import numpy as np
    >>> x = np.zeros((20, 8, 8, 1), "uint8"); y = np.arange(20) % 2
    >>> data = load_image_dataset((x, y), validation_split=0.25, batch_size=4)
    >>> data.num_train, data.num_validation, data.class_names
    (15, 5, ['0', '1'])
    """
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1). Received: validation_split={validation_split}")
    skipped: list = []
    if isinstance(source, (str, os.PathLike)) and str(source).startswith("tfds:"):
        x, y, names = _tfds_arrays(str(source), data_dir)
        class_names = class_names or names
    elif isinstance(source, (str, os.PathLike)):
        x, y, class_names, skipped = _folder_arrays(str(source), image_size, channels, strict)
    elif isinstance(source, tf.data.Dataset):
        x, y = _dataset_arrays(source)
    elif isinstance(source, (tuple, list)) and len(source) in (2, 3):
        x, y = np.asarray(source[0]), np.asarray(source[1])
        if len(source) == 3:  # (x, y, class_names), as toolkit.data.samples returns
            class_names = class_names or list(source[2])
    else:
        raise DataError(
            "data must be a folder path, an (x, y[, class_names]) tuple, a tf.data.Dataset or 'tfds:NAME'. "
            f"Received: {type(source).__name__}"
        )
    x, y, class_names = _validate_arrays(x, y, class_names)
    x = _conform_images(x, image_size, channels)

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = int(round(len(x) * validation_split))
    val_idx, train_idx = order[:n_val], order[n_val:]
    train = arrays_to_dataset(x[train_idx], y[train_idx], batch_size, shuffle=shuffle, seed=seed)
    validation = arrays_to_dataset(x[val_idx], y[val_idx], batch_size) if n_val else None
    return ImageDataset(
        train=train,
        validation=validation,
        class_names=list(class_names),
        image_shape=tuple(int(d) for d in x.shape[1:]),
        num_train=len(train_idx),
        num_validation=n_val,
        skipped=skipped,
    )


def arrays_to_dataset(x, y, batch_size=32, shuffle=False, seed=None) -> tf.data.Dataset:
    """`(x, y)` arrays -> batched, prefetched `tf.data` of float32 images and int32 labels."""
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
    if shuffle:
        ds = ds.shuffle(min(len(x), 10_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def read_image_file(path: str, channels: int | None = None) -> np.ndarray:
    """Decodes one image file to a uint8 `[H, W, C]` array; raises `DataError` naming the file."""
    try:
        raw = tf.io.read_file(path)
        image = tf.io.decode_image(raw, channels=channels or 0, expand_animations=False)
    except (tf.errors.OpError, OSError) as error:
        message = getattr(error, "message", str(error)).splitlines()[0]
        raise DataError(f"cannot read image file {path!r}: {message}") from None
    return image.numpy()


def _folder_arrays(root, image_size, channels, strict):
    if not os.path.isdir(root):
        raise DataError(f"data folder {root!r} does not exist")
    class_dirs = sorted(
        d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    files_per_class = {
        name: sorted(
            os.path.join(root, name, f)
            for f in os.listdir(os.path.join(root, name))
            if f.lower().endswith(IMAGE_EXTENSIONS)
        )
        for name in class_dirs
    }
    files_per_class = {k: v for k, v in files_per_class.items() if v}
    if not files_per_class:
        raise DataError(
            f"data folder {root!r} has no class sub-folders with images "
            f"(expected {root}/<class name>/<image>{'|'.join(IMAGE_EXTENSIONS)})"
        )
    if len(files_per_class) < 2:
        (only,) = files_per_class
        raise DataError(f"data folder {root!r} has only one class ({only!r}); a classifier needs at least 2")
    images, labels, skipped = [], [], []
    for label, (name, files) in enumerate(files_per_class.items()):
        for path in files:
            try:
                image = read_image_file(path, channels)
            except DataError as error:
                if strict:
                    raise
                skipped.append(path)
                logger.warning("skipping %s", error)
                continue
            if image_size is not None:
                image = tf.image.resize(image, image_size).numpy()
            images.append(image)
            labels.append(label)
    if skipped:
        logger.warning("skipped %d unreadable image(s) in %s: %s", len(skipped), root, ", ".join(skipped[:10]))
    if not images:
        raise DataError(f"no readable images in {root!r} ({len(skipped)} unreadable)")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(
            f"images in {root!r} have different shapes {sorted(shapes)[:4]}...; pass image_size=(H, W) to resize"
        )
    return np.stack(images), np.asarray(labels), list(files_per_class), skipped


def _dataset_arrays(ds: tf.data.Dataset):
    spec = ds.element_spec
    if isinstance(spec, dict):
        ds = ds.map(lambda e: (e["image"], e["label"]))
        spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise DataError(f"a tf.data.Dataset must yield (image, label) pairs. Received element_spec={spec}")
    if spec[0].shape.rank == 4:  # already batched
        ds = ds.unbatch()
    xs, ys = [], []
    for image, label in ds.as_numpy_iterator():
        xs.append(image)
        ys.append(label)
    if not xs:
        raise DataError("the tf.data.Dataset is empty")
    return np.stack(xs), np.asarray(ys)


def _tfds_arrays(source: str, data_dir):
    import tensorflow_datasets as tfds

    parts = source.split(":")
    name, split = parts[1], (parts[2] if len(parts) > 2 else "train")
    ds, info = tfds.load(name, split=split, data_dir=data_dir, as_supervised=True, with_info=True)
    x, y = _dataset_arrays(ds)
    label_feature = info.features[info.supervised_keys[1]]
    names = list(getattr(label_feature, "names", None) or [str(i) for i in range(int(y.max()) + 1)])
    return x, y, names


def _validate_arrays(x, y, class_names):
    if x.ndim == 3:  # (N, H, W) grey images
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"images must be (N, H, W) or (N, H, W, C). Received shape {x.shape}")
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot labels
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if len(x) != len(y):
        raise DataError(f"number of images and labels differ: {len(x)} images but {len(y)} labels")
    if len(x) == 0:
        raise DataError("the dataset has no images")
    if not np.issubdtype(y.dtype, np.integer):
        if np.all(np.mod(y, 1) == 0):
            y = y.astype("int64")
        else:
            raise DataError(f"labels must be integer class ids. Received dtype {y.dtype}")
    if y.min() < 0:
        raise DataError(f"labels must be >= 0. Received label {int(y.min())}")
    if class_names is None:
        class_names = [str(i) for i in range(int(y.max()) + 1)]
    class_names = list(class_names)
    if int(y.max()) >= len(class_names):
        raise DataError(
            f"label {int(y.max())} is outside the class list ({len(class_names)} class names: {class_names[:5]}...)"
        )
    if len(np.unique(y)) < 2:
        raise DataError(f"the labels hold only one class ({class_names[int(y[0])]!r}); a classifier needs at least 2")
    return x, y, class_names


def convert_channels(x: np.ndarray, channels: int | None) -> np.ndarray:
    """`[N, H, W, C]` images -> `channels` channels (grey <-> RGB; alpha dropped); None keeps them."""
    if channels is None or x.shape[-1] == channels:
        return x
    if channels == 3 and x.shape[-1] == 1:
        return np.repeat(x, 3, axis=-1)
    if channels == 1 and x.shape[-1] in (3, 4):
        return tf.image.rgb_to_grayscale(x[..., :3]).numpy()
    raise DataError(f"cannot convert {x.shape[-1]}-channel images to {channels} channels")


def _conform_images(x, image_size, channels):
    x = convert_channels(x, channels)
    if image_size is not None and tuple(x.shape[1:3]) != tuple(image_size):
        x = np.concatenate(
            [tf.image.resize(x[i : i + 512], image_size).numpy() for i in range(0, len(x), 512)]
        )
    return x


def parse_image_size(text) -> tuple | None:
    """`"96x128"` -> `(96, 128)`; empty -> None (keep the data's size)."""
    if not text:
        return None
    try:
        height, width = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"image_size must look like HxW (e.g. 96x96). Received: {text!r}") from None
    return height, width


def as_image_list(inputs) -> list:
    """One image (path, bytes, `[H, W(, C)]` array) or many -> a list of images."""
    if isinstance(inputs, (str, bytes, os.PathLike)) or (isinstance(inputs, np.ndarray) and inputs.ndim in (2, 3)):
        return [inputs]
    return list(inputs)


def encode_png(image: np.ndarray) -> bytes:
    """uint8-able `[H, W, C]` (or `[H, W]`) array -> PNG bytes, lossless (parity samples, requests, tests).

    Values are clipped to [0, 255] and cast to uint8.

    Examples:
    >>> encode_png(np.zeros((2, 3), "uint8"))[:4]
    b'\\x89PNG'
    """
    array = np.clip(np.asarray(image), 0, 255).astype("uint8")
    if array.ndim == 2:
        array = array[..., None]
    return tf.io.encode_png(array).numpy()


def encode_image_inputs(inputs) -> list:
    """Raw user images (file paths, encoded bytes, arrays) -> encoded bytes, the raw signature's input.

    A missing or undecodable file is a `DataError` naming it; arrays are PNG-encoded (lossless).
    """
    encoded = []
    for item in as_image_list(inputs):
        if isinstance(item, bytes):
            encoded.append(item)
        elif isinstance(item, (str, os.PathLike)):
            if not os.path.isfile(item):
                raise DataError(f"image file {str(item)!r} does not exist")
            read_image_file(str(item))  # a clear error naming the file if it is not an image
            with open(item, "rb") as f:
                encoded.append(f.read())
        else:
            encoded.append(encode_png(np.asarray(item)))
    return encoded
