"""`--training auto`: the notes' table by training-set size, its printed reason, and what the run keeps."""

import json
import os

import numpy as np
import pytest

from apps import image_classifier
from apps.fine_tuning import auto_training, is_pretrained
from tests.apps.test_image_classifier import TINY, write_folder


@pytest.mark.parametrize("count, mode, layers, words", [
    (999, "head", None, "< 1K images: feature extraction only"),
    (1_000, "fine-tune", None, "1K-10K images: fine-tune the top layers"),
    (9_999, "fine-tune", None, "1K-10K images"),
    (10_000, "fine-tune", -1, "10K-100K images: fine-tune all layers with a small learning rate"),
    (100_000, "fine-tune", -1, "10K-100K images"),
    (100_001, "scratch", None, "> 100K images"),
])
def test_band_boundaries_and_reasons(count, mode, layers, words):
    got_mode, got_layers, reason = auto_training(count, pretrained=True)
    assert (got_mode, got_layers) == (mode, layers)
    assert reason.startswith(f"{count:,} training images -> ") and words in reason


def test_no_pretrained_weights_trains_from_scratch():
    assert not is_pretrained("small_cnn", "") and is_pretrained("MobileNet", "imagenet")
    assert is_pretrained("runs/x/model.keras", "")
    mode, _, reason = auto_training(500, pretrained=False)
    assert mode == "scratch" and "no pretrained weights" in reason


def test_a_pretrained_backbone_of_few_images_is_feature_extraction(tmp_path, capsys):
    """A .keras backbone (pretrained) and 20 images: auto picks the head only, says so, and the backbone's
    weights do not move; the choice is in info.json and config.json's "resolved"."""
    from toolkit.models.transfer import build_image_classifier

    folder = write_folder(str(tmp_path / "data"), per_class=10)
    pretrained = build_image_classifier((12, 12, 1), 2, width=4, dense_units=16)  # stands in for a trained net
    pretrained.save(tmp_path / "pretrained.keras")
    run = image_classifier.train(folder, run_dir=str(tmp_path / "runs"), backbone=str(tmp_path / "pretrained.keras"),
                                 **{**TINY, "epochs": 1}, fine_tune_epochs=1)
    out = capsys.readouterr().err
    assert "--training auto: 18 training images -> head (the notes' table: < 1K images: feature extraction" in out
    assert run.info["training"] == "head" and "feature extraction" in run.info["training_reason"]
    with open(os.path.join(run.run_dir, "config.json")) as f:
        record = json.load(f)
    assert record["training"] == "auto" and record["resolved"]["training"]["mode"] == "head"
    assert len(run.history["loss"]) == 1  # no fine-tune phase
    for got, want in zip(run.model.get_layer("backbone").get_weights(),
                         pretrained.get_layer("backbone").get_weights()):
        np.testing.assert_array_equal(got, want)  # feature extraction: the backbone never moved
