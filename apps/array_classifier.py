"""Classification of numeric arrays: sequences `(T, C)` with a Conv1D network, volumes `(D, H, W, C)` with a Conv3D one.

    from apps import array_classifier
    run = array_classifier.train("signals.npz", epochs=10)     # or a folder of class sub-folders of .npy files
    print(run.metrics["accuracy"], run.info["model"])          # held-out accuracy; "conv1d" for (T, C) samples
    path = run.export("savedmodels/signals")                    # float arrays in, scores / classes / labels out
    array_classifier.predict(path, ["walk_017.npy"])

The data forms are `toolkit.data.arrays`' (`.npz` with x, y[, class_names], or class folders of `.npy` files);
the rank of one sample picks the model (`toolkit.models.sequence.build_conv1d_classifier` /
`build_conv3d_classifier`). With `standardize` (the default) the model's first layer subtracts each channel's
training mean and divides by its standard deviation, so the export takes the raw values. The held-out data is
`validation_split` of the samples (seeded), or `test_data`; its metrics are the shared classification report
(accuracy, macro F1, per class, confusion matrix, ROC-AUC).
"""

from __future__ import annotations

import dataclasses
import os
import types

import keras
import numpy as np
import tensorflow as tf

from apps.base import App, merge_histories
from apps.classification import ClassificationOutputs
from apps.specs.array_classifier import ArrayClassifierSpec, Config  # noqa: F401  (public as apps.array_classifier.Config)
from toolkit.data import DataError
from toolkit.data.arrays import model_of, read_arrays, read_input_arrays, split
from toolkit.data.batching import steps_per_epoch
from toolkit.export import ServingAdapter
from toolkit.export.arrays import INPUT, array_classification_adapter
from toolkit.metrics import classification_report
from toolkit.models.sequence import build_conv1d_classifier, build_conv3d_classifier
from toolkit.training.optimizers import optimizer_of

DEFAULTS = {"conv1d": ((32, 64, 64), 5), "conv3d": ((16, 32), 3)}
EVAL_BATCH = 256


def parse_filters(text: str) -> tuple:
    """`"32,64"` -> `(32, 64)`; empty -> `()` (the model's default widths).

    >>> parse_filters("8, 16"), parse_filters("")
    ((8, 16), ())
    """
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"filters must be a comma list of positive integers. Received: filters={text!r}") from None
    if any(w < 1 for w in widths):
        raise ValueError(f"filters must be a comma list of positive integers. Received: filters={text!r}")
    return widths


def _batches(x, y, batch_size, shuffle=False, seed=None) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y.astype("int32")))
    if shuffle:
        ds = ds.shuffle(min(len(x), 10_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class ArrayClassifierApp(ArrayClassifierSpec, ClassificationOutputs, App):
    def validate(self, config) -> None:
        parse_filters(config.filters)
        if config.kernel_size < 0:
            raise ValueError(f"kernel_size must be >= 0 (0: the model's default). Received: "
                             f"kernel_size={config.kernel_size}")
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={config.dropout}")
        if not 0.0 <= config.validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1). Received: validation_split={config.validation_split}")

    # ---- data -----------------------------------------------------------------------------------------
    def load_data(self, data, config, test_data=None):
        arrays = read_arrays(data)
        model = model_of(arrays.sample_shape)
        if config.model not in ("auto", model):
            raise DataError(f"model={config.model!r} needs samples of shape {'(T, C)' if config.model == 'conv1d' else '(D, H, W, C)'}; "
                            f"{_source(data)} has samples of shape {arrays.sample_shape} ({model}); pass model=auto")
        train_idx, val_idx = split(arrays, config.validation_split, config.seed)
        if len(train_idx) == 0:
            raise DataError(f"{len(arrays.x)} sample(s) leave nothing to train on after validation_split="
                            f"{config.validation_split}")
        x_train, y_train = arrays.x[train_idx], arrays.y[train_idx]
        if len(np.unique(y_train)) < 2:
            raise DataError(f"the training split holds only one class ({arrays.class_names[int(y_train[0])]!r}); "
                            "give more samples of the other classes or lower validation_split")
        axes = tuple(range(x_train.ndim - 1))
        mean, variance = x_train.mean(axis=axes), x_train.var(axis=axes)
        info = {"class_names": arrays.class_names, "sample_shape": list(arrays.sample_shape)}
        test = self.eval_dataset(test_data, info, config) if test_data is not None else None
        validation = _batches(arrays.x[val_idx], arrays.y[val_idx], config.batch_size) if len(val_idx) else None
        return types.SimpleNamespace(
            train=_batches(x_train, y_train, config.batch_size, shuffle=True, seed=config.seed),
            validation=validation, test=test, class_names=arrays.class_names, num_classes=len(arrays.class_names),
            sample_shape=arrays.sample_shape, model=model, num_train=len(train_idx), num_validation=len(val_idx),
            standardization=(mean.astype("float64").tolist(), variance.astype("float64").tolist()))

    def eval_dataset(self, data, info, config=None):
        arrays = read_arrays(data, class_names=info.get("class_names"), sample_shape=info.get("sample_shape"))
        return _batches(arrays.x, arrays.y, getattr(config, "batch_size", EVAL_BATCH))

    # ---- model ----------------------------------------------------------------------------------------
    def build_model(self, ctx) -> keras.Model:
        data, config = ctx.data, ctx.config
        filters, kernel = DEFAULTS[data.model]
        build = build_conv1d_classifier if data.model == "conv1d" else build_conv3d_classifier
        return build(data.sample_shape, data.num_classes, filters=parse_filters(config.filters) or filters,
                     kernel_size=config.kernel_size or kernel, dropout=config.dropout,
                     normalization=data.standardization if config.standardize else None)

    def info(self, ctx) -> dict:
        data = ctx.data
        return {"class_names": data.class_names, "sample_shape": list(data.sample_shape), "model": data.model,
                "input": INPUT, "num_train": data.num_train, "num_validation": data.num_validation}

    def finish(self, run, ctx) -> None:
        """`model=auto` resolved from the data, so the export table's row of this run is its own."""
        run.config = dataclasses.replace(run.config, model=ctx.data.model)

    def load_run(self, run_dir: str, allow_unfinished: bool = False):
        run = super().load_run(run_dir, allow_unfinished=allow_unfinished)
        if run.config.model == "auto" and run.info.get("model"):
            run.config = dataclasses.replace(run.config, model=run.info["model"])
        return run

    def fit(self, model, ctx, callbacks) -> dict:
        data, config = ctx.data, ctx.config
        model.compile(optimizer=optimizer_of(config, steps_per_epoch=steps_per_epoch(data.train)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(data.train, validation_data=data.validation, epochs=config.epochs, callbacks=callbacks,
                            verbose=config.verbose, shuffle=False)  # the dataset shuffles
        return merge_histories(history)

    # ---- serving --------------------------------------------------------------------------------------
    def serving_adapter(self, run) -> ServingAdapter:
        return array_classification_adapter(run.model, run.info["class_names"])

    def score(self, predictor, dataset, info) -> dict:
        y_true, scores = [], []
        for x, y in dataset:
            scores.append(np.asarray(_dense(predictor, np.asarray(x))["scores"]))
            y_true.append(np.asarray(y))
        return classification_report(np.concatenate(y_true), np.concatenate(scores), info["class_names"])

    # ---- predict --------------------------------------------------------------------------------------
    def input_items(self, inputs) -> list:
        """One input (a path or one sample array) or a list of them."""
        if isinstance(inputs, (str, bytes, os.PathLike, np.ndarray)):
            return [inputs]
        return list(inputs)

    def _samples(self, items, info) -> list:
        pairs = [pair for index, item in enumerate(items) for pair in read_input_arrays(item, index)]
        shape = tuple(info.get("sample_shape") or ())
        for name, sample in pairs:
            if shape and sample.shape != shape:
                raise DataError(f"{name}: sample shape {sample.shape}, the model takes {shape}")
        if pairs and not shape and len({s.shape for _, s in pairs}) > 1:
            raise DataError(f"the inputs differ in shape: {pairs[0][0]} {pairs[0][1].shape}, "
                            f"{next(n for n, s in pairs if s.shape != pairs[0][1].shape)} has another")
        return pairs

    def raw_inputs(self, inputs, info) -> dict:
        return {INPUT: np.stack([sample for _, sample in self._samples(inputs, info)])}

    def predict(self, path_or_run, inputs, output_dir=None, top_k=None, score_threshold=None) -> list:
        """As `App.predict`; a `.npz` input gives one result per sample of its `x` (named `file.npz[x][i]`)."""
        from toolkit.export.edge import EdgePredictor

        predictor = self.predictor(path_or_run)
        pairs = self._samples(self.input_items(inputs), self._info_of(predictor))
        x = np.stack([s for _, s in pairs])
        # raw and dense inputs are the same float arrays; a .tflite / .onnx file has only the dense path
        outputs = (_dense(predictor, x) if isinstance(predictor, EdgePredictor)
                   else predictor({INPUT: x}, signature="serving_default"))
        results = self.format_predictions(outputs, [n for n, _ in pairs], top_k=top_k,
                                          labels=getattr(predictor, "labels", None))
        for (name, _), result in zip(pairs, results):
            result["input"] = name
        return results


def _source(data) -> str:
    return repr(os.fspath(data)) if isinstance(data, (str, os.PathLike)) else "the data"


def _dense(predictor, x) -> dict:
    """`serving_dense` on `x`, under the predictor's own input name (a quantized file scored by the accuracy
    guard knows no signature names; its runtime feeds inputs by position)."""
    specs = getattr(predictor, "input_specs", None)
    name = next(iter(specs("serving_dense"))) if callable(specs) else INPUT
    return predictor({name: x}, signature="serving_dense")


APP = ArrayClassifierApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
