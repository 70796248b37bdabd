"""Defaults fitted to the data (issue 15 item 9): the rules in `apps.auto` and the apps' default values."""

import pytest

from apps import cli
from apps.auto import SMALL_VALIDATION, auto_batch_size, auto_unet_widths
from apps.specs import image_classifier, image_segmenter


@pytest.mark.parametrize("num_train, requested, chosen", [
    (27, 64, 4),      # 3 classes x 10 images, 10% held out: 7 steps an epoch instead of 1
    (270, 64, 16),    # 17 steps instead of 5
    (540, 16, 16),    # already >= 16 steps: unchanged
    (5000, 64, 64),
    (27, 4, 4),       # never below 4 ...
    (10, 64, 4),
    (27, 3, 3),       # ... and never above what was asked
    (0, 64, 64),      # unknown size: unchanged
])
def test_auto_batch_size_gives_small_sets_enough_steps(num_train, requested, chosen):
    batch, note = auto_batch_size(num_train, requested)
    assert batch == chosen
    assert bool(note) == (chosen != requested)


def test_auto_batch_note_says_what_and_why():
    _, note = auto_batch_size(27, 64)
    assert note == ("batch_size 4 instead of the default 64: 27 training examples would give 1 step per epoch; "
                    "4 gives 7 (pass --batch-size to choose)")


def test_auto_unet_widths_by_training_set_size():
    assert auto_unet_widths(30) == ((16, 32, 64), 128)
    assert auto_unet_widths(1999) == ((16, 32, 64), 128)
    assert auto_unet_widths(2000) == ((32, 64, 128), 256)
    assert auto_unet_widths(20_000) == ((64, 128, 256), 512)  # the seed U-Net


def test_segmenter_defaults():
    config = image_segmenter.Config()
    assert (config.filters, config.bottleneck, config.batch_norm) == ("auto", 0, True)
    assert (config.learning_rate, config.lr_schedule, config.batch_size, config.epochs) == (2e-3, "cosine", 16, 10)
    assert image_classifier.Config().batch_size == 64


def test_help_matches_the_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["image-segmenter", "train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("16,32,64 under 2,000", "64,128,256 (the seed U-Net", "--no-batch-norm", "twice the deepest",
                   "fewer than 16 steps per epoch"):
        assert phrase in text, phrase
    with pytest.raises(SystemExit):
        cli.main(["image-classifier", "train", "--help"])
    assert "fewer than 16 steps per epoch" in " ".join(capsys.readouterr().out.split())


def test_small_validation_matches_the_few_examples_warning():
    from apps.results import FEW_EXAMPLES

    assert SMALL_VALIDATION == FEW_EXAMPLES == 20
