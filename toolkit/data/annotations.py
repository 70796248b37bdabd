"""Detection data in one form: images + pixel xyxy boxes + int class ids, from COCO / VOC / YOLO or arrays.

`load_detections(path, format)` reads any of the three annotation formats into `DetectionData` (a list of
`DetectionRecord`s plus class names); `detection_dataset(data)` turns it into a tf.data pipeline of
`{"images", "boxes", "classes"}` (ragged per image once batched with `ragged_batch`). The record types and
box checks live in `toolkit.data.detections`, readers and writers in `toolkit.data.annotations_formats`;
malformed annotations raise one `DataError` listing every problem of the file set, each naming file and
line. Boxes a little past the image border are clipped with a warning (`strict=True` refuses them).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from toolkit.data.annotations_formats import read_coco, read_voc, read_yolo, write_coco, write_voc, write_yolo
from toolkit.data.detections import DetectionData, DetectionRecord
from toolkit.data.errors import DataError

FORMATS = ("coco", "voc", "yolo")


def from_scenes(scenes) -> DetectionData:
    """`toolkit.data.scenes.Scenes` (or anything with images/boxes/classes/class_names) -> in-memory data."""
    records = []
    for image, boxes, classes in zip(scenes.images, scenes.boxes, scenes.classes):
        records.append(DetectionRecord(None, int(image.shape[1]), int(image.shape[0]),
                                       np.asarray(boxes, np.float32).reshape(-1, 4),
                                       np.asarray(classes, np.int32).reshape(-1), pixels=np.asarray(image)))
    return DetectionData(records, list(scenes.class_names))


def load_detections(source, format: str | None = None, class_names=None, image_dir: str | None = None,
                    strict: bool = False):
    """Reads detection data from a COCO JSON file, a Pascal VOC folder or a YOLO folder (or passes data through).

    Args:
        source: a `DetectionData`, a `Scenes`, a COCO `.json` file, a VOC folder (`Annotations/*.xml` +
            `JPEGImages/`, or XML files beside their images), or a YOLO folder (`images/`, `labels/`,
            `classes.txt`; or a flat folder of images, label files and `classes.txt`).
        format: `"coco"`, `"voc"`, `"yolo"`, or None to guess from the path.
        class_names: fix the class list (VOC: otherwise collected in sorted order; others: checked).
        image_dir: image folder for COCO (default: beside the JSON file, or its `images/` sub-folder).
        strict: refuse any box past the image border. By default a box past it by at most max(2 px, 2% of
            the side) is clipped to the image, with one warning naming the files and the count.

    Raises:
        DataError: malformed annotations, unknown classes, boxes outside the image (or, with `strict`, past
            its border), missing image files. The whole file set is checked first and every problem listed
            in one error (each naming its file and line or annotation id; the first 20, then `... and N more`).
    """
    if isinstance(source, DetectionData):
        return source
    if hasattr(source, "images") and hasattr(source, "boxes"):
        return from_scenes(source)
    source = os.fspath(source)
    if not os.path.exists(source):
        raise DataError(f"detection data {source!r} does not exist")
    format = format or guess_format(source)
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Received: format={format!r}")
    if format == "coco":
        return read_coco(source, image_dir=image_dir, class_names=class_names, strict=strict)
    if format == "voc":
        return read_voc(source, class_names=class_names, strict=strict)
    return read_yolo(source, class_names=class_names, strict=strict)


def guess_format(path: str) -> str:
    """`coco` for a .json file (or a folder holding one), `voc` for XML annotations, `yolo` for .txt labels."""
    if path.endswith(".json"):
        return "coco"
    if os.path.isdir(path):
        names = os.listdir(path)
        if any(n.endswith(".json") for n in names):
            return "coco"
        if "Annotations" in names or any(n.endswith(".xml") for n in names):
            return "voc"
        if "labels" in names or "classes.txt" in names:
            return "yolo"
    raise DataError(f"cannot tell the annotation format of {path!r}: pass format='coco' | 'voc' | 'yolo'")


def write_detections(data: DetectionData, directory: str, format: str) -> str:
    """Writes `data` (images as PNG when in memory) in `format`; returns the annotation path to read back."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Received: format={format!r}")
    return {"coco": write_coco, "voc": write_voc, "yolo": write_yolo}[format](data, directory)


def detection_dataset(data: DetectionData, image_size=None, channels: int = 3) -> tf.data.Dataset:
    """Unbatched tf.data of `{"images": float32 [H, W, C] in [0, 255], "boxes": [k, 4], "classes": int32 [k]}`.

    Boxes are pixel xyxy in the (resized) image. Batch with `dataset.ragged_batch(n)` for ragged boxes.

    Args:
        data: `DetectionData`.
        image_size: `(H, W)` to resize every image to (boxes are scaled with it); None keeps the sizes.
        channels: 1 or 3.

    Examples:
    >>> import numpy as np
    >>> rec = DetectionRecord(None, 4, 4, np.array([[0, 0, 2, 2]], "float32"), np.array([0], "int32"),
    ...                       pixels=np.zeros((4, 4, 3), "uint8"))
    >>> ds = detection_dataset(DetectionData([rec], ["a"]), image_size=(8, 8))
    >>> next(iter(ds))["boxes"].numpy().tolist()
    [[0.0, 0.0, 4.0, 4.0]]
    """
    records = data.records
    boxes = tf.ragged.constant([r.boxes.reshape(-1, 4).tolist() for r in records], dtype=tf.float32,
                               ragged_rank=1, inner_shape=(4,))
    classes = tf.ragged.constant([r.classes.reshape(-1).tolist() for r in records], dtype=tf.int32)
    in_memory = all(r.pixels is not None for r in records)
    if in_memory and len({r.pixels.shape for r in records}) == 1:
        images = tf.data.Dataset.from_tensor_slices(np.stack([r.pixels for r in records]))
        images = images.map(lambda im: _channels(tf.cast(im, tf.float32), channels))
    else:
        for r in records:
            if r.pixels is None and not os.path.isfile(r.image):
                raise DataError(f"image file {r.image!r} does not exist")
        encoded = [tf.io.encode_png(_np_channels(r.pixels)).numpy() if r.pixels is not None else r.image
                   for r in records]
        is_path = [r.pixels is None for r in records]
        images = tf.data.Dataset.from_tensor_slices((encoded, is_path)).map(
            lambda v, p: tf.cast(tf.io.decode_image(tf.cond(p, lambda: tf.io.read_file(v), lambda: v),
                                                    channels=channels, expand_animations=False), tf.float32),
            num_parallel_calls=tf.data.AUTOTUNE)
    labels = tf.data.Dataset.from_tensor_slices((boxes, classes))

    def combine(image, targets):
        box, cls = targets
        if image_size is not None:
            scale = tf.cast(tf.stack([image_size[1], image_size[0]] * 2), tf.float32) / tf.cast(
                tf.tile(tf.shape(image)[1::-1], [2]), tf.float32)
            image = tf.image.resize(image, image_size)
            box = box * scale
        return {"images": image, "boxes": tf.reshape(box, [-1, 4]), "classes": cls}

    return tf.data.Dataset.zip((images, labels)).map(combine, num_parallel_calls=tf.data.AUTOTUNE)


def _channels(image, channels):
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return tf.image.grayscale_to_rgb(image)
    return tf.image.rgb_to_grayscale(image)


def _np_channels(pixels):
    pixels = np.asarray(pixels, np.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels
