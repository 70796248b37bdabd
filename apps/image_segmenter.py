"""Semantic segmentation with a U-Net: image + mask folders / arrays / TFDS -> served-ready SavedModel.

    from apps import image_segmenter
    run = image_segmenter.train("data/scenes/train", test_data="data/scenes/test", epochs=20)
    print(run.metrics["mean_iou"])
    path = run.export("savedmodels/scenes")                  # image bytes in, class mask at the input size out
    image_segmenter.predict(path, ["scene.png"])             # writes coloured overlay + mask PNGs
"""

from __future__ import annotations

import logging
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from apps.auto import apply_auto_batch, auto_unet_widths, early_stopping_context
from apps.base import App, Run, input_name, merge_histories, output_stem
from apps.specs.image_segmenter import Config, ImageSegmenterSpec  # noqa: F401  (Config: public as apps.image_segmenter.Config)
from toolkit.data.images import as_image_list, encode_image_inputs, parse_image_size
from toolkit.data.mask_writer import overlay, with_legend
from toolkit.data.masks import build_joint_augmentation, default_palette, load_segmentation_dataset, to_arrays
from toolkit.data.masks import pairs_to_dataset
from toolkit.export import encode_png, random_samples
from toolkit.export.segmentation import segmentation_adapter
from toolkit.metrics.segmentation import confusion_matrix, format_segmentation_report, segmentation_metrics
from toolkit.metrics.segmentation import segmentation_report
from toolkit.models.transfer import validate_backbone
from toolkit.models.unet import build_unet
from toolkit.training.segmentation_losses import get_segmentation_loss
from toolkit.data.batching import steps_per_epoch
from toolkit.training.optimizers import optimizer_of

logger = logging.getLogger(__name__)


class ImageSegmenterApp(ImageSegmenterSpec, App):
    def load_data(self, data, config, test_data=None):
        dataset = load_segmentation_dataset(
            data, image_size=parse_image_size(config.image_size), channels=config.channels or None,
            class_names=_names(config.class_names), validation_split=config.validation_split,
            batch_size=config.batch_size, seed=config.seed,
            augment=build_joint_augmentation(config.augment, seed=config.seed),
        )
        if test_data is not None:
            dataset.test = self.eval_dataset(test_data, {"image_shape": dataset.image_shape,
                                                          "class_names": dataset.class_names,
                                                          "palette": dataset.palette}, config)
        return dataset

    def validate(self, config) -> None:
        if str(config.filters).strip() != "auto":
            _ints(config.filters)
        if config.encoder:
            validate_backbone(config.encoder, option="encoder")
        from toolkit.models.vision.resnet import check_options

        check_options(config.norm or "batch", config.activation)  # --norm / --activation, before any data is read

    def info(self, ctx) -> dict:
        data, state = ctx.data, ctx.state
        info = {"class_names": data.class_names, "image_shape": list(data.image_shape), "palette": data.palette,
                "num_train": data.num_train, "filters": state.get("filters"), "bottleneck": state.get("bottleneck"),
                "batch_size": state.get("batch_size", ctx.config.batch_size)}
        info.update({k: state[k] for k in ("filters_note", "batch_size_note") if state.get(k)})
        return info

    def widths(self, ctx) -> tuple:
        """`(filters, bottleneck)`: the configured ones, `auto` resolved by the number of training images
        (`apps.auto.UNET_WIDTHS`), bottleneck 0 = twice the deepest encoder width."""
        config, num_train = ctx.config, ctx.data.num_train
        if str(config.filters).strip() == "auto" and not config.encoder:
            filters, bottleneck = auto_unet_widths(num_train)
            ctx.state["filters_note"] = (f"filters auto: {','.join(map(str, filters))} for {num_train} training "
                                         "images (pass --filters to choose; 64,128,256 --bottleneck 512 is the seed)")
        elif str(config.filters).strip() == "auto":  # a pretrained encoder: its decoder widths are its own
            filters, bottleneck = list(auto_unet_widths(num_train)[0]), None
        else:
            filters, bottleneck = _ints(config.filters), None
        bottleneck = config.bottleneck or bottleneck or 2 * filters[-1]
        return list(filters), int(bottleneck)

    def build_model(self, ctx) -> keras.Model:
        data, config = ctx.data, ctx.config
        filters, bottleneck = self.widths(ctx)
        ctx.state.update(filters=filters, bottleneck=bottleneck)
        if ctx.state.get("filters_note"):
            print(f"{self.name}: {ctx.state['filters_note']}", file=sys.stderr, flush=True)
            logger.info("%s: %s", self.name, ctx.state["filters_note"])
        return build_unet(
            data.image_shape, data.num_classes, filters=filters, bottleneck=bottleneck,
            convs_per_block=config.convs_per_block, batch_norm=config.batch_norm, dropout=config.dropout,
            downsampling=config.downsampling, skip_connections=config.skip_connections,
            encoder=config.encoder or None, encoder_weights=config.encoder_weights or None,
            freeze_encoder=config.freeze_encoder, norm=config.norm or None, activation=config.activation,
        )

    def prepare(self, model, ctx) -> None:
        """A batch size that gives a small training set enough steps per epoch, unless the user set one."""
        apply_auto_batch(ctx, self.name)

    def callbacks(self, ctx) -> list:
        return super().callbacks(early_stopping_context(ctx, self.name))

    def fit(self, model, ctx, callbacks) -> dict:
        data, config = ctx.data, ctx.config
        model.compile(optimizer=optimizer_of(config, steps_per_epoch=steps_per_epoch(data.train)),
                      loss=get_segmentation_loss(config.loss),
                      metrics=segmentation_metrics(data.num_classes))
        history = model.fit(data.train, validation_data=data.validation, epochs=config.epochs, callbacks=callbacks,
                            verbose=config.verbose, shuffle=False)  # the pipeline shuffles itself
        return merge_histories(history)

    def serving_adapter(self, run, probabilities: bool | None = None):
        if probabilities is None:
            probabilities = bool(getattr(run.config, "export_probabilities", False))
        shape = run.info["image_shape"]
        samples = random_samples(shape, sizes=[shape[:2], (shape[0] + 7, shape[1] // 2 + 3)])
        return segmentation_adapter(run.model, run.info["class_names"], sample_images=samples,
                                    probabilities=probabilities, palette=run.info.get("palette"))

    def eval_dataset(self, data, info, config=None):
        shape = tuple(info["image_shape"])
        x, y, _, _ = to_arrays(data, image_size=shape[:2], channels=shape[2], class_names=info["class_names"],
                               palette=info.get("palette"))
        return pairs_to_dataset(x, y, getattr(config, "batch_size", 32))

    def score(self, predictor, dataset, info) -> dict:
        names = info["class_names"]
        matrix = np.zeros((len(names), len(names)), np.int64)
        for images, masks in dataset:
            predicted = predictor({"pixels": images.numpy()}, signature="serving_dense")["masks"]
            matrix += confusion_matrix(masks.numpy(), predicted, len(names))
        return segmentation_report(class_names=names, matrix=matrix)

    def input_items(self, inputs) -> list:
        return as_image_list(inputs)

    def raw_inputs(self, inputs, info) -> dict:
        return {"images": encode_image_inputs(inputs)}

    def predict_masks(self, path_or_run, inputs) -> list:
        """Class masks (int32 `[H, W]`, each at its input's size) for raw inputs (paths, bytes, arrays)."""
        return self._masks(self.predictor(path_or_run), inputs)

    def _masks(self, predictor, inputs) -> list:
        outputs = predictor(self.raw_inputs(inputs, self._info_of(predictor)), signature="serving_default")
        return [mask[: h, : w] for mask, (h, w) in zip(outputs["masks"], outputs["image_sizes"])]

    def predict(self, path_or_run, inputs, output_dir: str | None = None, top_k=None, score_threshold=None) -> list:
        """Segments raw inputs; writes `<name>.overlay.png` and `<name>.mask.png` (class ids) to `output_dir`.

        Returns one dict per input: `input`, `size` (height, width), `class_fractions` (share of pixels per
        predicted class) and, when `output_dir` is set, the `overlay` and `mask` PNG paths.
        """
        predictor = self.predictor(path_or_run)
        info = self._info_of(predictor)
        items = self.input_items(inputs)
        masks = self._masks(predictor, items)
        names = info.get("class_names") or predictor.labels
        palette = np.asarray(info.get("palette") or default_palette(len(names)), np.uint8)
        results = []
        for index, (item, mask) in enumerate(zip(items, masks)):
            counts = np.bincount(mask.reshape(-1), minlength=len(names))
            result = {"input": input_name(item, index), "size": [int(mask.shape[0]), int(mask.shape[1])],
                      "class_fractions": {names[k]: round(float(c) / mask.size, 4) for k, c in enumerate(counts) if c}}
            if output_dir:
                os.makedirs(output_dir, exist_ok=True)
                stem = output_stem(item, index)
                image = tf.io.decode_image(encode_image_inputs([item])[0], channels=3, expand_animations=False).numpy()
                result["overlay"] = _write_png(overlay(image, mask, palette, class_names=names), output_dir,
                                               f"{stem}.overlay.png")
                result["mask"] = _write_png(mask.astype(np.uint8), output_dir, f"{stem}.mask.png")
            results.append(result)
        return results

    def draw_samples(self, run, held_out, plots) -> None:
        """`samples/overlay_<i>.png` for a few held-out images: truth | prediction, with a legend (one forward
        pass on one batch, not a re-evaluation)."""
        names = run.info["class_names"]
        palette = np.asarray(run.info.get("palette") or default_palette(len(names)), np.uint8)
        images, masks = next(iter(held_out.take(1)))
        images, masks = images.numpy()[:SAMPLES], masks.numpy()[:SAMPLES]
        predicted = self.predictor(run)({"pixels": images}, signature="serving_dense")["masks"]
        folder = os.path.join(run.run_dir, "samples")
        os.makedirs(folder, exist_ok=True)
        for i, (image, truth, guess) in enumerate(zip(images, masks, np.asarray(predicted))):
            truth, guess = truth.reshape(guess.shape).astype(np.int64), guess.astype(np.int64)
            gap = np.full((image.shape[0], 2, 3), 255, np.uint8)
            pair = np.concatenate([overlay(image, truth, palette), gap, overlay(image, guess, palette)], axis=1)
            picture = with_legend(pair, names, palette, ids=np.union1d(np.unique(truth), np.unique(guess)))
            plots[f"sample_{i}"] = _write_png(picture, folder, f"overlay_{i}.png")

    def summary(self, metrics) -> str:
        return format_segmentation_report(metrics) if "per_class" in metrics else super().summary(metrics)

    def export_run(self, run: Run, directory: str, target: str = "cpu", probabilities: bool = False, **kwargs) -> str:
        """`run.export` with the raw signature also returning per-class `probabilities` when asked."""
        return run.export(directory, target=target, adapter=self.serving_adapter(run, probabilities=probabilities),
                          **kwargs)


SAMPLES = 4  # held-out images drawn into the run directory


def _write_png(array, folder, name):
    path = os.path.join(folder, name)
    tf.io.write_file(path, encode_png(array))
    return path


def _ints(text: str):
    try:
        return [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"filters must be a comma list of integers (e.g. 64,128,256). Received: {text!r}") from None


def _names(text: str):
    names = [n.strip() for n in str(text or "").split(",") if n.strip()]
    return names or None


APP = ImageSegmenterApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
predict_masks = APP.predict_masks
export_run = APP.export_run
