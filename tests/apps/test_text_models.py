"""The text model registry's BERT recipe: values the user gave win, the recipe fills in the rest."""

from apps import text_classifier
from apps.base import explicit_options
from apps.text_models import bert_recipe


def test_explicit_values_win_over_the_recipe():
    config = text_classifier.APP.make_config(model="bert", learning_rate=1e-3, epochs=10)
    assert bert_recipe(config, explicit_options(text_classifier.Config, None, learning_rate=1e-3, epochs=10)) == (
        "full", 10, 1e-3)  # the generic defaults' values, but given explicitly
    assert bert_recipe(config, frozenset()) == ("full", 3, 3e-5)
    lora = text_classifier.APP.make_config(model="bert", fine_tuning="lora", epochs=2)
    assert bert_recipe(lora, explicit_options(text_classifier.Config, {"epochs": 2})) == ("lora", 2, 1e-3)
    given = text_classifier.Config(epochs=4)  # a Config instance: fields that differ from the defaults
    assert explicit_options(text_classifier.Config, given) == {"epochs"}
