"""What an image source names, in one place: sample names, `.npz` / `.npy` files, folders and their files.

`parse_image_source` turns what a user passes as image data (a string or path, arrays, a `tf.data.Dataset`)
into one of four kinds, so every app accepts the same sources with the same errors:

- `("arrays", x, y, class_names)`: `"fashion-mnist[:train|test]"`, `"digits"`, a `.npz` file with `x` (and
  optional `y`), a `.npy` array, an `(x, y[, class_names])` / `(x,)` tuple or a lone array (`y` is None when
  the source has no labels);
- `("folder", path)`: a folder of images (class sub-folders or flat), read by `scan_image_folder`;
- `("dataset", ds)`: a `tf.data.Dataset`;
- `("tfds", name, split)`: `"tfds:NAME[:SPLIT]"`.

`scan_image_folder` lists a folder's image files and reads only each file's header (PIL, no pixel decode):
the size and channel count of every readable file, and the files that cannot be read. Decoding happens later,
lazily, in the `tf.data` pipeline `toolkit.data.images` builds from the file paths.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os

import numpy as np
import tensorflow as tf

from toolkit.data.errors import DataError
from toolkit.data.image_samples import digits, fashion_mnist

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SAMPLES = ("fashion-mnist", "fashion_mnist", "digits")
SOURCE_FORMS = ("a folder, a .npz/.npy file, 'tfds:NAME[:SPLIT]' or a sample name "
                "('fashion-mnist[:train|test]', 'digits')")
# Formats tf.io.decode_image reads (the header check refuses anything else, e.g. a TIFF named .png).
_DECODABLE = {"PNG", "JPEG", "GIF", "BMP", "WEBP"}


def parse_image_source(source, split: str = "train") -> tuple:
    """Any image source -> `("arrays", x, y, class_names)`, `("folder", path)`, `("dataset", ds)` or
    `("tfds", name, split)` (see the module docstring). A string that is none of these is a `DataError`.

    Args:
        source: what the user passed as data.
        split: the split of a sample named without one (`"fashion-mnist"` -> `"fashion-mnist:<split>"`).

    Examples:
    >>> kind, x, y, names = parse_image_source(np.zeros((2, 4, 4)))
    >>> kind, x.shape, y, names
    ('arrays', (2, 4, 4), None, None)
    >>> parse_image_source("tfds:mnist:test")
    ('tfds', 'mnist', 'test')
    """
    if isinstance(source, tf.data.Dataset):
        return ("dataset", source)
    if isinstance(source, np.ndarray):
        return ("arrays", source, None, None)
    if isinstance(source, (tuple, list)) and len(source) in (1, 2, 3):
        y = np.asarray(source[1]) if len(source) > 1 else None
        return ("arrays", np.asarray(source[0]), y, list(source[2]) if len(source) == 3 else None)
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(f"data must be {SOURCE_FORMS}, an (x, y[, class_names]) tuple, an array or a "
                        f"tf.data.Dataset. Received: {type(source).__name__}")
    text = str(source)
    if text.startswith("tfds:"):
        parts = text.split(":")
        return ("tfds", parts[1], parts[2] if len(parts) > 2 else "train")
    name, _, sample_split = text.partition(":")
    if name.lower() in SAMPLES and not os.path.exists(text):
        if name.lower() == "digits":
            if sample_split:
                raise DataError(f"the digits sample has no splits. Received: {text!r}")
            return ("arrays", *digits())
        return ("arrays", *fashion_mnist(sample_split or split))
    if text.lower().endswith((".npz", ".npy")):
        return ("arrays", *_array_file(text))
    if not os.path.isdir(text):
        raise DataError(f"data folder {text!r} does not exist (data is {SOURCE_FORMS})")
    return ("folder", text)


def _array_file(path: str):
    if not os.path.isfile(path):
        raise DataError(f"data file {path!r} does not exist")
    if path.lower().endswith(".npy"):
        return np.load(path, allow_pickle=False), None, None
    with np.load(path, allow_pickle=False) as arrays:
        if "x" not in arrays:
            raise DataError(f"{path!r} has no array 'x' (found {list(arrays)})")
        names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else None
        return arrays["x"], (arrays["y"] if "y" in arrays else None), names


@dataclasses.dataclass
class FolderScan:
    """A folder's readable image files and what their headers say.

    Args:
        files: list of str. readable files, class by class (class names sorted), files sorted in each class.
        labels: int array `[len(files)]` (class ids), or None for a flat, unlabelled folder.
        class_names: list of str. sub-folder names (`[]` for a flat folder).
        sizes: list of `(height, width)`, one per file.
        channels: list of int, the channels `tf.io.decode_image` gives each file (1 grey, 2 grey + alpha,
            3 RGB, 4 RGBA).
        skipped: list of str. files whose header cannot be read, in listing order.
    """

    files: list
    labels: np.ndarray | None
    class_names: list
    sizes: list
    channels: list
    skipped: list


def list_image_folder(root: str, require_labels: bool = True) -> tuple:
    """`root` -> `(files, labels or None, class_names)`: one sub-folder per class (at least 2), or, when
    `require_labels` is False and there are not 2 class sub-folders, every image under `root` (unlabelled)."""
    if not os.path.isdir(root):
        raise DataError(f"data folder {root!r} does not exist (data is {SOURCE_FORMS})")
    class_dirs = sorted(
        d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    files_per_class = {name: _images_in(os.path.join(root, name)) for name in class_dirs}
    empty = [name for name, paths in files_per_class.items() if not paths]
    files_per_class = {k: v for k, v in files_per_class.items() if v}
    if len(files_per_class) >= 2 and empty:  # a class the model would silently never learn
        raise DataError(f"class folder(s) {[os.path.join(root, e) for e in empty]} have no images "
                        f"({'|'.join(IMAGE_EXTENSIONS)}); add images or remove the folder(s)")
    if len(files_per_class) >= 2:
        files = [path for paths in files_per_class.values() for path in paths]
        labels = np.repeat(np.arange(len(files_per_class)), [len(v) for v in files_per_class.values()])
        return files, labels, list(files_per_class)
    if require_labels:
        if not files_per_class:
            raise DataError(
                f"data folder {root!r} has no class sub-folders with images "
                f"(expected {root}/<class name>/<image>{'|'.join(IMAGE_EXTENSIONS)})"
            )
        (only,) = files_per_class
        raise DataError(f"data folder {root!r} has only one class ({only!r}); a classifier needs at least 2")
    files = sorted(os.path.join(path, f) for path, _, names in os.walk(root) for f in names
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise DataError(f"data folder {root!r} has no images ({'|'.join(IMAGE_EXTENSIONS)})")
    return files, None, []


def _images_in(folder: str) -> list:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))


def read_image_header(path: str) -> tuple:
    """`(height, width, channels)` from a file's header, without decoding its pixels; a `DataError` naming the
    file when PIL cannot identify it or `tf.io.decode_image` could not decode its format."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            fmt, (width, height), mode, info = image.format, image.size, image.mode, image.info
    except Exception as error:  # PIL raises many kinds (UnidentifiedImageError, SyntaxError, struct.error, ...)
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"cannot read image file {path!r}: {message}") from None
    if fmt not in _DECODABLE:
        raise DataError(f"cannot read image file {path!r}: {fmt} images cannot be decoded (PNG, JPEG, GIF, BMP)")
    return height, width, _decoded_channels(fmt, mode, info)


def _decoded_channels(fmt: str, mode: str, info: dict) -> int:
    """The channel count `tf.io.decode_image(channels=0)` gives a file of this PIL format and mode."""
    if fmt == "GIF":
        return 3
    if mode in ("1", "L", "I", "I;16", "I;16B", "F", "P") and fmt == "BMP":
        return 1  # TensorFlow's BMP decoder returns 8-bit files as one channel
    if mode == "P":
        return 4 if "transparency" in info else 3
    if mode in ("1", "L", "I", "I;16", "I;16B", "F"):
        return 1
    if mode in ("LA", "La"):
        return 2
    return 4 if mode in ("RGBA", "RGBa") else 3


def scan_image_folder(root: str, require_labels: bool = True, strict: bool = False) -> FolderScan:
    """Lists `root` (see `list_image_folder`) and reads every file's header. Unreadable files are skipped
    with a warning naming each (`strict=True` raises a `DataError` naming the first instead)."""
    files, labels, class_names = list_image_folder(root, require_labels)
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        headers = list(pool.map(_header_or_error, files))
    keep, sizes, channels, skipped = [], [], [], []
    for index, (path, header) in enumerate(zip(files, headers)):
        if isinstance(header, DataError):
            if strict:
                raise header
            skipped.append(path)
            logger.warning("skipping %s", header)
            continue
        keep.append(index)
        sizes.append(header[:2])
        channels.append(header[2])
    if skipped:
        logger.warning("skipped %d unreadable image(s) in %s: %s", len(skipped), root, ", ".join(skipped[:10]))
    if not keep:
        raise DataError(f"no readable images in {root!r} ({len(skipped)} unreadable)")
    return FolderScan(
        files=[files[i] for i in keep],
        labels=None if labels is None else labels[keep],
        class_names=class_names,
        sizes=sizes,
        channels=channels,
        skipped=skipped,
    )


def _header_or_error(path):
    try:
        return read_image_header(path)
    except DataError as error:
        return error


def folder_image_shape(scan: FolderScan, root: str, image_size, channels) -> tuple:
    """The `(H, W, C)` every image of `scan` becomes: `image_size` or the files' common size (different
    sizes without `image_size` are a `DataError` naming example files), and `channels` or the files' common
    channel count (grey + alpha counts as grey; mixed counts become RGB)."""
    if image_size is None:
        distinct = {}
        for path, size in zip(scan.files, scan.sizes):
            distinct.setdefault(tuple(size), path)
        if len(distinct) > 1:
            examples = ", ".join(f"{path} is {h}x{w}" for (h, w), path in list(distinct.items())[:3])
            raise DataError(f"images in {root!r} have different shapes ({len(distinct)} sizes: {examples}); "
                            "pass image_size=(H, W) to resize them")
        image_size = next(iter(distinct))
    if channels is None:
        found = {1 if c == 2 else c for c in scan.channels}
        channels = found.pop() if len(found) == 1 else 3
    return int(image_size[0]), int(image_size[1]), int(channels)
