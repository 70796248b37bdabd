"""Vision architectures of the lecture notes: ViT, the ResNet family (with its ODE and mHC views), classic CNNs."""

from toolkit.models.vision.resnet import (
    RESNET_LAYOUTS,
    build_resnet,
    build_resnet_ode,
    residual_branch,
    trainable_parameters,
)
from toolkit.models.vision.vit import VIT_SIZES, build_vit, build_vit_classifier, vit_parameter_count

__all__ = [
    "RESNET_LAYOUTS",
    "VIT_SIZES",
    "build_resnet",
    "build_resnet_ode",
    "build_vit",
    "build_vit_classifier",
    "residual_branch",
    "trainable_parameters",
    "vit_parameter_count",
]
