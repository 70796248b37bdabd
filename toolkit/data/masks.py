"""Segmentation data: image + mask folders, arrays, tf.data, TFDS and `digit_scenes` into one form.

Folder layout (what `write_segmentation_folder` writes):

    root/images/<name>.png|jpg|...   the images
    root/masks/<name>.png            the masks, same <name>, same size: one class id per pixel
    root/classes.txt                 optional: one class per line, line i = class id i (0 = background);
                                     "name R G B" lines give a colour palette for RGB masks

A mask is a PNG of class indices (grey or palette-mode PNG), or an RGB image whose colours are mapped
to class ids through the palette. A mask whose size differs from its image, an unknown colour, or a
class id outside the class list is a `DataError` naming the file.
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from toolkit.data.errors import DataError
from toolkit.data.images import IMAGE_EXTENSIONS, convert_channels, read_image_file

MASK_KEYS = ("segmentation_mask", "mask", "segmentation", "label_image")
# TFDS datasets whose mask values need an offset to become 0-based class ids, and their class names.
TFDS_MASKS = {"oxford_iiit_pet": (-1, ["pet", "background", "border"])}


@dataclasses.dataclass
class SegmentationDataset:
    """Batched `(float32 images [B, H, W, C] in [0, 255], int32 masks [B, H, W])` pipelines and facts.

    Attributes:
        train / validation: tf.data.Dataset (validation may be None).
        class_names: names, index = class id, background (0) included.
        image_shape: `(H, W, C)`.
        palette: `[K, 3]` uint8 colours for overlays (and RGB masks).
        num_train / num_validation: example counts.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    class_names: list
    image_shape: tuple
    palette: list
    num_train: int = 0
    num_validation: int = 0
    test: tf.data.Dataset | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def default_palette(num_classes: int) -> np.ndarray:
    """`[K, 3]` uint8 colours: black background, then well-separated hues (Pascal VOC's bit pattern)."""
    palette = np.zeros((num_classes, 3), np.uint8)
    for k in range(num_classes):
        label, r, g, b = k, 0, 0, 0
        for shift in range(7, -1, -1):  # VOC colour map: spread the id's bits over the high bits of R, G, B
            r |= ((label >> 0) & 1) << shift
            g |= ((label >> 1) & 1) << shift
            b |= ((label >> 2) & 1) << shift
            label >>= 3
        palette[k] = (r, g, b)
    return palette


def read_class_list(path: str):
    """Reads `classes.txt`: `(class_names, palette or None)`; a line is `name` or `name R G B`."""
    names, colours = [], []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) == 4:
                try:
                    colours.append([int(v) for v in parts[1:]])
                except ValueError:
                    raise DataError(f"{path}:{number}: expected 'name R G B', got {line.strip()!r}") from None
            elif len(parts) != 1:
                raise DataError(f"{path}:{number}: expected 'name' or 'name R G B', got {line.strip()!r}")
            names.append(parts[0])
    if colours and len(colours) != len(names):
        raise DataError(f"{path}: either every class or none has an R G B colour")
    return names, (np.array(colours, np.uint8) if colours else None)


def read_mask_file(path: str, num_classes: int | None = None, palette=None) -> np.ndarray:
    """Decodes a mask file to uint8/int class ids `[H, W]`; errors name the file.

    Args:
        path: PNG (grey or palette-mode: pixel values are class ids; RGB: mapped through `palette`).
        num_classes: when given, an id >= num_classes is a `DataError`.
        palette: `[K, 3]` colours, index = class id, for RGB masks.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            mode = image.mode
            array = np.asarray(image)
    except OSError as error:
        raise DataError(f"cannot read mask file {path!r}: {error}") from None
    if mode in ("RGB", "RGBA"):
        array = array[..., :3]
        if palette is not None:
            ids = _colours_to_ids(array, np.asarray(palette, np.uint8), path)
        elif np.all(array[..., 0] == array[..., 1]) and np.all(array[..., 0] == array[..., 2]):
            ids = array[..., 0]
        else:
            raise DataError(f"mask file {path!r} is a colour image but no palette was given "
                            "(add 'name R G B' lines to classes.txt or pass palette=...)")
    elif mode in ("LA",):
        ids = array[..., 0]
    else:
        ids = array
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise DataError(f"mask file {path!r} has shape {ids.shape}; expected a single-channel [H, W] mask")
    if num_classes is not None and ids.size and int(ids.max()) >= num_classes:
        y, x = np.argwhere(ids >= num_classes)[0]
        raise DataError(f"mask file {path!r} holds class id {int(ids.max())} (first at row {y}, column {x}) "
                        f"outside the class list of {num_classes} classes")
    return ids.astype(np.int32)


def _colours_to_ids(rgb, palette, path):
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    table = (palette[:, 0].astype(np.int64) << 16) | (palette[:, 1].astype(np.int64) << 8) | palette[:, 2]
    order = np.argsort(table)
    position = np.clip(np.searchsorted(table[order], codes), 0, len(table) - 1)
    found = table[order][position] == codes
    if not found.all():
        y, x = np.argwhere(~found)[0]
        raise DataError(f"mask file {path!r} has colour {tuple(int(v) for v in rgb[y, x])} at row {y}, column {x} "
                        f"that is not in the palette of {len(palette)} classes")
    return order[position]


def _folder_arrays(root, channels, image_size, class_names, palette):
    images_dir, masks_dir = os.path.join(root, "images"), os.path.join(root, "masks")
    if not os.path.isdir(images_dir) or not os.path.isdir(masks_dir):
        raise DataError(f"segmentation folder {root!r} must hold images/ and masks/ sub-folders")
    classes_file = os.path.join(root, "classes.txt")
    if os.path.isfile(classes_file):
        file_names, file_palette = read_class_list(classes_file)
        class_names = class_names or file_names
        palette = palette if palette is not None else file_palette
    masks = {os.path.splitext(f)[0]: os.path.join(masks_dir, f) for f in sorted(os.listdir(masks_dir))
             if f.lower().endswith(IMAGE_EXTENSIONS)}
    files = sorted(f for f in os.listdir(images_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise DataError(f"no images in {images_dir!r} (extensions {'|'.join(IMAGE_EXTENSIONS)})")
    num_classes = len(class_names) if class_names else None
    xs, ys = [], []
    for file in files:
        image_path = os.path.join(images_dir, file)
        mask_path = masks.get(os.path.splitext(file)[0])
        if mask_path is None:
            raise DataError(f"image {image_path!r} has no mask (expected {masks_dir}/{os.path.splitext(file)[0]}.png)")
        image = read_image_file(image_path, channels)
        mask = read_mask_file(mask_path, num_classes, palette)
        if mask.shape != image.shape[:2]:
            raise DataError(f"mask {mask_path!r} is {mask.shape[0]}x{mask.shape[1]} but its image {image_path!r} "
                            f"is {image.shape[0]}x{image.shape[1]}")
        if image_size is not None:
            image, mask = _resize_pair(image, mask, image_size)
        xs.append(image)
        ys.append(mask)
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise DataError(f"images in {images_dir!r} have different sizes {sorted(shapes)[:3]}; pass image_size=(H, W)")
    return np.stack(xs), np.stack(ys), class_names, palette


def _resize_pair(image, mask, size):
    image = tf.image.resize(image, size).numpy()  # bilinear for pixels
    mask = tf.image.resize(mask[..., None], size, method="nearest").numpy()[..., 0]  # nearest: ids stay ids
    return image, mask


def _dataset_arrays(ds, image_size):
    spec = ds.element_spec
    if isinstance(spec, dict):
        key = next((k for k in MASK_KEYS if k in spec), None)
        if key is None or "image" not in spec:
            raise DataError(f"a dataset of dicts needs 'image' and one of {MASK_KEYS}. Received keys {sorted(spec)}")
        ds = ds.map(lambda e: (e["image"], e[key]))
        spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise DataError(f"a tf.data.Dataset must yield (image, mask) pairs. Received element_spec={spec}")
    if spec[0].shape.rank == 4:
        ds = ds.unbatch()
    xs, ys = [], []
    for image, mask in ds.as_numpy_iterator():
        mask = mask[..., 0] if mask.ndim == 3 else mask
        if image_size is not None:
            image, mask = _resize_pair(image, mask, image_size)
        xs.append(image)
        ys.append(mask)
    if not xs:
        raise DataError("the tf.data.Dataset is empty")
    if len({x.shape for x in xs}) > 1:
        raise DataError("the dataset's images have different sizes; pass image_size=(H, W)")
    return np.stack(xs), np.stack(ys)


def _tfds_arrays(source, data_dir, image_size):
    import tensorflow_datasets as tfds

    parts = source.split(":")
    name, split = parts[1], (parts[2] if len(parts) > 2 else "train")
    ds = tfds.load(name, split=split, data_dir=data_dir)
    x, y = _dataset_arrays(ds, image_size)
    offset, names = TFDS_MASKS.get(name, (0, None))
    return x, (y.astype(np.int32) + offset), names


def _validate(x, y, class_names):
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]
    if y.ndim == 4 and y.shape[-1] == 1:
        y = y[..., 0]
    if x.ndim != 4 or y.ndim != 3:
        raise DataError(f"images must be [N, H, W(, C)] and masks [N, H, W]. Received {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise DataError(f"number of images and masks differ: {len(x)} images but {len(y)} masks")
    if len(x) == 0:
        raise DataError("the dataset has no images")
    if x.shape[1:3] != y.shape[1:3]:
        raise DataError(f"masks are {y.shape[1]}x{y.shape[2]} but images are {x.shape[1]}x{x.shape[2]}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"masks must hold integer class ids. Received dtype {y.dtype}")
    if y.min() < 0:
        index = int(np.argwhere(y.reshape(len(y), -1).min(axis=1) < 0)[0, 0])
        raise DataError(f"mask {index} holds class id {int(y[index].min())} < 0")
    if class_names is None:
        class_names = ["background"] + [str(i) for i in range(1, max(int(y.max()), 1) + 1)]
    class_names = [str(c) for c in class_names]
    if int(y.max()) >= len(class_names):
        index = int(np.argwhere(y.reshape(len(y), -1).max(axis=1) >= len(class_names))[0, 0])
        raise DataError(f"mask {index} holds class id {int(y[index].max())} outside the class list "
                        f"({len(class_names)} classes: {class_names[:6]})")
    if len(class_names) < 2:
        raise DataError(f"segmentation needs at least 2 classes (background + 1). Received {class_names}")
    return x.astype(np.float32), y.astype(np.int32), class_names


def to_arrays(source, image_size=None, channels=None, class_names=None, palette=None, data_dir=None):
    """Any supported source -> `(images float32 [N, H, W, C], masks int32 [N, H, W], class_names, palette)`.

    Args:
        source: a folder (see the module docstring), `(images, masks[, class_names])`, an object with
            `.images`, `.masks` and `.class_names` (`toolkit.data.scenes.Scenes`: background is prepended),
            a `tf.data.Dataset` of `(image, mask)` pairs or `{"image", "segmentation_mask"}` dicts, or
            `"tfds:NAME[:SPLIT]"`.
        image_size: `(H, W)`; images resize bilinearly, masks with nearest neighbour.
        channels: force 1 or 3 channels.
        class_names: names, index = class id (0 = background).
        palette: `[K, 3]` colours for RGB masks and overlays.
        data_dir: TFDS data directory.
    """
    if isinstance(source, (str, os.PathLike)) and str(source).startswith("tfds:"):
        x, y, names = _tfds_arrays(str(source), data_dir, image_size)
        class_names = class_names or names
    elif isinstance(source, (str, os.PathLike)):
        if not os.path.isdir(source):
            raise DataError(f"data folder {str(source)!r} does not exist")
        x, y, class_names, palette = _folder_arrays(str(source), channels, image_size, class_names, palette)
    elif hasattr(source, "images") and hasattr(source, "masks"):
        x, y = source.images, source.masks
        class_names = class_names or ["background", *getattr(source, "class_names", [])]
    elif isinstance(source, tf.data.Dataset):
        x, y = _dataset_arrays(source, image_size)
    elif isinstance(source, (tuple, list)) and len(source) in (2, 3):
        x, y = source[0], source[1]
        if len(source) == 3:
            class_names = class_names or list(source[2])
    else:
        raise DataError("data must be a folder with images/ and masks/, an (images, masks[, class_names]) tuple, "
                        f"a tf.data.Dataset or 'tfds:NAME'. Received: {type(source).__name__}")
    x, y, class_names = _validate(x, y, class_names)
    x = convert_channels(x, channels or None)
    if image_size is not None and tuple(x.shape[1:3]) != tuple(image_size):
        pairs = [_resize_pair(a, b, image_size) for a, b in zip(x, y)]
        x, y = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]).astype(np.int32)
    palette = np.asarray(palette if palette is not None else default_palette(len(class_names)), np.uint8)
    if len(palette) < len(class_names):
        raise DataError(f"the palette has {len(palette)} colours for {len(class_names)} classes")
    return x, y, class_names, palette


def load_segmentation_dataset(
    source,
    *,
    image_size=None,
    channels=None,
    class_names=None,
    palette=None,
    validation_split: float = 0.1,
    batch_size: int = 16,
    seed: int = 1337,
    shuffle: bool = True,
    augment=None,
    data_dir=None,
) -> SegmentationDataset:
    """Loads a segmentation dataset (see `to_arrays` for sources) as batched train / validation pipelines.

    Args:
        source / image_size / channels / class_names / palette / data_dir: see `to_arrays`.
        validation_split: fraction held out for validation.
        batch_size: batch size.
        seed: split and shuffle seed (an augmentation has its own: `JointAugmentation(seed=...)`).
        shuffle: shuffle the training pipeline each epoch.
        augment: None or a `JointAugmentation` applied to training batches only.

    Examples:
    >>> import numpy as np
    >>> x = np.zeros((10, 8, 8, 3), "uint8"); y = np.zeros((10, 8, 8), "int32"); y[:, :4] = 1
    >>> data = load_segmentation_dataset((x, y, ["bg", "fg"]), validation_split=0.2, batch_size=4)
    >>> data.num_train, data.num_validation, data.image_shape
    (8, 2, (8, 8, 3))
    """
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1). Received: validation_split={validation_split}")
    x, y, class_names, palette = to_arrays(source, image_size, channels, class_names, palette, data_dir)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * validation_split))
    val_idx, train_idx = order[:n_val], order[n_val:]
    train = pairs_to_dataset(x[train_idx], y[train_idx], batch_size, shuffle=shuffle, seed=seed, augment=augment)
    validation = pairs_to_dataset(x[val_idx], y[val_idx], batch_size) if n_val else None
    return SegmentationDataset(train, validation, class_names, tuple(int(d) for d in x.shape[1:]),
                               palette.tolist(), len(train_idx), n_val)


def pairs_to_dataset(x, y, batch_size=16, shuffle=False, seed=None, augment=None) -> tf.data.Dataset:
    """`(images, masks)` arrays -> batched, prefetched tf.data of float32 images and int32 masks.

    `augment` (a `JointAugmentation`, or any `(images, masks) -> (images, masks)` callable) runs on whole
    batches; each example in a batch draws its own transform. The map is sequential on purpose: Keras'
    random layers advance a stateful seed generator, so a parallel map would race on it and lose
    reproducibility.
    """
    ds = tf.data.Dataset.from_tensor_slices((x.astype(np.float32), y.astype(np.int32)))
    if shuffle:
        ds = ds.shuffle(min(len(x), 10_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment is not None:
        ds = ds.map(augment)
    return ds.prefetch(tf.data.AUTOTUNE)


class JointAugmentation:
    """Moves an image and its mask together with Keras' preprocessing layers (dict inputs).

    A `keras.layers.Pipeline` of `RandomFlip`, `RandomZoom`, `RandomTranslation` and `RandomBrightness`
    is called on `{"images": ..., "segmentation_masks": ...}`: each layer draws one transform per example
    and applies it to both, the image with bilinear and the mask with nearest-neighbour interpolation
    (class ids stay ids); colour layers leave the mask alone. Pixels shifted in from outside become 0
    (black image, background mask).

    Args:
        flip: `"horizontal"`, `"vertical"`, `"horizontal_and_vertical"` (the two flips drawn
            independently) or None.
        zoom: max zoom-in as a fraction (0.2 -> centred crops of 80-100% of each side, aspect kept).
        translate: max shift as a fraction of height / width.
        brightness: max brightness shift as a fraction of 255 (pixels stay in [0, 255]).
        seed: seed of the layers' random draws (None: a fresh random seed).

    Attributes:
        pipeline: the `keras.layers.Pipeline` (call it on a dict of batched or single examples yourself).

    Examples:
    >>> import numpy as np
    >>> aug = JointAugmentation(flip="horizontal", zoom=0.0, translate=0.0)
    >>> img, mask = aug(np.zeros((8, 8, 3), "float32"), np.zeros((8, 8), "int32"))
    >>> tuple(img.shape), tuple(mask.shape), mask.dtype.name
    ((8, 8, 3), (8, 8), 'int32')
    """

    def __init__(self, flip="horizontal", zoom: float = 0.1, translate: float = 0.1, brightness: float = 0.0,
                 seed: int | None = None):
        if flip not in (None, "horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(f"flip must be horizontal, vertical, horizontal_and_vertical or None. Received {flip!r}")
        self.flip, self.zoom, self.translate, self.brightness = flip, float(zoom), float(translate), float(brightness)
        self.seed = seed
        layers = []

        def layer_seed():  # one seed per layer: equal seeds would make the layers' draws identical
            return None if seed is None else int(seed) + 1000 * len(layers)

        # keras' RandomFlip("horizontal_and_vertical") flips both axes or neither with one draw; two layers
        # give the independent horizontal and vertical flips this class promises
        if flip in ("horizontal", "horizontal_and_vertical"):
            layers.append(keras.layers.RandomFlip("horizontal", seed=layer_seed()))
        if flip in ("vertical", "horizontal_and_vertical"):
            layers.append(keras.layers.RandomFlip("vertical", seed=layer_seed()))
        if self.zoom:
            layers.append(keras.layers.RandomZoom((-self.zoom, 0.0), fill_mode="constant", fill_value=0.0,
                                                  seed=layer_seed()))
        if self.translate:
            layers.append(keras.layers.RandomTranslation(self.translate, self.translate, fill_mode="constant",
                                                         fill_value=0.0, seed=layer_seed()))
        if self.brightness:
            layers.append(keras.layers.RandomBrightness(self.brightness, value_range=(0, 255), seed=layer_seed()))
        self.pipeline = keras.layers.Pipeline(layers, name="joint_augmentation")

    def __call__(self, images, masks):
        """`images [(B,) H, W, C]` float, `masks [(B,) H, W]` int -> the same shapes, float32 / int32."""
        images = tf.convert_to_tensor(images, tf.float32)
        # keras takes masks with a channel axis; float32 so every layer can resample them (nearest
        # neighbour copies values, so the round trip back to int32 is exact)
        masks = tf.cast(tf.convert_to_tensor(masks), tf.float32)[..., None]
        if not self.pipeline.layers:
            return images, tf.cast(masks[..., 0], tf.int32)
        out = self.pipeline({"images": images, "segmentation_masks": masks}, training=True)
        return (tf.cast(out["images"], tf.float32),
                tf.cast(tf.round(out["segmentation_masks"][..., 0]), tf.int32))


def build_joint_augmentation(spec: str, seed: int | None = None) -> JointAugmentation | None:
    """A comma list of `flip`, `vflip`, `zoom`, `translate`, `brightness` (or `none`) -> `JointAugmentation`.

    Examples:
    >>> aug = build_joint_augmentation("flip, vflip, zoom", seed=0)
    >>> aug.flip, aug.zoom, aug.translate
    ('horizontal_and_vertical', 0.15, 0.0)
    >>> images, masks = aug(np.ones((2, 8, 8, 3), "float32"), np.ones((2, 8, 8), "int32"))
    >>> tuple(images.shape), tuple(masks.shape), set(np.unique(masks.numpy())) <= {0, 1}   # ids stay ids
    ((2, 8, 8, 3), (2, 8, 8), True)
    >>> build_joint_augmentation("none") is None
    True
    """
    ops = [op.strip() for op in str(spec).split(",") if op.strip() and op.strip() != "none"]
    unknown = set(ops) - {"flip", "vflip", "zoom", "translate", "brightness"}
    if unknown:
        raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; use flip, vflip, zoom, translate, brightness")
    if not ops:
        return None
    flip = {(True, False): "horizontal", (False, True): "vertical", (True, True): "horizontal_and_vertical"}.get(
        ("flip" in ops, "vflip" in ops))
    return JointAugmentation(flip=flip, zoom=0.15 if "zoom" in ops else 0.0,
                             translate=0.1 if "translate" in ops else 0.0,
                             brightness=0.1 if "brightness" in ops else 0.0, seed=seed)
