"""ResNet family: the notes' layouts and parameter counts, bottleneck FLOPs, options, ODE and mHC views."""

import keras
import numpy as np
import pytest

from toolkit.layers import EulerODEBlock, HyperConnection
from toolkit.models.vision import build_resnet, build_resnet_ode, residual_branch, trainable_parameters


def _with_head(net, classes=1000):
    head = keras.layers.Dense(classes)(keras.layers.GlobalAveragePooling2D()(net.output))
    return keras.Model(net.input, head)


@pytest.mark.parametrize("depth,params", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)])
def test_parameter_counts_match_the_notes(depth, params):
    # the notes: 11M / 21M / 25M at 1000 classes (F3:7764-7871); exact: torchvision's counts. Parameters do
    # not depend on the input size (GAP), so a 32 px build counts the 224 px network.
    net = build_resnet((32, 32, 3), depth)
    assert trainable_parameters(_with_head(net)) == params
    assert round(params / 1e6) == {18: 12, 34: 22, 50: 26}[depth]


def test_imagenet_layout_stem_and_stages():
    net = build_resnet((224, 224, 3), 18)
    assert net.get_layer("stem_conv").kernel.shape == (7, 7, 3, 64)
    assert net.get_layer("stem_pool").output.shape[1:3] == (56, 56)
    sides = [net.get_layer(f"stage{s}_block1_add").output.shape[1:] for s in range(1, 5)]
    assert sides == [(56, 56, 64), (28, 28, 128), (14, 14, 256), (7, 7, 512)]
    assert net.get_layer("stage2_block1_projection").kernel.shape == (1, 1, 64, 128)  # 1x1 projection shortcut
    assert build_resnet((224, 224, 3), 50).output_shape == (None, 7, 7, 2048)


def test_bottleneck_is_eight_times_cheaper_than_a_3x3_at_256_channels():
    """F3:7686-7696: 56x56x256, a 3x3 conv to 256 ~ 1.8e9 MACs; 1x1 reduce 256->64, 3x3, 1x1 expand ~ 218M."""
    inputs = keras.Input((56, 56, 256))
    x = inputs
    macs = 0
    for layer in residual_branch(64, "bottleneck"):
        x = layer(x)
        if isinstance(layer, keras.layers.Conv2D):
            macs += int(np.prod(layer.kernel.shape)) * x.shape[1] * x.shape[2]
    assert x.shape[-1] == 256
    assert round(macs / 1e6) == 218
    plain = 3 * 3 * 256 * 256 * 56 * 56
    assert round(plain / 1e9, 1) == 1.8 and 8 <= plain / macs < 9


def test_step_size_scales_the_residual_branch():
    x = np.random.default_rng(0).uniform(size=(1, 8, 8, 4)).astype("float32")
    net = build_resnet((8, 8, 4), 18, width=4, stem="small", num_stages=1, step_size=0.25)
    assert {l.scale for l in net.layers if isinstance(l, keras.layers.Rescaling)} == {0.25}
    zero = build_resnet((8, 8, 4), 18, width=4, stem="small", num_stages=1, step_size=0.0)
    stem = keras.Model(zero.input, zero.get_layer("stem_act").output)
    np.testing.assert_allclose(zero(x).numpy(), stem(x).numpy(), atol=1e-6)  # h = 0: every block is the identity


def test_preactivation_blocks_add_without_a_following_activation():
    net = build_resnet((16, 16, 3), 18, width=4, stem="small", preactivation=True)
    names = [l.name for l in net.layers]
    assert "stage1_block1_out" not in names and names[-2:] == ["final_norm", "final_act"]
    assert names.index("stage1_block1_norm1") < names.index("stage1_block1_conv1")


@pytest.mark.parametrize("norm", ["batch", "group", "layer", "none"])
@pytest.mark.parametrize("act", ["relu", "elu", "gelu", "selu"])
def test_normalization_and_activation_options(norm, act):
    net = build_resnet((8, 8, 1), 18, width=4, stem="small", num_stages=1, normalization=norm, activation=act)
    assert net.get_layer("stem_act").activation.__name__ == act
    assert net(np.ones((1, 8, 8, 1), "float32")).shape == (1, 8, 8, 4)


def test_ode_view_ties_each_stage_into_one_branch():
    net = build_resnet_ode((16, 16, 1), width=4, steps=5)
    blocks = [l for l in net.layers if isinstance(l, EulerODEBlock)]
    assert [b.steps for b in blocks] == [5] * 4 and blocks[0].step_size == 0.2
    two = trainable_parameters(build_resnet_ode((16, 16, 1), width=4, steps=2))
    assert two == trainable_parameters(net)  # more steps, the same parameters


def test_mhc_view_mixes_streams_inside_stages():
    net = build_resnet((8, 8, 1), 18, width=4, stem="small", mixing="mhc", num_streams=3)
    blocks = [l.name for l in net.layers if isinstance(l, HyperConnection)]
    # stage 1's two identity blocks, then the second block of stages 2-4 (the first changes shape)
    assert blocks == ["stage1_block1_mhc", "stage1_block2_mhc", "stage2_block2_mhc", "stage3_block2_mhc",
                      "stage4_block2_mhc"]
    assert net.output_shape == (None, 1, 1, 32)


def test_bad_options_name_the_value():
    with pytest.raises(ValueError, match="depth=101"):
        build_resnet((32, 32, 3), 101)
    with pytest.raises(ValueError, match="normalization='instance'"):
        build_resnet((32, 32, 3), 18, normalization="instance")
    with pytest.raises(ValueError, match="activation='tanh'"):
        build_resnet((32, 32, 3), 18, activation="tanh")
