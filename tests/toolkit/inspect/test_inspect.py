import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.inspect import (
    fgsm, first_layer_filters, grad_cam, gradient_ascent, gram_matrix, iterated_fgsm, occlusion_map, reconstruct,
    robustness_curve, style_transfer, top_activating, vgg16_trunk,
)
from toolkit.models.transfer import build_image_classifier


def _corner_model(size=16, corner=4):
    """Class 0 probability depends only on the top-left `corner` x `corner` pixels."""
    inputs = keras.Input((size, size, 1))
    x = keras.layers.Cropping2D(((0, size - corner), (0, size - corner)))(inputs)
    x = keras.layers.Flatten()(x)
    dense = keras.layers.Dense(2, activation="softmax", name="out")
    outputs = dense(x)
    kernel = np.zeros((corner * corner, 2), "float32")
    kernel[:, 0] = 0.02
    dense.set_weights([kernel, np.zeros(2, "float32")])
    return keras.Model(inputs, outputs)


def _blob_model():
    """Identity conv features -> GAP -> Dense: class 0 grows with brightness, class 1 with darkness."""
    inputs = keras.Input((16, 16, 1))
    conv = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="features")
    x = conv(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax", name="out")
    outputs = dense(x)
    kernel = np.zeros((3, 3, 1, 2), "float32")
    kernel[1, 1, 0, 0], kernel[1, 1, 0, 1] = 1.0, -1.0
    conv.set_weights([kernel, np.zeros(2, "float32")])
    dense.set_weights([np.array([[0.05, -0.05], [-0.05, 0.05]], "float32"), np.zeros(2, "float32")])
    return keras.Model(inputs, outputs)


def test_occlusion_lights_up_the_only_corner_the_model_looks_at(tmp_path):
    model = _corner_model()
    image = np.full((16, 16, 1), 100.0, "float32")
    result = occlusion_map(model, image, patch=4, stride=2, fill=0.0, path=str(tmp_path / "occ.png"))
    heat = result["map"]
    assert result["class_index"] == 0 and result["grid"].shape == (7, 7)
    assert np.all(heat[:4, :4] > 0.05)
    # zero up to float32 rounding of the probabilities (one ulp of 1.0 is 6e-8; the lit corner is > 0.05)
    np.testing.assert_allclose(heat[6:, :], 0.0, atol=1e-6)
    np.testing.assert_allclose(heat[:, 6:], 0.0, atol=1e-6)
    assert np.unravel_index(np.argmax(heat), heat.shape) < (4, 4)
    assert os.path.getsize(tmp_path / "occ.png") > 1000
    with pytest.raises(ValueError, match="patch and stride"):
        occlusion_map(model, image, patch=0)


def test_grad_cam_finds_the_blob_and_the_region_carries_the_class(tmp_path):
    model = _blob_model()
    image = np.zeros((16, 16, 1), "float32")
    image[9:13, 2:6] = 200.0
    result = grad_cam(model, image, class_index=0, layer="features", path=str(tmp_path / "cam.png"))
    cam = result["map"]
    assert cam.shape == (16, 16) and cam.max() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(cam), cam.shape)[0] in range(9, 13)
    assert cam[9:13, 2:6].mean() > 0.9 and cam[:8].max() == 0.0
    # Keeping only the Grad-CAM region keeps the class-0 score; keeping the rest loses it.
    keep = (cam > 0.5)[..., None]
    score = lambda x: float(model(x[None]).numpy()[0, 0])  # noqa: E731
    assert score(image * keep) == pytest.approx(score(image), abs=1e-6)
    assert score(image * ~keep) < score(image) - 0.05
    classifier = build_image_classifier((12, 12, 1), 3, width=2)
    default = grad_cam(classifier, np.random.default_rng(0).uniform(0, 255, (12, 12, 1)))
    assert default["map"].shape == (3, 3)


def test_gradient_ascent_increases_channel_and_class_objectives(tmp_path):
    keras.utils.set_random_seed(3)
    model = build_image_classifier((12, 12, 1), 3, width=2, dropout=0.0)
    channel = gradient_ascent(model, layer="backbone/stage2_a_conv", channel=1, steps=15, step_size=10.0,
                              path=str(tmp_path / "ga.png"))
    assert channel["objective"][-1] > channel["objective"][0] + 0.05
    assert channel["image"].shape == (12, 12, 1) and channel["image"].min() >= 0 and channel["image"].max() <= 255
    klass = gradient_ascent(model, class_index=2, steps=15, step_size=10.0)
    assert klass["objective"][-1] > klass["objective"][0] + 0.01
    assert os.path.isfile(tmp_path / "ga.png")


def test_top_activating_and_filters(tmp_path):
    model = _blob_model()
    brightness = np.array([10, 250, 30, 200, 90, 220], "float32")
    data = np.ones((6, 16, 16, 1), "float32") * brightness[:, None, None, None]
    top = top_activating(model, data, "features", channel=0, k=3, batch_size=4, path=str(tmp_path / "top.png"))
    assert top["indices"].tolist() == [1, 5, 3]
    np.testing.assert_allclose(top["scores"][0], 250.0 * 4 / 9 + 250.0 * 5 / 9 * 1.0, rtol=0.2)
    assert top["images"].shape == (3, 16, 16, 1)
    with pytest.raises(ValueError, match="channel must be in"):
        top_activating(model, data, "features", channel=5)
    filters = first_layer_filters(model, path=str(tmp_path / "filters.png"))
    assert filters.shape == (2, 3, 3, 1)
    assert filters[0, 1, 1, 0] == 1.0 and filters[1, 1, 1, 0] == 0.0 and filters[0, 0, 0, 0] == 0.0
    assert os.path.isfile(tmp_path / "filters.png")


def test_reconstruction_lowers_the_code_error(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_image_classifier((12, 12, 1), 3, width=2, dropout=0.0)
    image = np.random.default_rng(1).uniform(0, 255, (12, 12, 1)).astype("float32")
    result = reconstruct(model, image, "backbone/stage1_b_conv", steps=30, learning_rate=5.0,
                         path=str(tmp_path / "rec.png"))
    assert result["loss"][-1] < 0.5 * result["loss"][0]
    assert result["image"].shape == image.shape and os.path.isfile(tmp_path / "rec.png")


@pytest.fixture(scope="module")
def digits_model():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images[..., None] * (255.0 / 16.0)).astype("float32")
    y = bunch.target
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Rescaling(1 / 255.0), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1500], y[:1500], epochs=8, batch_size=64, verbose=0)
    return model, x[1500:], y[1500:]


def test_fgsm_lowers_accuracy_and_eps_zero_changes_nothing(digits_model, tmp_path):
    model, x, y = digits_model
    clean = np.mean(np.argmax(model.predict(x, verbose=0), -1) == y)
    assert clean > 0.85
    np.testing.assert_array_equal(fgsm(model, x, y, 0.0), x)
    adv = fgsm(model, x, y, 24.0)
    assert np.abs(adv - x).max() <= 24.0 + 1e-4 and adv.min() >= 0 and adv.max() <= 255
    iterated = iterated_fgsm(model, x, y, 24.0, steps=5)
    assert np.abs(iterated - x).max() <= 24.0 + 1e-4
    curve = robustness_curve(model, (x, y), epsilons=[0, 8, 24], method="both", steps=5,
                             path=str(tmp_path / "curve.png"))
    assert curve["fgsm"][0] == pytest.approx(clean) and curve["iterated"][0] == pytest.approx(clean)
    assert curve["fgsm"][2] < clean - 0.2 and curve["fgsm"][1] <= curve["fgsm"][0]
    assert curve["iterated"][2] <= curve["fgsm"][2] + 0.02
    assert "| 24 |" in curve["table"] and os.path.isfile(tmp_path / "curve.png")
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        fgsm(model, x, y, -1.0)


def test_gram_matrix_matches_numpy(rng):
    features = rng.normal(size=(2, 3, 5, 4)).astype("float32")
    for normalize in (False, True):
        gram = gram_matrix(features, normalize=normalize).numpy()
        for b in range(2):
            m = features[b].reshape(-1, 4).T  # (C, H*W), as in the notes
            expected = m @ m.T / (15 if normalize else 1)
            np.testing.assert_allclose(gram[b], expected, rtol=1e-5, atol=1e-5)


def test_style_loss_decreases_on_the_hed_vgg16_trunk(tmp_path):
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    content = tf.image.resize(china, (24, 24)).numpy()
    style = tf.image.resize(flower, (24, 24)).numpy()
    trunk = vgg16_trunk("hed")
    result = style_transfer(content, style, steps=4, trunk=trunk, path=str(tmp_path / "g.png"))
    assert result["style_loss"][-1] < 0.8 * result["style_loss"][0]
    assert np.all(np.diff(result["style_loss"]) < 0)
    assert result["content_loss"][0] == 0.0 and result["image"].dtype == np.uint8
    assert os.path.isfile(tmp_path / "g.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vgg16_trunk("/nope/vgg.h5")
