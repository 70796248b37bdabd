"""The one export entry point and loader: SavedModel (cpu | gpu | tpu), TFLite, ONNX."""

from toolkit.export.adapter import ExtraSignature, ServingAdapter, dense_adapter
from toolkit.export.exporter import FORMATS, ExportError, export, list_versions
from toolkit.export.image import decode_images, encode_png, image_classification_adapter
from toolkit.export.loader import Predictor, load, read_metadata, resolve_version_dir
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
    "read_metadata",
    "resolve_version_dir",
]
