"""Image classification with transfer learning: folder / arrays / tf.data / TFDS -> served-ready SavedModel.

    from apps import image_classifier
    run = image_classifier.train("data/flowers", epochs=10)      # or (x, y), a tf.data.Dataset, "tfds:NAME"
    print(run.metrics["accuracy"])
    path = run.export("savedmodels/flowers")                     # raw image bytes in, labels out
    image_classifier.predict(path, ["rose.jpg"])
"""

from __future__ import annotations

import json
import os
import sys

import keras
import numpy as np

from apps.auto import apply_auto_batch, early_stopping_context
from apps.config import record_resolved
from apps.fine_tuning import auto_training, is_pretrained
from apps.base import App, merge_histories
from apps.specs.image_classifier import Config, ImageClassifierSpec  # noqa: F401  (Config: public as apps.image_classifier.Config)
from apps.classification import ClassificationOutputs, mc_dropout_results
from toolkit.data import build_augmentation, load_image_dataset
from toolkit.data.images import as_image_list, encode_image_inputs, parse_image_size
from toolkit.export import image_classification_adapter, random_samples
from toolkit.export.image import with_mc_dropout_signature
from toolkit.metrics import classification_report
from toolkit.models.transfer import (
    build_image_classifier,
    freeze_backbone,
    get_backbone,
    unfreeze_top_layers,
    validate_backbone,
)
from toolkit.training.fault_tolerance import read_json
from toolkit.training import CyclicalLearningRate, SmoothedSparseCategoricalCrossentropy, apply_weight_regularization
from toolkit.training.lr_schedules import parse_lr_range, parse_multipliers
from toolkit.training.optimizers import optimizer_of



class ImageClassifierApp(ImageClassifierSpec, ClassificationOutputs, App):
    phase_names = ("fine-tune",)  # phase 2 of training="fine-tune" unfreezes the top backbone layers

    def load_data(self, data, config, test_data=None):
        size = parse_image_size(config.image_size)
        dataset = load_image_dataset(
            data, image_size=size, channels=config.channels or None, validation_split=config.validation_split,
            batch_size=config.batch_size, seed=config.seed, strict=config.strict,
        )
        dataset.test = None
        if test_data is not None:
            dataset.test = self.eval_dataset(test_data, {"image_shape": dataset.image_shape,
                                                          "class_names": dataset.class_names}, config)
        return dataset

    def validate(self, config) -> None:
        validate_backbone(config.backbone)
        from toolkit.models.transfer.backbones import validate_norm_options

        validate_norm_options(config.backbone, config.norm, config.activation)  # --norm / --activation

    def prepare(self, model, ctx) -> None:
        """A batch size that gives a small training set enough steps per epoch, unless the user set one
        (`apps.auto.auto_batch_size`: 30 images at the default 64 would be 1 step an epoch); `--training auto`
        resolved by the training-set size (`apps.fine_tuning`)."""
        apply_auto_batch(ctx, self.name)
        _resolve_training(ctx, self.name)

    def info(self, ctx) -> dict:
        data = ctx.data
        info = {"class_names": data.class_names, "image_shape": list(data.image_shape),
                "num_train": data.num_train, "skipped_files": data.skipped,
                "batch_size": ctx.state.get("batch_size", ctx.config.batch_size)}
        if ctx.state.get("batch_size_note"):
            info["batch_size_note"] = ctx.state["batch_size_note"]
        if ctx.state.get("training_reason"):
            info.update(training=ctx.state["training"], training_reason=ctx.state["training_reason"])
        return info

    def build_model(self, ctx) -> keras.Model:
        data, config = ctx.data, ctx.config
        augmentation = _augmentation(config)
        model = build_image_classifier(
            data.image_shape, data.num_classes, backbone=config.backbone, weights=config.weights or None,
            dense_units=config.dense_units, dropout=config.dropout, augmentation=augmentation, width=config.width,
            head_experts=config.head_experts, backbone_side=config.backbone_side or None,
            norm=config.norm, activation=config.activation,
        )
        if config.l2:
            apply_weight_regularization(model, l2=config.l2)
        return model

    def callbacks(self, ctx) -> list:
        return super().callbacks(early_stopping_context(ctx, self.name))

    def fit(self, model, ctx, callbacks) -> dict:
        data, config = ctx.data, ctx.config
        mode = ctx.state.get("training") or _resolve_training(ctx, self.name)
        fine_tune_layers = ctx.state.get("fine_tune_layers", config.fine_tune_layers)
        steps = max(1, -(-data.num_train // ctx.state.get("batch_size", config.batch_size)))
        if mode in ("head", "fine-tune"):
            freeze_backbone(model)
        self._compile(model, config, config.learning_rate, steps * config.epochs, bounds=parse_lr_range(config.lr_range))
        first = model.fit(data.train, validation_data=data.validation, epochs=config.epochs,
                          callbacks=callbacks, verbose=config.verbose, shuffle=False)
        second = None
        if mode == "fine-tune" and config.fine_tune_epochs > 0 and fine_tune_layers != 0:
            unfreeze_top_layers(model, fine_tune_layers)
            self._compile(model, config, config.fine_tune_learning_rate, steps * config.fine_tune_epochs)
            second = model.fit(data.train, validation_data=data.validation, epochs=config.fine_tune_epochs,
                               callbacks=callbacks, verbose=config.verbose, shuffle=False)
        return merge_histories(first, second)

    def finish(self, run, ctx) -> None:
        """Two-phase runs mark their phases: `history["phase"]` (1 = head, 2 = fine-tune; a column of
        history.csv, a labelled line on history.png) and `info["fine_tune_from_epoch"]`."""
        if not run.run_dir or not run.history:
            return
        states = [read_json(os.path.join(run.run_dir, "checkpoints", f"phase{k}", "state.json")) for k in (1, 2)]
        if states[1] is None or not states[1].get("history"):
            return
        head = len(states[0]["history"])
        total = max(len(v) for v in run.history.values())
        run.history["phase"] = [1] * head + [2] * (total - head)
        run.info["fine_tune_from_epoch"] = head + 1
        with open(os.path.join(run.run_dir, "info.json"), "w") as f:
            json.dump(run.info, f, indent=2, default=str)

    def _compile(self, model, config, learning_rate, total_steps, bounds=None):
        """`bounds`: the cyclical schedule's (low, high) of phase 1 (`--lr-range`); phase 2 cycles below its
        own small rate. `--lr-multipliers` wraps the optimiser (`toolkit.training.discriminative`)."""
        if config.lr_schedule == "cyclical":
            low, high = bounds or (learning_rate / 10, learning_rate)
            rate = CyclicalLearningRate(low, high, step_size=max(1, total_steps // 4))
        elif config.lr_schedule == "cosine":
            rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, total_steps))
        else:
            rate = learning_rate
        loss = (SmoothedSparseCategoricalCrossentropy(config.label_smoothing) if config.label_smoothing
                else keras.losses.SparseCategoricalCrossentropy())
        optimizer = optimizer_of(config, rate)
        if parse_multipliers(config.lr_multipliers):
            from toolkit.training.discriminative import DiscriminativeOptimizer, backbone_multipliers

            optimizer = DiscriminativeOptimizer(optimizer, backbone_multipliers(
                model, get_backbone(model), parse_multipliers(config.lr_multipliers)))
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])

    def serving_adapter(self, run):
        adapter = image_classification_adapter(
            run.model, run.info["class_names"], sample_images=random_samples(run.info["image_shape"])
        )
        if getattr(run.config, "mc_samples", 0):
            with_mc_dropout_signature(adapter, run.config.mc_samples)
        return adapter

    def predict(self, path_or_run, inputs, output_dir=None, top_k=None, score_threshold=None,
                mc_samples: int | None = None) -> list:
        """As `App.predict`; with `mc_samples=T`, MC dropout: `label` / `score` / `scores` from the mean class
        probabilities over T passes with dropout on, and `variance` (per class) and `mc_samples` added (a Run
        computes it at any T; an export runs its `mc_dropout` signature, whose T was fixed at export)."""
        if not mc_samples:
            return super().predict(path_or_run, inputs, output_dir=output_dir, top_k=top_k)
        return mc_dropout_results(self, path_or_run, inputs, int(mc_samples), top_k=top_k)

    def eval_dataset(self, data, info, config=None):
        shape = tuple(info["image_shape"])
        dataset = load_image_dataset(
            data, image_size=shape[:2], channels=shape[2], class_names=info.get("class_names"),
            validation_split=0.0, batch_size=getattr(config, "batch_size", 128), shuffle=False,
        )
        return dataset.train

    def score(self, predictor, dataset, info) -> dict:
        y_true, scores = [], []
        for images, labels in dataset:
            scores.append(predictor({"pixels": images.numpy()}, signature="serving_dense")["scores"])
            y_true.append(labels.numpy())
        return classification_report(np.concatenate(y_true), np.concatenate(scores), info["class_names"])

    def input_items(self, inputs) -> list:
        return as_image_list(inputs)

    def raw_inputs(self, inputs, info) -> dict:
        return {"images": encode_image_inputs(inputs)}


def _resolve_training(ctx, app_name: str) -> str:
    """`ctx.state["training"]`: the mode `fit` runs; for `--training auto`, chosen by `apps.fine_tuning` from the
    training-set size (printed with its reason, kept in info.json and RUN_DIR/config.json's "resolved")."""
    config = ctx.config
    if config.training != "auto":
        ctx.state["training"] = config.training
        return config.training
    mode, layers, reason = auto_training(int(getattr(ctx.data, "num_train", 0) or 0),
                                         is_pretrained(config.backbone, config.weights))
    if layers is not None and "fine_tune_layers" not in ctx.explicit:
        ctx.state["fine_tune_layers"] = layers
    ctx.state.update(training=mode, training_reason=reason)
    print(f"{app_name}: --training auto: {reason}", file=sys.stderr, flush=True)  # stdout stays for --json
    record_resolved(ctx.run_dir, "training", {"mode": mode, "fine_tune_layers": ctx.state.get(
        "fine_tune_layers", config.fine_tune_layers), "reason": reason})
    return mode


def _augmentation(config):
    ops = [op.strip() for op in config.augment.split(",") if op.strip() and op.strip() != "none"]
    unknown = set(ops) - {"flip", "translate", "brightness", "contrast"}
    if unknown:
        raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; use flip, translate, brightness, contrast")
    if not ops:
        return None
    return build_augmentation(
        flip="horizontal" if "flip" in ops else None, translate=0.1 if "translate" in ops else 0.0,
        brightness=0.1 if "brightness" in ops else 0.0, contrast=0.1 if "contrast" in ops else 0.0,
        seed=config.seed,
    )




APP = ImageClassifierApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
