"""Task specs are light copies of a few toolkit names (so `--help` needs no TensorFlow): they must agree."""

import dataclasses

import pytest

from apps import cli
from apps.specs import image_segmenter, object_detector, text_classifier, vae


def test_spec_choices_match_the_toolkit():
    from apps import text_models
    from toolkit.models import vae as vae_models
    from toolkit.training import distribution, segmentation_losses

    assert image_segmenter.LOSSES == segmentation_losses.LOSSES
    assert (vae.ARCHITECTURES, vae.LIKELIHOODS) == (vae_models.ARCHITECTURES, vae_models.LIKELIHOODS)
    assert set(text_classifier.MODELS) <= set(text_models.MODELS)
    builtin = {name for name, model in text_models.MODELS.items() if not name.startswith("my-")}
    assert set(text_classifier.MODELS) == builtin
    assert distribution.STRATEGIES == ("auto", "one-device", "mirrored", "multi-worker", "tpu")


@pytest.mark.parametrize("task", sorted(cli.TASKS))
def test_every_app_is_its_spec_plus_the_work(task):
    spec, app = cli.task_spec(task), cli.task_app(task)
    assert isinstance(app, type(spec)) and app.name == spec.name == task
    assert app.config_cls is spec.config_cls and app.description == spec.description
    assert app.kinds() == spec.kinds()


def test_kinds_name_every_model_family():
    assert object_detector.SPEC.kinds() == ["object-detector/yolo", "object-detector/ssd"]
    config = dataclasses.replace(text_classifier.Config(), model="gru")
    assert text_classifier.SPEC.kind(config) == "text-classifier/gru"
    assert vae.SPEC.kinds() == ["vae"]


def test_the_classifier_help_names_every_builtin_backbone():
    from apps.specs.image_classifier import Config
    from toolkit.models.transfer.backbones import VISION_BACKBONES

    text = {f.name: f for f in dataclasses.fields(Config)}["backbone"].metadata["help"]
    assert all(name in text for name in VISION_BACKBONES)
