import json
import os

import numpy as np
import pytest

from apps import cli, image_segmenter
from toolkit.data.mask_writer import write_segmentation_folder
from toolkit.data.samples import digit_scenes
from toolkit.export import load
from toolkit.export.saved_model import function_has_xla


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny U-Net trained on 4 scenes (and scored on the same 4): it must overfit them."""
    root = tmp_path_factory.mktemp("seg")
    scenes = digit_scenes(4, image_size=24, objects=(1, 2), object_size=(10, 16), classes=[0, 1], seed=3)
    folder = write_segmentation_folder(scenes, str(root / "data"))
    # the 4 images repeated 50 times: 50 steps per epoch (Keras' per-epoch overhead dominates 1-step epochs)
    repeated = (np.repeat(scenes.images, 50, axis=0), np.repeat(scenes.masks, 50, axis=0), ["background", "0", "1"])
    run = image_segmenter.train(
        repeated, test_data=folder, epochs=4, batch_size=4, learning_rate=5e-3, filters="16,32", bottleneck=64,
        validation_split=0.0, patience=-1, augment="none", verbose=0, run_dir=str(root / "runs"), seed=0,
    )
    return run, folder, root, scenes


def test_tiny_unet_overfits_four_images(trained):
    run, _, _, _ = trained
    assert run.metrics["evaluated_on"] == "test"
    assert run.metrics["mean_iou"] >= 0.95, run.metrics
    assert set(run.metrics["per_class"]) == {"background", "0", "1"}
    # options given are kept: no automatic widths or batch (200 images at 4 are 50 steps anyway)
    assert (run.info["filters"], run.info["bottleneck"], run.info["batch_size"]) == ([16, 32], 64, 4)
    assert "filters_note" not in run.info and "batch_size_note" not in run.info
    assert os.path.isfile(os.path.join(run.run_dir, "model.keras"))


@pytest.fixture(scope="module")
def exported(trained):
    run, _, root, _ = trained
    return run.export(str(root / "exported"))


def test_export_round_trip_parity_and_masks_at_the_input_size(trained, exported):
    run, folder, root, scenes = trained
    path = exported
    predictor = load(path)
    meta = predictor.metadata
    assert meta["task"] == "semantic_segmentation" and meta["class_names"] == ["background", "0", "1"]
    assert max(meta["parity_max_abs_diff"]["saved_model"].values()) <= 1e-4
    # any input size: a 24x24 scene and the same scene upscaled to 48x36
    from PIL import Image

    big = np.asarray(Image.fromarray(scenes.images[0]).resize((36, 48), Image.NEAREST))
    out = predictor([_png(scenes.images[0]), _png(big)])
    assert out["masks"].shape == (2, 48, 36) and out["image_sizes"].tolist() == [[24, 24], [48, 36]]
    assert np.all(out["masks"][0, 24:] == -1)  # padding beyond the smaller image
    np.testing.assert_array_equal(out["masks"][0, :24, :24], scenes.masks[0])  # the overfit mask, exactly
    assert np.mean(out["masks"][1] == np.asarray(Image.fromarray(scenes.masks[0]).resize((36, 48), 0))) > 0.95
    assert "probabilities" not in out
    dense = predictor({"pixels": scenes.images[:2].astype("float32")}, signature="serving_dense")
    assert dense["probabilities"].shape == (2, 24, 24, 3)
    # evaluate from the export gives the run's numbers
    assert image_segmenter.evaluate(predictor, folder)["mean_iou"] == pytest.approx(run.metrics["mean_iou"], abs=1e-6)


def test_probabilities_on_request_and_tpu_target(trained):
    run, _, root, scenes = trained
    path = image_segmenter.export_run(run, str(root / "tpu"), target="tpu", probabilities=True, batch_size=2)
    assert function_has_xla(path)
    out = load(path)([_png(scenes.images[1])])
    assert out["probabilities"].shape == (1, 24, 24, 3)
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(out["masks"][0], out["probabilities"][0].argmax(-1))
    assert json.load(open(os.path.join(path, "assets.extra", "toolkit.json")))["batch_size"] == 2


def test_predict_writes_overlay_and_mask_pngs(trained, tmp_path):
    run, folder, _, scenes = trained
    image_file = os.path.join(folder, "images", sorted(os.listdir(os.path.join(folder, "images")))[0])
    [result] = image_segmenter.predict(run, [image_file], output_dir=str(tmp_path))
    assert result["size"] == [24, 24] and os.path.isfile(result["overlay"])
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(result["mask"])), scenes.masks[0])
    picture = np.asarray(Image.open(result["overlay"]))  # the overlay with a legend strip under it
    assert picture.shape[0] > 24 and picture.shape[1] >= 24 and picture.shape[2] == 3
    with pytest.raises(ValueError, match="nope.png"):
        image_segmenter.predict(run, [str(tmp_path / "nope.png")], output_dir=None)


def test_cli_evaluate_and_predict_an_export(trained, exported, capsys, tmp_path, monkeypatch):
    run, folder, _, _ = trained
    assert cli.main(["image-segmenter", "evaluate", exported, "--data", folder, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["mean_iou"] == pytest.approx(run.metrics["mean_iou"], abs=1e-6)
    monkeypatch.chdir(tmp_path)
    image_file = os.path.join(folder, "images", sorted(os.listdir(os.path.join(folder, "images")))[1])
    assert cli.main(["image-segmenter", "predict", exported, image_file]) == 0
    assert "overlay=predictions/" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "predictions")) == ["00001.mask.png", "00001.overlay.png"]


def test_cli_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["image-segmenter", "train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--filters", "--bottleneck", "--no-skip-connections", "--encoder", "--loss", "--augment",
                 "--export-probabilities"):
        assert flag in text


def _png(image):
    from toolkit.export import encode_png

    return encode_png(image)


def test_default_widths_and_batch_fit_a_small_set(tmp_path, capsys):
    """Issue 15 item 9: `filters=auto` gives 20 images the 16,32,64 U-Net with batch norm, and a batch of 4."""
    scenes = digit_scenes(20, image_size=16, objects=(1, 1), object_size=(8, 12), classes=[0, 1], seed=4)
    data = (scenes.images, scenes.masks, ["background", "0", "1"])
    run = image_segmenter.train(data, epochs=1, run_dir=str(tmp_path / "runs"), verbose=0, tensorboard=False)
    assert (run.info["filters"], run.info["bottleneck"], run.info["batch_size"]) == ([16, 32, 64], 128, 4)
    out = capsys.readouterr().err  # notes go to stderr: stdout is for --json
    assert "filters auto: 16,32,64 for 18 training images" in out and "batch_size 4 instead of the default 16" in out
    norms = [layer for layer in run.model.layers if layer.__class__.__name__ == "BatchNormalization"]
    assert len(norms) == 14 and {layer.momentum for layer in norms} == {0.9}  # 2 per block, 7 blocks
