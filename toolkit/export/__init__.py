"""The one export entry point and loader: SavedModel (cpu | gpu | tpu), TFLite, ONNX."""

from toolkit.data.images import encode_png
from toolkit.export.adapter import ExtraSignature, ServingAdapter, dense_adapter
from toolkit.export.errors import ExportError
from toolkit.export.exporter import FORMATS, export, list_versions
from toolkit.export.image import decode_images, image_classification_adapter
from toolkit.export.loader import Predictor, load, read_metadata, resolve_version_dir
from toolkit.export.samples import png_samples, random_samples
from toolkit.export.saved_model import TARGETS, function_has_xla

__all__ = [
    "FORMATS",
    "TARGETS",
    "ExportError",
    "ExtraSignature",
    "Predictor",
    "ServingAdapter",
    "decode_images",
    "dense_adapter",
    "encode_png",
    "export",
    "function_has_xla",
    "image_classification_adapter",
    "list_versions",
    "load",
    "png_samples",
    "random_samples",
    "read_metadata",
    "resolve_version_dir",
]
