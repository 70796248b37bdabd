"""`norm=` / `activation=` on the built-in backbones (small_cnn, small_resnet, the ResNets, the classic CNNs),
through `build_backbone` and the image classifier: the chosen layers are there, `.keras` round trip, clear errors."""

import keras
import numpy as np
import pytest

from tests import harness
from toolkit.models.transfer import build_backbone, build_image_classifier
from toolkit.models.transfer.backbones import NORM_BACKBONES, validate_norm_options
from toolkit.models.vision import ACTIVATIONS, NORMALIZATIONS, layer_types

NORM_LAYER = {"batch": "BatchNormalization", "group": "GroupNormalization", "layer": "GroupNormalization"}


def _norms(model):
    return [l for l in model._flatten_layers(include_self=False) if "Normalization" in type(l).__name__]


@pytest.mark.parametrize("spec", ["small_cnn", "small_resnet", "resnet18", "resnet_ode"])
@pytest.mark.parametrize("norm", NORMALIZATIONS)
def test_each_norm_builds_with_its_layers(spec, norm):
    backbone, _, _ = build_backbone(spec, (8, 8, 1), width=4, norm=norm)
    norms = _norms(backbone)
    if norm == "none":
        assert not norms
        assert all(l.use_bias for l in backbone._flatten_layers() if isinstance(l, keras.layers.Conv2D)
                   and not l.name.endswith("projection"))
    else:
        assert norms and {type(l).__name__ for l in norms} == {NORM_LAYER[norm]}
        if norm == "layer":
            assert {l.groups for l in norms} == {1}  # LayerNorm over H, W, C
        if norm == "group":
            assert min(l.groups for l in norms) > 1


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_each_activation_builds(activation):
    backbone, _, _ = build_backbone("small_resnet", (8, 8, 1), width=4, activation=activation)
    expected = {"swish": "silu"}.get(activation, activation)  # Keras' name for swish
    assert {t for t in layer_types(backbone) if t.startswith("Activation:")} == {f"Activation:{expected}"}


def test_defaults_keep_each_backbones_own_choice():
    cnn, _, _ = build_backbone("small_cnn", (8, 8, 1), width=4)
    assert {type(l).__name__ for l in _norms(cnn)} == {"BatchNormalization"} and "Activation:relu" in layer_types(cnn)
    lenet, _, _ = build_backbone("lenet5", (28, 28, 1))
    assert not _norms(lenet) and "Activation:tanh" in layer_types(lenet)
    lenet_bn, _, _ = build_backbone("lenet5", (28, 28, 1), norm="batch", activation="relu")
    assert len(_norms(lenet_bn)) == 3 and "Activation:tanh" not in layer_types(lenet_bn)


def test_classifier_round_trip_with_group_norm_and_elu(tmp_path):
    model = build_image_classifier((8, 8, 1), 3, backbone="small_resnet", width=4, dense_units=8, norm="group",
                                   activation="elu")
    assert "GroupNormalization" in layer_types(model.get_layer("backbone"))
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 1)).astype("float32")
    harness.run_model_saving_test(model, x, fresh_process=False, tmp_dir=str(tmp_path))


def test_bad_names_and_fixed_backbones_are_refused():
    with pytest.raises(ValueError, match=r"normalization must be one of \('batch', 'group', 'layer', 'none'\)"):
        build_backbone("small_cnn", (8, 8, 1), norm="instance")
    with pytest.raises(ValueError, match=r"activation must be one of \('relu', 'elu', 'gelu', 'selu', 'swish', "
                                         r"'tanh'\). Received: activation='prelu'"):
        validate_norm_options("resnet18", activation="prelu")
    with pytest.raises(ValueError, match="norm / activation options apply to the built-in CNN backbones"):
        validate_norm_options("vit_tiny", norm="batch")
    with pytest.raises(ValueError, match="not to 'MobileNetV2'"):
        build_backbone("MobileNetV2", (32, 32, 3), activation="gelu")
    assert "vit_tiny" not in NORM_BACKBONES and {"small_cnn", "lenet5", "resnet18"} <= set(NORM_BACKBONES)


def test_image_apps_check_norm_and_activation_before_reading_data():
    from apps.image_classifier import Config, ImageClassifierApp
    from apps.image_segmenter import Config as SegConfig
    from apps.image_segmenter import ImageSegmenterApp

    ImageClassifierApp().validate(Config(norm="layer", activation="selu"))
    with pytest.raises(ValueError, match="normalization must be one of"):
        ImageClassifierApp().validate(Config(norm="batchnorm"))
    with pytest.raises(ValueError, match="not to 'vit_tiny'"):
        ImageClassifierApp().validate(Config(backbone="vit_tiny", activation="relu"))
    ImageSegmenterApp().validate(SegConfig(norm="group", activation="gelu"))
    with pytest.raises(ValueError, match="activation must be one of"):
        ImageSegmenterApp().validate(SegConfig(activation="sigmoid"))
