"""Image classification datasets: folders, arrays, tf.data and TFDS into one form.

Every source becomes an `ImageDataset`: batched `tf.data` pipelines of `(float32 pixels in [0, 255],
int32 labels)`, class names and the image shape. Pixels stay un-normalised on purpose: normalisation
lives inside the model (a Keras layer), so the exported SavedModel applies it too.

Folders stream: only file headers are read up front (`toolkit.data.sources.scan_image_folder`: unreadable
files, sizes, channels); the pipeline is built from the file paths and decodes, converts channels and resizes
each image when it is read, so memory stays flat in the folder size. Arrays, `tf.data` and TFDS sources are
already in memory and are sliced into the same pipelines.

We do not use `keras.utils.image_dataset_from_directory` (checked on Keras 3.15): a corrupt file fails the
iteration mid-epoch instead of being skipped and named; it decodes with a fixed `color_mode`, so a folder
mixing GIF or BMP files with `"grayscale"`, or JPEG / GIF files with `"rgba"`, fails; it always resizes (no
"keep the files' size" with a clear error when they differ) and cannot infer the channels from the files;
and its validation split is its own (shuffled file order), not the seeded split every source shares here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from toolkit.data.errors import DataError
from toolkit.data.sources import IMAGE_EXTENSIONS, folder_image_shape, parse_image_source, scan_image_folder  # noqa: F401 (IMAGE_EXTENSIONS re-exported)

logger = logging.getLogger(__name__)

# IMAGE_EXTENSIONS lives in toolkit.data.sources; imported here too for the modules that import it from images.


@dataclasses.dataclass
class ImageDataset:
    """Train / validation (/ test) pipelines plus what a model needs to know about them.

    Unlabelled data (a flat folder of images, a lone array, `(x,)`, a `.npy` file, a `.npz` without `y`;
    accepted only with `require_labels=False`) has `class_names == []` (`labelled` is False) and pipelines
    that yield image batches alone instead of `(images, labels)` pairs.

    Args:
        train: tf.data.Dataset. batched `(images, labels)`; images float32 `[B, H, W, C]` in [0, 255].
        validation: tf.data.Dataset or None. same form, held out from `train`.
        class_names: list of str. label names, index = class id; `[]` when the data has no labels.
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

    @property
    def labelled(self) -> bool:
        return bool(self.class_names)


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
    require_labels: bool = True,
    split: str = "train",
) -> ImageDataset:
    """Loads an image classification dataset from any supported source.

    Folders stream from disk: only the files' headers are read here; the pipelines decode each file when
    it is read. Arrays, `tf.data` and TFDS sources are in memory already.

    Args:
        source: a folder path (one sub-folder per class), an `(x, y)` or `(x, y, class_names)` tuple, a
            `tf.data.Dataset` of `(image, label)` pairs, `"tfds:NAME"` (optionally `"tfds:NAME:SPLIT"`),
            a sample (`"fashion-mnist"`, `"fashion-mnist:train|test"`, `"digits"`) or a `.npz` file with
            `x` and `y` arrays. With `require_labels=False` also unlabelled data: a flat folder of images
            (or one with fewer than 2 class sub-folders; every image under it), an `x` array or `(x,)`,
            a `.npy` array, a `.npz` without `y`, a `tf.data.Dataset` of images.
        image_size: `(height, width)` to resize to (bilinear); `None` keeps the source's size (folders
            need it when image sizes differ).
        channels: 1 or 3 (folders: also 4) to force grey, RGB (or RGBA); `None` keeps the source's (a
            folder mixing channel counts becomes RGB).
        class_names: names for integer labels (arrays, tf.data); folders use sub-folder names.
        validation_split: fraction held out for validation (0 for none).
        batch_size: batch size of the returned pipelines.
        seed: shuffling and split seed.
        strict: raise on an unreadable image instead of skipping it with a warning. (A file whose header
            reads but whose pixels do not decode is found only when the pipeline reads it: dropped with
            TensorFlow's warning and its place in the epoch taken by another file, or, with `strict`, an
            error of that iteration.)
        data_dir: TFDS data directory.
        shuffle: shuffle the training pipeline each epoch. With no validation split and no shuffling the
            pipeline keeps the source's order (folders: class by class, files sorted).
        require_labels: False accepts unlabelled sources (see `ImageDataset`) and labels of a single class.
        split: the split of a sample named without one (`"fashion-mnist"` -> `"fashion-mnist:<split>"`).

    Examples:
    >>> import numpy as np
    >>> x = np.zeros((20, 8, 8, 1), "uint8"); y = np.arange(20) % 2
    >>> data = load_image_dataset((x, y), validation_split=0.25, batch_size=4)
    >>> data.num_train, data.num_validation, data.class_names
    (15, 5, ['0', '1'])
    >>> unlabelled = load_image_dataset(x, validation_split=0.0, require_labels=False)
    >>> unlabelled.class_names, unlabelled.labelled, next(iter(unlabelled.train)).shape
    ([], False, TensorShape([20, 8, 8, 1]))
    """
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1). Received: validation_split={validation_split}")
    parsed = parse_image_source(source, split)
    if parsed[0] == "folder":
        return _folder_dataset(parsed[1], image_size, channels, validation_split, batch_size, seed, strict,
                               shuffle, require_labels)
    if parsed[0] == "tfds":
        x, y, names = _tfds_arrays(parsed[1], parsed[2], data_dir)
        class_names = class_names or names
    elif parsed[0] == "dataset":
        x, y = _dataset_arrays(parsed[1], require_labels)
    else:
        _, x, y, names = parsed
        class_names = class_names or names
    x = np.asarray(x)
    if y is None:
        if require_labels:
            raise DataError(f"the images {x.shape} have no labels; a classifier needs (x, y) or a folder "
                            "with one sub-folder per class")
        x, class_names = _validate_images(x), []
    else:
        x, y, class_names = _validate_arrays(x, np.asarray(y), class_names, require_labels)
    x = _conform_images(x, image_size, channels)
    train_idx, val_idx = _split(len(x), validation_split, seed, shuffle)
    y_train, y_val = (None, None) if y is None else (y[train_idx], y[val_idx])
    train = arrays_to_dataset(x[train_idx], y_train, batch_size, shuffle=shuffle, seed=seed)
    validation = arrays_to_dataset(x[val_idx], y_val, batch_size) if len(val_idx) else None
    return ImageDataset(
        train=train,
        validation=validation,
        class_names=list(class_names),
        image_shape=tuple(int(d) for d in x.shape[1:]),
        num_train=len(train_idx),
        num_validation=len(val_idx),
    )


def _split(n, validation_split, seed, shuffle):
    """Seeded split: a permutation of the examples, the first `round(n * validation_split)` held out. With no
    split and no shuffling the source's order is kept."""
    n_val = int(round(n * validation_split))
    if n_val == 0 and not shuffle:
        return np.arange(n), np.arange(0)
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val:], order[:n_val]


def arrays_to_dataset(x, y=None, batch_size=32, shuffle=False, seed=None) -> tf.data.Dataset:
    """`(x, y)` arrays -> batched, prefetched `tf.data` of float32 images and int32 labels (`y=None`: images)."""
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y.astype("int32")))
    if shuffle:
        ds = ds.shuffle(min(len(x), 10_000), seed=seed, reshuffle_each_iteration=True)
    cast = (lambda a: tf.cast(a, tf.float32)) if y is None else (lambda a, b: (tf.cast(a, tf.float32), b))
    ds = ds.batch(batch_size).map(cast, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _folder_dataset(root, image_size, channels, validation_split, batch_size, seed, strict, shuffle,
                    require_labels) -> ImageDataset:
    if channels is not None and channels not in (1, 3, 4):
        raise DataError(f"channels must be 1, 3 or 4 for image files. Received: channels={channels}")
    scan = scan_image_folder(root, require_labels, strict)
    shape = folder_image_shape(scan, root, image_size, channels)
    train_idx, val_idx = _split(len(scan.files), validation_split, seed, shuffle)
    files = np.asarray(scan.files)

    def pipeline(idx, training):
        labels = None if scan.labels is None else scan.labels[idx]
        return files_to_dataset(files[idx], labels, shape, resize=image_size is not None, batch_size=batch_size,
                                shuffle=training and shuffle, seed=seed, skip_errors=not strict)

    return ImageDataset(
        train=pipeline(train_idx, True),
        validation=pipeline(val_idx, False) if len(val_idx) else None,
        class_names=list(scan.class_names),
        image_shape=shape,
        num_train=len(train_idx),
        num_validation=len(val_idx),
        skipped=scan.skipped,
    )


def files_to_dataset(paths, labels, image_shape, resize=True, batch_size=32, shuffle=False, seed=None,
                     skip_errors=False) -> tf.data.Dataset:
    """Image file paths (and int labels, or None) -> batched, prefetched `tf.data` that reads each file when
    iterated: decode, convert to `image_shape[2]` channels, resize to `image_shape[:2]` (bilinear) when
    `resize`, else check the size; float32 pixels in [0, 255]. `skip_errors` drops files that fail to decode."""
    height, width, channels = image_shape
    paths = np.asarray(paths, dtype=str)
    ds = tf.data.Dataset.from_tensor_slices(paths if labels is None else (paths, np.asarray(labels, "int32")))
    if shuffle:
        ds = ds.shuffle(min(len(paths), 10_000), seed=seed, reshuffle_each_iteration=True)

    def decode(path, *label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False)
        image = to_channels(image, channels)
        if resize:
            image = tf.image.resize(image, (height, width))
        else:
            image = tf.cast(tf.ensure_shape(image, (height, width, channels)), tf.float32)
        return (image, *label) if label else image

    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if skip_errors:  # a header that read but pixels that do not (e.g. a truncated file) is dropped, and its
        # slot filled from the next pass: the size stays known (Keras iterates a dataset of unknown size with
        # fewer iterators, which would change every later epoch's shuffle order). An all-corrupt input ends.
        ds = ds.ignore_errors(log_warning=True).repeat().take(len(paths))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """One decoded uint8 `[H, W, c]` image (c = 1, 2, 3 or 4, known only at run time) -> `channels` channels:
    grey -> RGB by repetition, RGB(A) -> grey as `tf.image.rgb_to_grayscale` (what `convert_channels` does
    for arrays), alpha dropped, or added opaque for 4."""
    c = tf.shape(image)[-1]
    grey = image[..., :1]
    if channels == 1:
        out = tf.cond(c >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]), lambda: grey)
    else:
        rgb = tf.cond(c >= 3, lambda: image[..., :3], lambda: tf.repeat(grey, 3, axis=-1))
        if channels == 3:
            out = rgb
        else:
            opaque = tf.fill(tf.shape(grey), tf.constant(255, image.dtype))
            alpha = tf.case([(tf.equal(c, 4), lambda: image[..., 3:4]), (tf.equal(c, 2), lambda: image[..., 1:2])],
                            default=lambda: opaque)
            out = tf.concat([rgb, alpha], axis=-1)
    out.set_shape([None, None, channels])
    return out


def read_image_file(path: str, channels: int | None = None) -> np.ndarray:
    """Decodes one image file to a uint8 `[H, W, C]` array; raises `DataError` naming the file."""
    try:
        raw = tf.io.read_file(path)
        image = tf.io.decode_image(raw, channels=channels or 0, expand_animations=False)
    except (tf.errors.OpError, OSError) as error:
        message = getattr(error, "message", str(error)).splitlines()[0]
        raise DataError(f"cannot read image file {path!r}: {message}") from None
    return image.numpy()


def _dataset_arrays(ds: tf.data.Dataset, require_labels: bool = True):
    spec = ds.element_spec
    if isinstance(spec, dict):
        ds = ds.map(lambda e: (e["image"], e["label"]))
        spec = ds.element_spec
    if isinstance(spec, tf.TensorSpec) and not require_labels:  # images alone: unlabelled
        images = np.concatenate([b if spec.shape.rank == 4 else b[None] for b in ds.as_numpy_iterator()] or
                                [np.zeros((0, 1, 1, 1))])
        return images, None
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


def _tfds_arrays(name: str, split: str, data_dir):
    import tensorflow_datasets as tfds

    ds, info = tfds.load(name, split=split, data_dir=data_dir, as_supervised=True, with_info=True)
    x, y = _dataset_arrays(ds)
    label_feature = info.features[info.supervised_keys[1]]
    names = list(getattr(label_feature, "names", None) or [str(i) for i in range(int(y.max()) + 1)])
    return x, y, names


def _validate_images(x):
    if x.ndim == 3:  # (N, H, W) grey images
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"images must be (N, H, W) or (N, H, W, C). Received shape {x.shape}")
    if len(x) == 0:
        raise DataError("the dataset has no images")
    return x


def _validate_arrays(x, y, class_names, require_labels=True):
    x = _validate_images(x)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot labels
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if len(x) != len(y):
        raise DataError(f"number of images and labels differ: {len(x)} images but {len(y)} labels")
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
    if require_labels and len(np.unique(y)) < 2:
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
    """`"96x128"` or `(96, 128)` -> `(96, 128)`; empty -> None (keep the data's size).

    Examples:
    >>> parse_image_size("96x128"), parse_image_size((64, 64)), parse_image_size("")
    ((96, 128), (64, 64), None)
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        values = text if isinstance(text, (tuple, list)) else str(text).lower().split("x")
        height, width = (int(v) for v in values)
        if height < 1 or width < 1:
            raise ValueError
    except (ValueError, TypeError):
        raise ValueError(f"image_size must look like HxW (e.g. 96x96) or (H, W). Received: {text!r}") from None
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
