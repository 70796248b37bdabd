import keras
import numpy as np
import pytest

from toolkit.layers import ImageNormalization


@pytest.mark.parametrize("mode,expected", [
    ("unit", [0.0, 1.0]),
    ("tf", [-1.0, 1.0]),
    ("none", [0.0, 255.0]),
])
def test_modes(mode, expected):
    out = ImageNormalization(mode)(np.array([[[[0.0], [255.0]]]], "float32"))
    np.testing.assert_allclose(np.ravel(out), expected, rtol=1e-6)


def test_torch_and_caffe_against_keras_applications():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    np.testing.assert_allclose(
        ImageNormalization("torch")(x), keras.applications.densenet.preprocess_input(x.copy()), atol=1e-4)
    np.testing.assert_allclose(
        ImageNormalization("caffe")(x), keras.applications.vgg16.preprocess_input(x.copy()), atol=1e-3)


def test_grey_to_rgb_and_config_round_trip():
    layer = ImageNormalization("unit", to_rgb=True)
    assert layer(np.ones((1, 2, 2, 1), "float32")).shape == (1, 2, 2, 3)
    clone = ImageNormalization.from_config(layer.get_config())
    assert (clone.mode, clone.to_rgb) == ("unit", True)
    with pytest.raises(ValueError, match="mode='bogus'"):
        ImageNormalization("bogus")
