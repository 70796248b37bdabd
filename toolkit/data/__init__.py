"""Raw files -> tf.data: image folders, arrays, TFDS; augmentation; offline samples."""

from toolkit.data.augment import build_augmentation
from toolkit.data.errors import DataError
from toolkit.data.images import (
    ImageDataset,
    arrays_to_dataset,
    encode_png,
    load_image_dataset,
    read_image_file,
)

__all__ = [
    "DataError",
    "ImageDataset",
    "arrays_to_dataset",
    "build_augmentation",
    "encode_png",
    "load_image_dataset",
    "read_image_file",
]
