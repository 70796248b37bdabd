"""Classic blocks and backbones: the notes' parameter counts (LeNet-5, VGG-16, Inception, 1x1 bottleneck),
DenseNet channel growth, keras.applications counts, norm / activation options, `.keras` round trips."""

import math

import keras
import numpy as np
import pytest

from tests import harness
from toolkit.models.vision import (
    ACTIVATIONS,
    NORMALIZATIONS,
    bottleneck_1x1,
    build_densenet,
    build_inception_small,
    build_lenet5,
    build_vgg16,
    dense_block,
    inception_module,
    layer_types,
    trainable_parameters,
    transition,
    vgg16_parameter_count,
)


def _kernels(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights if len(w.shape) == 4)


def test_lenet5_shapes_and_the_notes_parameter_counts():
    model = build_lenet5()  # F3:6730-6758
    sides = [model.get_layer(n).output.shape[1:] for n in ("c1_act", "s2", "c3_act", "s4", "c5_act")]
    assert sides == [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (1, 1, 120)]
    counts = {n: model.get_layer(n).count_params() for n in ("c1_conv", "c3_conv", "c5_conv", "f6", "output")}
    assert counts == {"c1_conv": 156, "c3_conv": 2416, "c5_conv": 48120, "f6": 10164, "output": 850}
    assert model.count_params() == 61_706 and abs(model.count_params() - 60_000) / 60_000 < 0.03
    padded = build_lenet5((28, 28, 1))  # MNIST's 28 px zero-padded to 32, same weights
    assert padded.get_layer("pad_to_32").output.shape[1:3] == (32, 32) and padded.count_params() == 61_706


def test_vgg16_count_matches_the_notes_and_the_built_model():
    assert vgg16_parameter_count() == 138_357_544  # the notes' 138M; keras.applications.VGG16's exact count
    assert round(vgg16_parameter_count() / 1e6) == 138
    small = build_vgg16((32, 32, 3), num_classes=10, width=8, fc_units=16)
    assert small.count_params() == vgg16_parameter_count(32, 3, 10, width=8, fc_units=16)
    convs = [l for l in small.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 13 and [c.filters for c in convs[::3]] == [8, 16, 32, 64, 64]


@pytest.mark.slow
def test_vgg16_features_equal_keras_applications():
    ours = build_vgg16((32, 32, 3), num_classes=None)
    theirs = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert ours.count_params() == theirs.count_params() == 14_714_688
    assert build_vgg16((28, 28, 1), None, width=4).output_shape == (None, 1, 1, 32)  # same-padded pools: 28 -> 1


@pytest.mark.slow
def test_vgg16_full_model_equals_keras_applications_at_224():
    ours = build_vgg16()
    assert ours.count_params() == keras.applications.VGG16(weights=None).count_params() == vgg16_parameter_count()


def test_inception_module_branches_and_parameter_count():
    inputs = keras.Input((28, 28, 192))
    module = keras.Model(inputs, inception_module(inputs, 64, 96, 128, 16, 32, 32, norm="none"))
    assert module.output_shape == (None, 28, 28, 64 + 128 + 32 + 32)
    by_formula = (192 * 64 + 64) + (192 * 96 + 96) + (9 * 96 * 128 + 128) + (192 * 16 + 16) + (25 * 16 * 32 + 32) \
        + (192 * 32 + 32)
    assert module.count_params() == by_formula == 163_696
    kernels = sorted(tuple(l.kernel.shape[:2]) for l in module.layers if isinstance(l, keras.layers.Conv2D))
    assert kernels == [(1, 1)] * 4 + [(3, 3), (5, 5)]
    normed = keras.Model(inputs, inception_module(inputs, 64, 96, 128, 16, 32, 32, norm="batch"))
    assert _kernels(normed) == by_formula - (64 + 96 + 128 + 16 + 32 + 32)  # a norm replaces the conv biases


def test_bottleneck_1x1_is_eight_times_cheaper():
    inputs = keras.Input((56, 56, 256))
    block = keras.Model(inputs, bottleneck_1x1(inputs, 256, 64, norm="none"))
    direct = 56 * 56 * 3 * 3 * 256 * 256  # the notes' 1.8e9 (F3:7686-7696)
    bottleneck = 56 * 56 * _kernels(block)  # 51M + 116M + 51M
    assert round(direct / 1e8) == 18 and round(bottleneck / 1e6) == 218 and round(direct / bottleneck) == 8


@pytest.mark.parametrize("k0,layers,k", [(16, 4, 12), (24, 6, 32)])
def test_dense_block_grows_k0_plus_l_times_k(k0, layers, k):
    inputs = keras.Input((4, 4, k0))
    x = dense_block(inputs, layers, k)
    assert x.shape[-1] == k0 + layers * k
    concats = [t for t in keras.Model(inputs, x).layers if isinstance(t, keras.layers.Concatenate)]
    assert [c.output.shape[-1] for c in concats] == [k0 + k * i for i in range(1, layers + 1)]
    assert transition(x, 0.5).shape[1:] == (2, 2, (k0 + layers * k) // 2)


@pytest.mark.slow
def test_densenet121_equals_keras_applications():
    ours = build_densenet((32, 32, 3))  # DENSENET_LAYOUTS[121], k = 32; the notes' "8M" with its 1000-way head
    theirs = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert trainable_parameters(ours) == trainable_parameters(theirs) == 6_953_856
    assert round((6_953_856 + 1024 * 1000 + 1000) / 1e6) == 8


def test_inception_small_and_densenet_shapes():
    assert build_inception_small((28, 28, 1), width=8, modules=(1, 1)).output_shape == (None, 7, 7, 64)
    net = build_densenet((16, 16, 1), blocks=(2, 2), growth_rate=4, stem="small", num_classes=3)
    assert net.output_shape == (None, 3)


@pytest.mark.parametrize("norm", NORMALIZATIONS)
def test_norm_option_puts_that_layer_in(norm):
    net = build_densenet((8, 8, 1), blocks=(1, 1), growth_rate=4, stem="small", norm=norm)
    norms = [l for l in net.layers if "Normalization" in type(l).__name__]
    if norm == "none":
        assert not norms
    else:
        expected = {"batch": keras.layers.BatchNormalization, "group": keras.layers.GroupNormalization,
                    "layer": keras.layers.GroupNormalization}[norm]
        assert norms and all(isinstance(l, expected) for l in norms)
        if norm == "layer":  # LayerNorm over H, W, C = GroupNorm with one group
            assert {l.groups for l in norms} == {1}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_option(activation):
    net = build_inception_small((8, 8, 1), width=4, modules=(1,), activation=activation)
    expected = {"swish": "silu"}.get(activation, activation)  # Keras' name for swish
    assert {t for t in layer_types(net) if t.startswith("Activation:")} == {f"Activation:{expected}"}


def test_bad_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"normalization must be one of \('batch', 'group', 'layer', 'none'\)"):
        build_lenet5(norm="instance")
    with pytest.raises(ValueError, match=r"activation must be one of \('relu', 'elu', 'gelu', 'selu'.*'leaky'"):
        build_vgg16((32, 32, 3), None, width=4, activation="leaky")


def test_keras_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    # stock Keras layers only (no custom objects), so an in-process reload is the round trip that matters
    for model in [
        build_lenet5((28, 28, 1), num_classes=4),
        build_vgg16((16, 16, 1), num_classes=3, width=4, fc_units=8, norm="group", activation="gelu"),
        build_inception_small((8, 8, 1), width=4, modules=(1,), norm="layer"),
        build_densenet((8, 8, 1), blocks=(2, 1), growth_rate=4, stem="small", activation="selu"),
    ]:
        x = rng.uniform(0, 1, (2, *model.input_shape[1:])).astype("float32")
        harness.run_model_saving_test(model, x, fresh_process=False, tmp_dir=str(tmp_path))  # distinct model names
