"""Raw files -> tf.data: image folders, arrays, TFDS; augmentation; offline samples."""

from toolkit.data.augment import build_augmentation
from toolkit.data.images import (
    DataError,
    ImageDataset,
    arrays_to_dataset,
    load_image_dataset,
    read_image_file,
)

__all__ = [
    "DataError",
    "ImageDataset",
    "arrays_to_dataset",
    "build_augmentation",
    "load_image_dataset",
    "read_image_file",
]
