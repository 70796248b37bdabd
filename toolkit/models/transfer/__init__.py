"""Transfer learning: backbones (built-in, keras.applications, .keras files) + the classification head."""

from toolkit.models.transfer.backbones import BUILTIN_BACKBONES, build_backbone, validate_backbone
from toolkit.models.transfer.image_classifier import (
    build_image_classifier,
    count_params,
    freeze_backbone,
    get_backbone,
    unfreeze_top_layers,
)

__all__ = [
    "BUILTIN_BACKBONES",
    "build_backbone",
    "build_image_classifier",
    "count_params",
    "freeze_backbone",
    "get_backbone",
    "unfreeze_top_layers",
    "validate_backbone",
]
