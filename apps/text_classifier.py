"""Text classification: CSV / class folders / TFDS / lists -> a SavedModel that takes raw sentences.

    from apps import text_classifier
    run = text_classifier.train("reviews.csv", model="lstm", text_column="review", label_column="stars")
    print(run.metrics["accuracy"])
    path = run.export("savedmodels/reviews")          # tf.string sentences in; scores, classes, labels out
    text_classifier.predict(path, ["what a film", "dull"])

Models come from the registry in `apps.text_models` (name -> `TextModel`: build, fit, adapter); add one with
`register_model("name", build)`.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from apps.base import App
from apps.specs.text_classifier import Config, TextClassifierSpec  # noqa: F401  (Config: public as apps.text_classifier.Config)
from apps.classification import ClassificationOutputs
from apps.text_models import MODELS, TextModel, fit_classifier, get_model, register_model  # noqa: F401
from toolkit.data import DataError
from toolkit.data.text import load_text_dataset, read_text_file
from toolkit.metrics import classification_report


class TextClassifierApp(TextClassifierSpec, ClassificationOutputs, App):
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

    def validate(self, config) -> None:
        get_model(config.model)


    def info(self, ctx) -> dict:
        data, config = ctx.data, ctx.config
        return {"class_names": data.class_names, "model": config.model, "num_train": data.num_train,
                "text_column": config.text_column, "label_column": config.label_column, "encoding": config.encoding,
                "sample_texts": [str(t)[:200] for t in data.train_texts[:3]]}

    def build_model(self, ctx) -> keras.Model:
        return get_model(ctx.config.model).build(ctx.data, ctx.config)

    def fit(self, model, ctx, callbacks) -> dict:
        return (get_model(ctx.config.model).fit or fit_classifier)(model, ctx, callbacks)

    def finish(self, run, ctx) -> None:
        from apps.lora_tasks import record_metrics

        record_metrics(run, ctx)  # a lora bert run's adapter.npz carries its held-out metrics

    def export_adapter(self, run, target, formats, lora_adapter=None, **options):
        """`lora_adapter=FILE`: another `--fine-tuning lora` run's `adapter.npz` (same base) merged in instead of
        this run's own (`apps.lora_tasks`): one base, many tasks, each exported as a version of a served model."""
        if not lora_adapter:
            return super().export_adapter(run, target, formats, **options)
        from apps.lora_tasks import swap_run_adapter

        given = sorted(k for k, v in options.items() if v is not None)
        if given:
            raise ValueError(f"{self.name} export takes no option(s) {given}")
        swap_run_adapter(run, lora_adapter)  # the Run now computes that task (a fresh serving adapter, too)
        return run.adapter

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
                item = read_text_file(item, info.get("encoding", "utf-8"))
            texts.append(item)
        return {"text": texts}


def _eval_batches(texts, labels, batch_size):
    return tf.data.Dataset.from_tensor_slices((np.asarray(texts).astype(str), np.asarray(labels))).batch(batch_size)


APP = TextClassifierApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
