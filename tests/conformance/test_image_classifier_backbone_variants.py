"""Conformance (all slow): image-classifier with the ODE-tied ResNet, mHC ResNet / ViT, the MoE ViT and the classic
CNNs (LeNet-5, VGG-16, Inception, DenseNet, EfficientNet-B0 and its compound-scaled phi=1)."""

import pytest

from tests.conformance import cells
from tests.conformance.test_image_classifier_backbones import backbone_family

pytestmark = pytest.mark.slow
TASK = "image-classifier"

FAMILIES = ("resnet_ode", "resnet18_mhc", "vit_tiny_moe", "vit_tiny_mhc", "lenet5", "vgg16", "inception_small",
            "densenet_small", "efficientnet_b0", "efficientnet_phi1")
cells.define_matrix(globals(), {name: (None, backbone_family(name)) for name in FAMILIES},
                    expected_outputs=("classes", "labels", "scores"), metric="accuracy", compare=("labels", "classes"),
                    extra=FAMILIES)
