"""Object detection (YOLO or SSD): COCO / VOC / YOLO annotations -> SavedModel with NMS inside.

    from apps import object_detector
    run = object_detector.train("data/coco.json", model="yolo", epochs=40)    # or a VOC / YOLO folder
    print(run.metrics["map_50"], run.metrics["map"])
    path = run.export("savedmodels/digits", formats=("saved_model", "tflite", "onnx"))
    object_detector.predict(path, ["street.jpg"])     # boxes in the image's pixels; drawn PNGs saved
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from apps.base import App, Run, merge_histories, output_stem, text_of
from apps.specs.object_detector import Config, ObjectDetectorSpec  # noqa: F401  (Config: public as apps.object_detector.Config)
from toolkit.data.annotations import DetectionData, detection_dataset, load_detections
from toolkit.data.box_augment import augment_example
from toolkit.data import DataError
from toolkit.data.images import as_image_list, encode_image_inputs, parse_image_size
from toolkit.export.detection import detection_adapter, sample_images
from toolkit.metrics.detection import coco_map, format_map, pr_curves
from toolkit.metrics.plots import plot_pr_curves
from toolkit.models.detection import (
    SSDLoss, SSDMatcher, YoloEncoder, YoloLoss, build_ssd, build_yolo, cell_anchors, kmeans_anchors,
    ssd_default_boxes, ssd_detect, yolo_detect,
)
from toolkit.models.detection.ssd import feature_sizes_of
from toolkit.models.transfer import validate_backbone
from toolkit.training.optimizers import optimizer_of

logger = logging.getLogger(__name__)
EVAL_SCORE_THRESHOLD = 0.01
SAMPLES = 4  # held-out images drawn into the run directory
SSD_RATIOS = (1.0, 2.0, 0.5, 3.0, 1 / 3)


@dataclasses.dataclass
class DetectionTask:
    data: DetectionData
    held_out: DetectionData | None
    test_data: DetectionData | None
    image_size: tuple
    train: object = None
    validation: object = None  # ragged (images, boxes, classes) batches for scoring
    fit_validation: object = None  # encoded batches for the validation loss
    test: object = None
    anchors: list | None = None
    ssd: dict | None = None


class ObjectDetectorApp(ObjectDetectorSpec, App):
    def load_data(self, data, config, test_data=None):
        size = parse_image_size(config.image_size)
        fmt = None if config.format == "auto" else config.format
        full = load_detections(data, fmt, strict=config.strict)
        if not len(full):
            raise DataError(f"no images in the detection data {data!r}")
        train, held_out = full.split(config.validation_split, seed=config.seed) if config.validation_split else (
            full, None)
        test = load_detections(test_data, fmt, strict=config.strict) if test_data is not None else None
        if test is not None and test.class_names != full.class_names:
            raise DataError(f"test classes {test.class_names} differ from training classes {full.class_names}")
        task = DetectionTask(train, held_out, test, size)
        if config.model == "yolo":
            boxes = _scaled_boxes(train, size)
            task.anchors = kmeans_anchors(boxes[:, 2:] - boxes[:, :2], config.anchors, seed=config.seed).tolist()
        return task

    def validate(self, config) -> None:
        if config.backbone != "builtin":
            validate_backbone(config.backbone)


    def info(self, ctx) -> dict:
        data, config = ctx.data, ctx.config
        return {"class_names": list(data.data.class_names), "image_shape": [*data.image_size, config.channels],
                "model": config.model, "anchors": data.anchors, "ssd": data.ssd, "num_train": len(data.data),
                "nms": {"score_threshold": config.score_threshold, "iou_threshold": config.iou_threshold,
                        "max_detections": config.max_detections},
                "eval_score_threshold": config.eval_score_threshold}

    def build_model(self, ctx) -> keras.Model:
        data, config = ctx.data, ctx.config
        shape = (*data.image_size, config.channels)
        k, weights = data.data.num_classes, config.weights or None
        if config.model == "yolo":
            return build_yolo(shape, k, data.anchors, config.backbone, config.width, weights)
        return build_ssd(shape, k, len(SSD_RATIOS) + 1, config.ssd_levels, config.backbone, config.width, weights)

    def prepare(self, model, ctx) -> None:
        """The target encoder and loss depend on the built model's grid / feature-map sizes."""
        data, config = ctx.data, ctx.config
        k = data.data.num_classes
        if config.model == "yolo":
            grid = tuple(model.output.shape[1:3])
            encoder = YoloEncoder(data.image_size, grid, data.anchors, k, match_iou=config.anchor_match)
            ctx.state["loss"] = YoloLoss(cell_anchors(data.anchors, data.image_size, grid), config.lambda_coord,
                                         config.lambda_noobj)
        else:
            sizes = feature_sizes_of(model)
            defaults, _ = ssd_default_boxes(data.image_size, sizes, aspect_ratios=SSD_RATIOS)
            data.ssd = {"feature_sizes": [list(s) for s in sizes], "aspect_ratios": list(SSD_RATIOS)}
            encoder = SSDMatcher(defaults)
            ctx.state["loss"] = SSDLoss(k, neg_pos_ratio=config.neg_pos_ratio)
        self._pipelines(data, encoder, config)

    def _pipelines(self, data, encoder, config):
        ops = [o.strip() for o in config.augment.split(",") if o.strip() and o.strip() != "none"]
        unknown = set(ops) - {"flip", "scale", "color"}
        if unknown:
            raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; use flip, scale, color")

        def encode(ex):
            return ex["images"], encoder.encode(ex["boxes"], ex["classes"])

        base = detection_dataset(data.data, data.image_size, config.channels).cache()
        train = base.shuffle(min(len(data.data), 4096), seed=config.seed, reshuffle_each_iteration=True)
        if ops:
            train = train.map(lambda ex: augment_example(ex, flip="flip" in ops, scale=(0.8, 1.2) if "scale" in ops
                                                         else None, color=0.2 if "color" in ops else 0.0),
                              num_parallel_calls=tf.data.AUTOTUNE)
        train = train.repeat(config.repeat) if config.repeat > 1 else train
        data.train = train.map(encode, num_parallel_calls=tf.data.AUTOTUNE).batch(config.batch_size).prefetch(2)
        if data.held_out is not None and len(data.held_out):
            held = detection_dataset(data.held_out, data.image_size, config.channels).cache()
            data.fit_validation = held.map(encode).batch(config.batch_size)
            data.validation = held.ragged_batch(config.batch_size)
        if data.test_data is not None:
            data.test = detection_dataset(data.test_data, data.image_size, config.channels).ragged_batch(
                config.batch_size)

    def fit(self, model, ctx, callbacks) -> dict:
        data, config = ctx.data, ctx.config
        steps = max(1, -(-len(data.data) * max(1, config.repeat) // config.batch_size))
        rate = config.learning_rate
        if config.max_minutes:  # the schedule follows the time budget (the epoch count is only an upper bound)
            ctx.state["time_limit"] = TimeLimit(config.max_minutes * 60,
                                                rate if config.lr_schedule == "cosine" else None)
            callbacks = [*callbacks, ctx.state["time_limit"]]
        elif config.lr_schedule == "cosine":
            rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=steps * config.epochs, alpha=0.05)
        # no XLA: it slows CPU training (DESIGN.md) and its compile time dominates short runs
        model.compile(optimizer=optimizer_of(config, rate), loss=ctx.state["loss"], jit_compile=False)
        history = model.fit(data.train, validation_data=data.fit_validation, epochs=config.epochs,
                            callbacks=callbacks, verbose=config.verbose)
        return merge_histories(history)

    def finish(self, run: Run, ctx) -> None:
        """A run `--max-minutes` cut short says so in its metrics (and status.json's `note`)."""
        limit = ctx.state.get("time_limit")
        if limit is not None and limit.message:
            run.metrics["stopped_early"] = limit.message

    def plot(self, run: Run, ctx=None) -> dict:
        """Training curves, the per-class precision-recall curves at IoU 0.5 of the held-out scoring
        (`pr_curves.png`), and `samples/detections_<i>.png`: a few held-out images with their detections
        (green: ground truth; one forward pass on one batch, not a re-evaluation)."""
        plots = super().plot(run, ctx)
        if not run.run_dir:
            return plots
        if run.metrics.get("pr_curve_50"):
            plots["pr_curves"] = plot_pr_curves(run.metrics["pr_curve_50"], os.path.join(run.run_dir, "pr_curves.png"))
        return plots

    def draw_samples(self, run, held_out, plots) -> None:
        batch = next(iter(held_out.take(1)))
        pixels = batch["images"].numpy()[:SAMPLES]
        out = self.predictor(run)({"pixels": pixels}, signature="serving_dense")
        names = run.info["class_names"]
        folder = os.path.join(run.run_dir, "samples")
        os.makedirs(folder, exist_ok=True)
        for i, image in enumerate(pixels):
            n = int(out["num_detections"][i])
            found = [{"box": [float(v) for v in out["boxes"][i][j]], "class": int(out["classes"][i][j]),
                      "label": str(names[int(out["classes"][i][j])]), "score": float(out["scores"][i][j])}
                     for j in range(n) if int(out["classes"][i][j]) >= 0]
            truth = [[float(v) for v in box] for box in batch["boxes"][i].numpy()]
            plots[f"sample_{i}"] = draw_detections(image, found, os.path.join(folder, f"detections_{i}.png"),
                                                   truth=truth)

    def export_adapter(self, run: Run, target: str, formats: tuple, score_threshold: float | None = None):
        """With `nms="auto"`, the NMS op the requested formats can carry: `padded` for any TFLite file (float
        or quantized: the TFLite converter has no combined NMS) and tpu (XLA), `combined` otherwise;
        `score_threshold` replaces the run's serving threshold in this export."""
        method = run.config.nms
        if method == "auto":
            tflite = any(str(f).startswith("tflite") for f in formats)
            method = "padded" if (tflite or target == "tpu") else "combined"
        return self.serving_adapter(run, method, score_threshold=score_threshold)

    def serving_adapter(self, run, method: str | None = None, score_threshold: float | None = None):
        info = run.info
        size = tuple(info["image_shape"][:2])
        method = method or ("combined" if run.config.nms == "auto" else run.config.nms)
        nms = {**info["nms"], "method": method}
        if score_threshold is not None:
            nms["score_threshold"] = float(score_threshold)
        if info["model"] == "yolo":
            anchors = np.asarray(info["anchors"], np.float32)

            def detect_at(raw, threshold):
                return yolo_detect(raw, anchors, size, **{**nms, "score_threshold": threshold})
        else:
            defaults, _ = ssd_default_boxes(size, [tuple(s) for s in info["ssd"]["feature_sizes"]],
                                            aspect_ratios=info["ssd"]["aspect_ratios"])

            def detect_at(raw, threshold):
                return ssd_detect(raw, defaults, **{**nms, "score_threshold": threshold})
        samples = getattr(run, "sample_images", None) or sample_images(tuple(info["image_shape"]))
        evaluation = float(info.get("eval_score_threshold", EVAL_SCORE_THRESHOLD))
        return detection_adapter(run.model, info["class_names"], lambda raw: detect_at(raw, nms["score_threshold"]),
                                 sample_images=samples, detect_at=detect_at,
                                 metadata={"detector": info["model"], "nms": nms, "anchors": info["anchors"],
                                           "ssd": info["ssd"], "box_format": "xyxy",
                                           "eval_score_threshold": evaluation})

    def eval_dataset(self, data, info, config=None):
        fmt = getattr(config, "format", "auto")
        detections = load_detections(data, None if fmt == "auto" else fmt, strict=getattr(config, "strict", False))
        return detection_dataset(detections, tuple(info["image_shape"][:2]), info["image_shape"][2]).ragged_batch(
            getattr(config, "batch_size", 32))

    def score(self, predictor, dataset, info) -> dict:
        """COCO mAP with NMS at the evaluation threshold (`eval_score_threshold`, low as in COCO), not at the
        serving threshold, which would hide the precision-recall curve's tail (exports without the `detect`
        signature are scored at their serving threshold, and the metrics say so)."""
        threshold = float(info.get("eval_score_threshold", EVAL_SCORE_THRESHOLD))
        has_detect = "detect" in (getattr(predictor, "signatures", None) or
                                  getattr(getattr(predictor, "adapter", None), "extra_signatures", {}))
        if not has_detect:
            threshold = float(info.get("nms", {}).get("score_threshold", threshold))
        ground_truth, detections = [], []
        for batch in dataset:
            pixels = batch["images"].numpy()
            if has_detect:
                out = predictor({"pixels": pixels, "score_threshold": np.full(len(pixels), threshold, "float32")},
                                signature="detect")
            else:
                out = predictor({"pixels": pixels}, signature="serving_dense")
            for i in range(len(out["num_detections"])):
                n = int(out["num_detections"][i])
                detections.append((out["boxes"][i][:n], out["scores"][i][:n], out["classes"][i][:n]))
                ground_truth.append((batch["boxes"][i].numpy(), batch["classes"][i].numpy()))
        metrics = coco_map(ground_truth, detections, info["class_names"])
        metrics["pr_curve_50"] = pr_curves(ground_truth, detections, info["class_names"], iou_threshold=0.5)
        metrics["images"] = len(ground_truth)
        metrics["score_threshold"] = threshold
        return metrics

    def raw_inputs(self, inputs, info) -> dict:
        return {"images": encode_image_inputs(inputs)}

    def input_items(self, inputs) -> list:
        return as_image_list(inputs)

    def write_outputs(self, results, inputs, outputs, output_dir) -> None:
        """`<name>.detections.png`: the input with its boxes drawn."""
        for index, (item, result) in enumerate(zip(inputs, results)):
            result["drawn"] = draw_detections(item, result["detections"],
                                              os.path.join(output_dir, f"{output_stem(item, index)}.detections.png"))

    def format_predictions(self, outputs, inputs, top_k=None, score_threshold=None, labels=None) -> list:
        """Detections per input (`box` in the input image's pixels), those under `score_threshold` dropped."""
        results = []
        for i in range(len(outputs["num_detections"])):
            n = int(outputs["num_detections"][i])
            results.append({"detections": [
                {"label": text_of(outputs["labels"][i][j]), "class": int(outputs["classes"][i][j]),
                 "score": float(outputs["scores"][i][j]), "box": [float(v) for v in outputs["boxes"][i][j]]}
                for j in range(n) if score_threshold is None or outputs["scores"][i][j] >= score_threshold]})
        return results

    def summary(self, metrics) -> str:
        return format_map(metrics) if "per_class" in metrics else super().summary(metrics)


class TimeLimit(keras.callbacks.Callback):
    """Stops training after `seconds` of wall-clock time; with `cosine_from`, decays the learning rate from
    that value to 5% of it along a cosine over the time budget (so a time-capped run still anneals).

    When it stops a run early it says so (printed, and in `message`: "stopped after N of M epochs: ...")."""

    def __init__(self, seconds: float, cosine_from: float | None = None):
        super().__init__()
        self.seconds, self.cosine_from = seconds, cosine_from
        self.message: str | None = None

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()
        self.epoch, self.stopped, self.message = 0, False, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        elapsed = time.monotonic() - self.start
        if elapsed > self.seconds:
            self._stop(mid_epoch=True)
        if self.cosine_from is not None:
            fraction = min(1.0, elapsed / self.seconds)
            rate = self.cosine_from * (0.05 + 0.95 * 0.5 * (1.0 + np.cos(np.pi * fraction)))
            self.model.optimizer.learning_rate.assign(rate)

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self._stop(mid_epoch=False)

    def _stop(self, mid_epoch: bool):
        self.model.stop_training = True
        if not self.stopped:
            total = int(self.params.get("epochs") or 0)
            done = self.epoch + 1
            if mid_epoch or done < total:
                self.stopped = True
                self.message = (f"stopped after {done} of {total} epochs: --max-minutes {self.seconds / 60:g} "
                                f"reached" + (" (mid-epoch)" if mid_epoch else ""))

    def on_train_end(self, logs=None):
        if self.message:
            print(self.message)


def draw_detections(image, detections: list, path: str, truth=None) -> str:
    """Draws `detections` (dicts with `box`, `label`, `score`) on an image (path, bytes or array); saves a PNG.
    `truth`: ground-truth xyxy boxes, drawn first in thin green."""
    import io

    from PIL import Image, ImageDraw

    if isinstance(image, (str, os.PathLike)):
        picture = Image.open(image)
    elif isinstance(image, bytes):
        picture = Image.open(io.BytesIO(image))
    else:
        array = np.clip(np.asarray(image), 0, 255).astype("uint8")
        picture = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)
    picture = picture.convert("RGB")
    draw = ImageDraw.Draw(picture)
    palette = [(255, 64, 64), (64, 255, 64), (64, 128, 255), (255, 200, 0), (255, 0, 255), (0, 255, 255)]
    for box in truth or []:
        draw.rectangle(box, outline=(0, 200, 0), width=1)
    for det in detections:
        colour = palette[det["class"] % len(palette)]
        draw.rectangle(det["box"], outline=colour, width=1)
        draw.text((det["box"][0] + 1, max(0, det["box"][1] - 10)), f"{det['label']} {det['score']:.2f}", fill=colour)
    picture.save(path)
    return path


def _scaled_boxes(data: DetectionData, size) -> np.ndarray:
    rows = [r.boxes * np.array([size[1] / r.width, size[0] / r.height] * 2, np.float32) for r in data.records]
    boxes = np.concatenate(rows or [np.zeros((0, 4), np.float32)], 0)
    if not len(boxes):
        raise DataError("the training data has no boxes")
    return boxes


APP = ObjectDetectorApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
