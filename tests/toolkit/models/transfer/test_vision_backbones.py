"""The notes' vision backbones through the image classifier's registry: names, shapes, pooling, MoE head."""

import keras
import numpy as np
import pytest

from toolkit.layers import MixtureOfExperts
from toolkit.models.transfer import BUILTIN_BACKBONES, build_backbone, build_image_classifier, validate_backbone
from toolkit.models.transfer.backbones import VISION_BACKBONES

SMALL = [pytest.param(name, marks=[pytest.mark.slow] if name.startswith("efficientnet") else [])  # ~9 s each
         for name in VISION_BACKBONES if name != "vit_base"]


def test_every_vision_backbone_is_a_builtin_name():
    assert set(VISION_BACKBONES) <= set(BUILTIN_BACKBONES)
    for name in VISION_BACKBONES:
        validate_backbone(name)


def test_unknown_backbone_lists_the_valid_names():
    with pytest.raises(ValueError) as error:
        validate_backbone("resnet19")
    message = str(error.value)
    assert "'resnet19'" in message and all(name in message for name in VISION_BACKBONES)


@pytest.mark.parametrize("name", SMALL)
def test_classifier_on_28_px_grey_images(name):
    model = build_image_classifier((28, 28, 1), 10, backbone=name, width=4, dense_units=8)
    backbone = model.get_layer("backbone")
    assert backbone.input_shape[-1] == 1  # trained from scratch: the data's channels, no RGB conversion
    if name.startswith("vit"):
        assert len(backbone.output_shape) == 2  # z0, the [CLS] token: the head reads it, no pooling
        assert "pool" not in [l.name for l in model.layers]
    else:
        assert len(backbone.output_shape) == 4
    if name.startswith("resnet"):
        assert backbone.get_layer("stem_conv").kernel.shape[0] == 3  # small stem
    probabilities = model(np.zeros((2, 28, 28, 1), "float32")).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_feature_map_for_detectors_and_sizes_rounded_to_patches():
    vit, mode, _ = build_backbone("vit_tiny", (30, 30, 1), width=4)
    assert mode == "unit" and vit.input_shape == (None, 32, 32, 1) and vit.output_shape == (None, 8, 8, 8)
    model = build_image_classifier((30, 30, 1), 3, backbone="vit_tiny", width=4)
    assert model.get_layer("resize").output.shape[1:3] == (32, 32)  # the classifier resizes up to the patches
    big, _, _ = build_backbone("resnet18", (64, 64, 3), width=4)
    assert big.get_layer("stem_conv").kernel.shape[0] == 7 and big.output_shape == (None, 2, 2, 32)


def test_moe_head_replaces_the_hidden_dense_layer():
    model = build_image_classifier((16, 16, 1), 4, width=4, dense_units=8, head_experts=4, head_top_k=1)
    head = model.get_layer("head_experts")
    assert isinstance(head, MixtureOfExperts) and head.top_k == 1 and head.units == 8
    assert "head_dense" not in [l.name for l in model.layers]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "vit_tiny"])
def test_one_training_step_lowers_the_loss(name):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 16, 16, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 127.5).astype("int32")
    model = build_image_classifier((16, 16, 1), 2, backbone=name, width=4, dense_units=8, dropout=0.0)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before
