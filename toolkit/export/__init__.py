"""The one export entry point and loader: SavedModel (cpu | gpu | tpu), TFLite, ONNX.

Submodules are imported lazily, so `toolkit.export.formats` (the target x format table that `--help` shows)
is read without importing TensorFlow.
"""

from __future__ import annotations

from toolkit.lazy import lazy_exports

_EXPORTS = {
    "encode_png": "toolkit.data.images",
    "ExtraSignature": "toolkit.export.adapter",
    "ServingAdapter": "toolkit.export.adapter",
    "dense_adapter": "toolkit.export.adapter",
    "array_classification_adapter": "toolkit.export.arrays",
    "ExportError": "toolkit.export.errors",
    "FORMATS": "toolkit.export.formats",
    "TARGETS": "toolkit.export.formats",
    "export": "toolkit.export.exporter",
    "list_versions": "toolkit.export.exporter",
    "decode_images": "toolkit.export.image",
    "image_classification_adapter": "toolkit.export.image",
    "Predictor": "toolkit.export.loader",
    "load": "toolkit.export.loader",
    "read_metadata": "toolkit.export.loader",
    "resolve_version_dir": "toolkit.export.loader",
    "png_samples": "toolkit.export.samples",
    "random_samples": "toolkit.export.samples",
    "function_has_xla": "toolkit.export.saved_model",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
