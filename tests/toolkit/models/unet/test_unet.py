import keras
import numpy as np
import pytest

from toolkit.models.unet import build_unet, get_encoder


def conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def seed_unet_params(c, k, skips=True):
    """The seed U-Net by hand: 3x3 conv pairs 64/128/256, 512 bottleneck, 2x2 up-convs, 1x1 classifier."""
    total = conv(3, c, 64) + conv(3, 64, 64)                      # enc1
    total += conv(3, 64, 128) + conv(3, 128, 128)                 # enc2
    total += conv(3, 128, 256) + conv(3, 256, 256)                # enc3
    total += conv(3, 256, 512) + conv(3, 512, 512)                # bottleneck
    for f, below in ((256, 512), (128, 256), (64, 128)):          # dec3, dec2, dec1
        total += conv(2, below, f)                                # Conv2DTranspose(f, (2, 2), strides=2)
        total += conv(3, 2 * f if skips else f, f) + conv(3, f, f)  # concat(up, skip) -> conv, conv
    return total + conv(1, 64, k)                                 # 1x1 conv to num_classes


def test_default_unet_matches_the_seed_shapes_and_parameter_count():
    model = build_unet((64, 64, 3), 5)
    assert seed_unet_params(3, 5) == 7_697_605
    assert model.count_params() == seed_unet_params(3, 5)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    expected = {
        "enc1_conv2": (64, 64, 64), "enc1_pool": (32, 32, 64),
        "enc2_conv2": (32, 32, 128), "enc2_pool": (16, 16, 128),
        "enc3_conv2": (16, 16, 256), "enc3_pool": (8, 8, 256),
        "bottleneck_conv2": (8, 8, 512),
        "dec3_upconv": (16, 16, 256), "dec3_concat": (16, 16, 512), "dec3_conv2": (16, 16, 256),
        "dec2_upconv": (32, 32, 128), "dec2_concat": (32, 32, 256), "dec2_conv2": (32, 32, 128),
        "dec1_upconv": (64, 64, 64), "dec1_concat": (64, 64, 128), "dec1_conv2": (64, 64, 64),
        "classifier": (64, 64, 5),
    }
    assert {name: shapes[name] for name in expected} == expected
    up = model.get_layer("dec3_upconv")
    assert up.kernel_size == (2, 2) and up.strides == (2, 2)
    assert model.get_layer("enc1_pool").pool_size == (2, 2)
    assert model.get_layer("classifier").activation.__name__ == "softmax"
    probs = model(np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32"))
    np.testing.assert_allclose(np.sum(probs, axis=-1), 1.0, atol=1e-5)


def test_no_skip_variant_builds_with_the_same_widths():
    model = build_unet((32, 32, 1), 3, skip_connections=False)
    assert model.name == "encoder_decoder"
    assert not [layer for layer in model.layers if "concat" in layer.name]
    assert model.output_shape == (None, 32, 32, 3)
    assert model.count_params() == seed_unet_params(1, 3, skips=False)


def test_options_depth_width_batch_norm_dropout_downsampling():
    model = build_unet((32, 32, 3), 4, filters=(8, 16, 32, 64), bottleneck=128, batch_norm=True, dropout=0.2,
                       downsampling="conv", convs_per_block=1)
    names = [layer.name for layer in model.layers]
    assert "dec4_upconv" in names and "enc4_down" in names and "enc4_dropout" in names
    assert model.get_layer("bottleneck_conv1").output.shape[1:] == (2, 2, 128)
    assert model.get_layer("enc1_conv1").use_bias is False and "enc1_bn1" in names
    assert model.output_shape == (None, 32, 32, 4)


def test_valid_padding_crops_skips_like_ronneberger():
    # 92 -conv-conv-> 88 -pool-> 44 -> 40 -pool-> 20 -> 16 (bottleneck) -up-> 32 -> 28 -up-> 56 -> 52
    model = build_unet((92, 92, 1), 2, filters=(4, 8), bottleneck=8, padding="valid")
    assert model.get_layer("bottleneck_conv2").output.shape[1:3] == (16, 16)
    assert model.get_layer("dec2_crop").output.shape[1:3] == (32, 32)
    assert model.output_shape == (None, 52, 52, 2)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="divisible by 8"):
        build_unet((60, 60, 3), 3)
    with pytest.raises(ValueError, match="num_classes"):
        build_unet((64, 64, 3), 1)
    with pytest.raises(ValueError, match="padding"):
        build_unet((64, 64, 3), 3, padding="full")


def test_pretrained_encoder_gives_skips_from_intermediate_layers(tmp_path):
    model = build_unet((32, 32, 3), 3, encoder="small_cnn", freeze_encoder=True)
    encoder = get_encoder(model)
    assert encoder is not None and not encoder.trainable
    # small_cnn has feature maps at 32, 16 and 8: the 8x8 output is the bottleneck, 16 and 32 are skips
    assert [tuple(o.shape[1:3]) for o in encoder.outputs] == [(32, 32), (16, 16), (8, 8)]
    assert model.get_layer("dec1_concat").output.shape[1:3] == (16, 16)
    assert model.get_layer("dec2_concat").output.shape[1:3] == (32, 32)
    assert model.output_shape == (None, 32, 32, 3)


def test_keras_applications_encoder_offline_weights_none():
    # MobileNetV2 (weights=None: no download in tests; "imagenet" is the online path) on grey input
    model = build_unet((32, 32, 1), 3, encoder="MobileNetV2")
    sides = [int(o.shape[1]) for o in get_encoder(model).outputs]
    assert sides == [32, 16, 8, 4, 2, 1]  # odd-sized padding outputs (17, 9, ...) are not skips
    assert model.get_layer("dec5_concat").output.shape[1:3] == (32, 32)
    assert model.output_shape == (None, 32, 32, 3)


def test_unet_round_trips_through_keras_file(tmp_path):
    model = build_unet((16, 16, 3), 3, filters=(4, 8), bottleneck=8, batch_norm=True)
    x = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    path = str(tmp_path / "unet.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    pretrained = build_unet((16, 16, 3), 3, encoder="small_cnn", freeze_encoder=True)
    pretrained.save(str(tmp_path / "pretrained.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "pretrained.keras"))
    np.testing.assert_allclose(reloaded(x), pretrained(x), atol=1e-6)
    assert get_encoder(reloaded).trainable is False


NORM_CLASS = {"batch": keras.layers.BatchNormalization, "group": keras.layers.GroupNormalization,
              "layer": keras.layers.GroupNormalization}


@pytest.mark.parametrize("norm", ["batch", "group", "layer", "none"])
def test_norm_option_puts_its_layers_after_every_convolution(norm):
    model = build_unet((8, 8, 1), 2, filters=(4,), bottleneck=8, norm=norm)
    convs = [l for l in model.layers if type(l) is keras.layers.Conv2D and l.name != "classifier"]
    norms = [l for l in model.layers if isinstance(l, (keras.layers.BatchNormalization,
                                                       keras.layers.GroupNormalization))]
    if norm == "none":
        assert not norms and all(c.use_bias for c in convs)
    else:
        assert len(norms) == len(convs) == 6 and all(type(l) is NORM_CLASS[norm] for l in norms)
        assert not any(c.use_bias for c in convs)
        assert {l.groups for l in norms if norm != "batch"} <= ({1} if norm == "layer" else set(range(2, 33)))


def test_norm_defaults_to_the_batch_norm_flag():
    plain = build_unet((8, 8, 1), 2, filters=(4,), bottleneck=8)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in plain.layers)
    bn = build_unet((8, 8, 1), 2, filters=(4,), bottleneck=8, batch_norm=True)
    assert bn.get_layer("enc1_bn1") and bn.get_layer("enc1_relu1")  # the names from before the norm option


@pytest.mark.parametrize("activation", ["relu", "elu", "gelu", "selu"])
def test_activation_option(activation):
    model = build_unet((8, 8, 1), 2, filters=(4,), bottleneck=8, activation=activation)
    acts = {l.get_config()["activation"] for l in model.layers if isinstance(l, keras.layers.Activation)}
    assert acts == {activation}


def test_norm_activation_round_trip_and_errors(tmp_path):
    from tests import harness

    model = build_unet((8, 8, 1), 3, filters=(4,), bottleneck=8, norm="layer", activation="gelu")
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 1)).astype("float32")
    harness.run_model_saving_test(model, x, fresh_process=False, tmp_dir=str(tmp_path))  # stock layers only
    with pytest.raises(ValueError, match=r"normalization must be one of \('batch', 'group', 'layer', 'none'\)"):
        build_unet((8, 8, 1), 2, filters=(4,), norm="instance")
    with pytest.raises(ValueError, match=r"activation must be one of \('relu', 'elu', 'gelu', 'selu'"):
        build_unet((8, 8, 1), 2, filters=(4,), activation="leaky_relu")
