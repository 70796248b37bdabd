"""EfficientNet: compound scaling (alpha * beta^2 * gamma^2 ~= 2), keras.applications' B0/B1/B3 counts, options."""

import keras
import numpy as np
import pytest

from tests import harness
from toolkit.models.vision import build_efficientnet, compound_scaling, trainable_parameters
from toolkit.models.vision.efficientnet import ALPHA, BETA, GAMMA, round_filters, round_repeats


def test_compound_scaling_constants_and_growth():
    assert (ALPHA, BETA, GAMMA) == (1.2, 1.1, 1.15)  # Tan & Le 2019
    assert abs(ALPHA * BETA**2 * GAMMA**2 - 2) < 0.1  # the notes' constraint (F3:7940): 1.92
    for phi in range(8):  # B0-B7
        config = compound_scaling(phi)
        assert config["depth"] == pytest.approx(1.2**phi) and config["width"] == pytest.approx(1.1**phi)
        assert config["resolution"] == round(224 * 1.15**phi)
        # FLOPs ~ depth * width^2 * resolution^2: each phi step about doubles them
        assert config["flops"] == pytest.approx(config["depth"] * config["width"] ** 2 * (1.15**phi) ** 2)
    assert compound_scaling(0) == {"depth": 1.0, "width": 1.0, "resolution": 224, "flops": 1.0}
    with pytest.raises(ValueError, match="phi must be >= 0"):
        compound_scaling(-1)


def test_rounding_of_filters_and_repeats():
    assert [round_filters(f, 1.1) for f in (32, 16, 24, 1280)] == [32, 16, 24, 1408]
    assert round_filters(32, 0.1) == 8 and round_repeats(3, 1.2) == 4 and round_repeats(1, 1.0) == 1


def _blocks(model):
    return sum(1 for layer in model.layers if layer.name.endswith("_project"))


@pytest.mark.slow
def test_phi_scales_depth():
    small = {"stem": "small", "width_coefficient": 0.25}
    b0 = build_efficientnet((16, 16, 1), depth_coefficient=1.0, **small)
    b1 = build_efficientnet((16, 16, 1), phi=1, **small)  # depth 1.2: ceil(1.2 * repeats)
    assert _blocks(b0) == 16 and _blocks(b1) == sum(round_repeats(r, 1.2) for r in (1, 2, 2, 3, 3, 4, 1)) == 23


def test_phi_scales_width_and_resolution():
    small = {"stem": "small", "width_coefficient": 0.25}
    wide = build_efficientnet((16, 16, 1), phi=2, depth_coefficient=0.1, stem="small")  # width 1.21
    assert wide.get_layer("top_conv").filters == round_filters(1280, 1.21) == 1552
    scaled = build_efficientnet((16, 16, 1), phi=1, depth_coefficient=0.1, scale_resolution=True, **small)
    assert scaled.get_layer("resolution_scaling").output.shape[1:3] == (18, 18)  # 16 * 1.15, rounded
    assert _blocks(scaled) == 7  # depth 0.1: one block per stage


@pytest.mark.slow
@pytest.mark.parametrize("application,width,depth", [("EfficientNetB0", 1.0, 1.0), ("EfficientNetB1", 1.0, 1.1),
                                                      ("EfficientNetB3", 1.2, 1.4)])
def test_trainable_weights_equal_keras_applications(application, width, depth):
    theirs = getattr(keras.applications, application)(include_top=False, weights=None, input_shape=(32, 32, 3))
    ours = build_efficientnet((32, 32, 3), width_coefficient=width, depth_coefficient=depth)
    assert trainable_parameters(ours) == trainable_parameters(theirs)


@pytest.mark.slow
def test_b0_classifier_has_the_notes_5_3m():
    model = build_efficientnet((224, 224, 3), num_classes=1000)
    assert model.count_params() == 5_330_564 and round(model.count_params() / 1e5) == 53  # keras' B0: 5,330,571
    # (keras' 7 more are its input Normalization layer's mean / variance / count)


def test_norm_activation_options_and_round_trip(tmp_path):
    model = build_efficientnet((16, 16, 1), width_coefficient=0.25, depth_coefficient=0.1, stem="small",
                               norm="group", activation="gelu", num_classes=3)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in model.layers)
    assert any(isinstance(l, keras.layers.GroupNormalization) for l in model.layers)
    assert {l.get_config()["activation"] for l in model.layers if isinstance(l, keras.layers.Activation)} == {"gelu"}
    x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 1)).astype("float32")
    harness.run_model_saving_test(model, x, fresh_process=False, tmp_dir=str(tmp_path))  # stock layers only
    with pytest.raises(ValueError, match="stem must be one of"):
        build_efficientnet((16, 16, 1), stem="tiny")
