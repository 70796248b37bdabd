"""Conformance (all slow): image-classifier with the ODE-tied ResNet, mHC ResNet / ViT and the MoE ViT."""

import pytest

from tests.conformance import cells
from tests.conformance.test_image_classifier_backbones import backbone_family

pytestmark = pytest.mark.slow
TASK = "image-classifier"

FAMILIES = ("resnet_ode", "resnet18_mhc", "vit_tiny_moe", "vit_tiny_mhc")
cells.define_matrix(globals(), {name: (None, backbone_family(name)) for name in FAMILIES},
                    expected_outputs=("classes", "labels", "scores"), metric="accuracy", compare=("labels", "classes"),
                    extra=FAMILIES)
