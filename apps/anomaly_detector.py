"""Anomaly detection on images by reconstruction: fit on normal images, flag what the model cannot reconstruct.

    from apps import anomaly_detector
    run = anomaly_detector.train("fashion-mnist", anomaly_classes="sandal", model="denoising", epochs=5)
    print(run.metrics["roc_auc"], run.metrics["pr_auc"], run.metrics["threshold"])   # held-out normal vs sandal
    path = run.export("savedmodels/no-sandals")          # image bytes -> score, is_anomaly, threshold, labels
    anomaly_detector.predict(path, ["shoe.png"])          # [{"score", "is_anomaly", "label", "threshold", ...}]

A task of its own rather than a mode of the VAE app: its data contract (which classes are normal, labelled
normal / anomalous test data), metrics (ROC-AUC, PR-AUC, the threshold's false-positive rate) and export (score,
flag, threshold) differ from the VAE's (a density and latent tools); the VAE is one of its models (`--model vae`).
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from apps.base import App, merge_histories
from apps.specs.anomaly_detector import AnomalyDetectorSpec, Config  # noqa: F401  (Config: public as apps.anomaly_detector.Config)
from toolkit.data import DataError, load_image_dataset
from toolkit.data.batching import steps_per_epoch
from toolkit.data.images import as_image_list, encode_image_inputs, parse_image_size
from toolkit.export import random_samples
from toolkit.export.anomaly import LABELS, anomaly_adapter
from toolkit.models.autoencoders import AnomalyDetector, build_autoencoder
from toolkit.models.vae import build_vae
from toolkit.training.optimizers import optimizer_of

FASHION_MNIST = ("fashion-mnist", "fashion_mnist")
# names a labelled test folder may use instead of the training classes
NORMAL_NAMES, ANOMALY_NAMES = ("normal",), ("anomalous", "anomaly", "anomalies", "abnormal")
_KINDS = {"autoencoder": "undercomplete", "denoising": "denoising", "sparse": "sparse", "contractive": "contractive"}


@dataclasses.dataclass
class HeldOut:
    """Images in [0, 255] with `anomalous` (1) / normal (0) per image and, when known, each image's class name."""

    x: np.ndarray
    anomalous: np.ndarray
    classes: list | None = None


@dataclasses.dataclass
class AnomalyData:
    train: tf.data.Dataset  # normal images only
    validation: tf.data.Dataset | None  # normal images: early stopping and the threshold
    test: HeldOut | None
    calibration: np.ndarray  # the normal images the threshold is picked on
    held: HeldOut | None  # test, else the validation split + the anomalous classes of --data
    image_shape: tuple
    class_names: list
    normal_classes: list | None  # None: every training image is normal
    num_train: int


class AnomalyDetectorApp(AnomalyDetectorSpec, App):
    def validate(self, config) -> None:
        if config.normal_classes and config.anomaly_classes:
            raise ValueError("give normal_classes or anomaly_classes, not both (the other is the rest of the classes)")
        if not 0.0 <= config.target_fpr < 1.0:
            raise ValueError(f"target_fpr must be in [0, 1). Received: target_fpr={config.target_fpr}")

    # ---- data -----------------------------------------------------------------------------------------
    def load_data(self, data, config, test_data=None):
        x, y, names = _load(data, config, split="train")
        normal = _normal_names(config, names)
        is_normal = np.ones(len(x), bool) if normal is None else np.isin(np.asarray(names)[y], normal)
        if not is_normal.any():
            raise DataError(f"no normal images in the training data: classes {names}, normal {normal}")
        if test_data is None and isinstance(data, str) and data.lower() in FASHION_MNIST:
            test_data = "fashion-mnist:test"
        info = {"image_shape": list(x.shape[1:]), "class_names": names, "normal_classes": normal}
        test = self.eval_dataset(test_data, info, config) if test_data else None
        normal_x = x[is_normal]
        order = np.random.default_rng(config.seed).permutation(len(normal_x))
        n_val = int(round(len(order) * config.validation_split))
        train_x, val_x = normal_x[order[n_val:]], normal_x[order[:n_val]]
        if len(train_x) == 0:
            raise DataError(f"no normal training images left after validation_split={config.validation_split}")
        train = (tf.data.Dataset.from_tensor_slices(train_x).shuffle(min(len(train_x), 10_000), seed=config.seed)
                 .batch(config.batch_size).prefetch(tf.data.AUTOTUNE))
        validation = tf.data.Dataset.from_tensor_slices(val_x).batch(config.batch_size) if n_val else None
        held = test
        if held is None:  # the validation split's normal images + the classes of --data that were never trained on
            anomalies = x[~is_normal]
            classes = None
            if names:
                classes = [names[int(c)] for c in y[is_normal][order[:n_val]]] + [names[int(c)] for c in y[~is_normal]]
            held = HeldOut(np.concatenate([val_x, anomalies]),
                           np.concatenate([np.zeros(len(val_x), "int64"), np.ones(len(anomalies), "int64")]), classes)
            held = held if len(held.x) else None
        return AnomalyData(train, validation, test, val_x if n_val else train_x, held, tuple(x.shape[1:]), names,
                           normal, len(train_x))

    def held_out(self, data):
        return getattr(data, "held", None)

    def eval_dataset(self, data, info, config=None):
        """Labelled images -> `HeldOut`: class folders named normal/ and anomalous/, or the training classes
        (those in the run's normal classes are normal, every other class anomalous)."""
        x, y, names = _load(data, config, split="test", image_shape=tuple(info["image_shape"]))
        if not names:
            raise DataError("evaluation data needs labels: class folders normal/ and anomalous/, or the training "
                            "data's class folders (the run's normal classes are normal, the others anomalous)")
        lowered = [n.lower() for n in names]
        if set(lowered) <= set(NORMAL_NAMES + ANOMALY_NAMES):
            anomalous = np.array([lowered[int(c)] in ANOMALY_NAMES for c in y], "int64")
        elif info.get("normal_classes"):
            anomalous = np.array([names[int(c)] not in info["normal_classes"] for c in y], "int64")
        else:
            raise DataError(f"cannot tell normal from anomalous evaluation images: their classes are {names}, and the "
                            "run trained on all of its data as normal; name the folders normal/ and anomalous/, or "
                            "train with normal_classes / anomaly_classes")
        return HeldOut(x, anomalous, [names[int(c)] for c in y])

    # ---- model ----------------------------------------------------------------------------------------
    def build_model(self, ctx) -> keras.Model:
        data, config = ctx.data, ctx.config
        if config.model == "vae":
            autoencoder = build_vae(data.image_shape, config.latent_dim, config.architecture, config.width,
                                    config.hidden, likelihood="gaussian", seed=config.seed)
        else:
            options = {"denoising": {"corruption": config.noise, "noise_level": config.noise_level,
                                     "seed": config.seed},
                       "sparse": {"penalty": config.sparsity_penalty, "sparsity_weight": config.sparsity_weight,
                                  "sparsity_target": config.sparsity_target},
                       "contractive": {"contractive_weight": config.contractive_weight}}.get(config.model, {})
            latent_activation = "sigmoid" if config.model == "sparse" and config.sparsity_penalty == "kl" else "linear"
            if latent_activation != "linear" and config.architecture != "dense":
                raise ValueError("sparsity_penalty='kl' needs a sigmoid code, which the dense architecture has: pass "
                                 "architecture='dense' (or sparsity_penalty='l1')")
            autoencoder = build_autoencoder(_KINDS[config.model], data.image_shape, config.latent_dim,
                                            config.architecture, config.width, config.hidden,
                                            latent_activation=latent_activation, **options)
        return AnomalyDetector(autoencoder, elbo_samples=config.elbo_samples, seed=config.seed, name="anomaly_detector")

    def info(self, ctx) -> dict:
        data, config = ctx.data, ctx.config
        return {"image_shape": list(data.image_shape), "class_names": data.class_names,
                "normal_classes": data.normal_classes, "model": config.model, "num_train": data.num_train,
                "score": "neg_elbo" if config.model == "vae" else "reconstruction_mse", "target_fpr": config.target_fpr}

    def fit(self, model, ctx, callbacks) -> dict:
        """Trains the autoencoder on normal images, then picks the threshold on the validation split's normal
        images (the training images when there is no split) at `target_fpr`."""
        data, config = ctx.data, ctx.config
        autoencoder = model.autoencoder
        autoencoder.compile(optimizer=optimizer_of(config, steps_per_epoch=steps_per_epoch(data.train)))
        history = autoencoder.fit(data.train, validation_data=data.validation, epochs=config.epochs,
                                  callbacks=callbacks, verbose=config.verbose, shuffle=False)
        threshold = model.calibrate(data.calibration, config.target_fpr)
        scores = model.scores_of(data.calibration)
        ctx.state["calibration"] = {"threshold": threshold, "target_fpr": config.target_fpr,
                                    "validation_fpr": float(np.mean(scores > threshold)),
                                    "calibration_images": int(len(scores)),
                                    "calibrated_on": "validation" if data.validation is not None else "train"}
        return merge_histories(history)

    def finish(self, run, ctx) -> None:
        run.metrics.update(ctx.state.get("calibration", {}))

    # ---- scoring --------------------------------------------------------------------------------------
    def serving_adapter(self, run):
        return anomaly_adapter(run.model, random_samples(tuple(run.info["image_shape"])),
                               target_fpr=run.info.get("target_fpr"))

    def score(self, predictor, dataset, info) -> dict:
        """Held-out ROC-AUC and PR-AUC (average precision; anomalous = positive) of the scores, and the flags' false-
        and true-positive rates at the model's threshold; per anomalous class, its ROC-AUC against the normal images."""
        held = dataset
        out = {k: [] for k in ("score", "is_anomaly", "threshold")}
        for i in range(0, len(held.x), 512):
            batch = predictor({"pixels": held.x[i : i + 512].astype("float32")}, signature="serving_dense")
            for k in out:
                out[k].append(np.asarray(batch[k]))
        scores, flags = np.concatenate(out["score"]), np.concatenate(out["is_anomaly"])
        metrics = anomaly_metrics(scores, held.anomalous, flags, held.classes)
        metrics["threshold"] = float(out["threshold"][0][0]) if len(scores) else None
        metrics["score"] = info.get("score", "")
        return metrics

    def plot(self, run, ctx=None) -> dict:
        plots = super().plot(run, ctx)
        held = ctx.data.held if ctx is not None else None
        if run.run_dir and held is not None and len(held.x):
            try:  # pictures only: a drawing problem never fails a trained, scored run
                plots["scores"] = score_plot(run.model.scores_of(held.x), held.anomalous,
                                             float(run.model.threshold.numpy()), run.info.get("score", "score"),
                                             os.path.join(run.run_dir, "scores.png"))
            except Exception as error:  # noqa: BLE001
                print(f"anomaly-detector: could not draw the score plot: {error}")
        return plots

    def summary(self, metrics) -> str:
        text = super().summary(metrics)
        for name, auc in (metrics.get("per_class_roc_auc") or {}).items():
            text += f"\n{'roc_auc[' + name + ']':>24}: {auc:.4f}"
        return text

    # ---- predict --------------------------------------------------------------------------------------
    def raw_inputs(self, inputs, info) -> dict:
        return {"images": encode_image_inputs(inputs)}

    def input_items(self, inputs) -> list:
        return as_image_list(inputs)

    def format_predictions(self, outputs, inputs, top_k=None, score_threshold=None, labels=None) -> list:
        return [{"score": float(s), "is_anomaly": int(f), "label": LABELS[int(f)], "threshold": float(t)}
                for s, f, t in zip(outputs["score"], outputs["is_anomaly"], outputs["threshold"])]


def anomaly_metrics(scores, anomalous, flags=None, classes=None) -> dict:
    """ROC-AUC / PR-AUC of `scores` for `anomalous` (1) vs normal (0), and the flags' rates.

    Examples:
    >>> m = anomaly_metrics([0.1, 0.2, 0.3, 0.9, 0.8], [0, 0, 0, 1, 1], flags=[0, 0, 1, 1, 1])
    >>> m["roc_auc"], m["pr_auc"], round(m["false_positive_rate"], 4), m["true_positive_rate"], m["precision"]
    (1.0, 1.0, 0.3333, 1.0, 0.6667)
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores, anomalous = np.asarray(scores, "float64"), np.asarray(anomalous).astype(bool)
    metrics = {"num_normal": int((~anomalous).sum()), "num_anomalous": int(anomalous.sum())}
    if anomalous.any() and (~anomalous).any():
        metrics["roc_auc"] = round(float(roc_auc_score(anomalous, scores)), 6)
        metrics["pr_auc"] = round(float(average_precision_score(anomalous, scores)), 6)
    else:
        metrics["note"] = ("ROC-AUC and PR-AUC need both normal and anomalous held-out images; this held-out set has "
                           f"{metrics['num_normal']} normal and {metrics['num_anomalous']} anomalous")
    if (~anomalous).any():
        metrics["mean_score_normal"] = float(scores[~anomalous].mean())
    if anomalous.any():
        metrics["mean_score_anomalous"] = float(scores[anomalous].mean())
    if flags is not None:
        flags = np.asarray(flags).astype(bool)
        if (~anomalous).any():
            metrics["false_positive_rate"] = float(flags[~anomalous].mean())
        if anomalous.any():
            metrics["true_positive_rate"] = float(flags[anomalous].mean())
        if flags.any():
            metrics["precision"] = round(float(anomalous[flags].mean()), 4)
    if classes is not None and anomalous.any() and (~anomalous).any():
        classes = np.asarray(classes)
        per_class = {}
        for name in sorted(set(classes[anomalous].tolist())):
            pick = (~anomalous) | (classes == name)
            per_class[str(name)] = round(float(roc_auc_score(anomalous[pick], scores[pick])), 6)
        if len(per_class) > 1:
            metrics["per_class_roc_auc"] = per_class
    return metrics


def score_plot(scores, anomalous, threshold: float, score_name: str, path: str) -> str:
    """Histogram of the held-out scores (normal vs anomalous, the threshold marked) beside the ROC curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    anomalous = np.asarray(anomalous).astype(bool)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    bins = np.histogram_bin_edges(scores, bins=40)
    for mask, label in ((~anomalous, "normal"), (anomalous, "anomalous")):
        if mask.any():
            left.hist(scores[mask], bins=bins, alpha=0.6, label=label, density=True)
    left.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.4g}")
    left.set_xlabel(score_name)
    left.legend()
    if anomalous.any() and (~anomalous).any():
        fpr, tpr, _ = roc_curve(anomalous, scores)
        right.plot(fpr, tpr)
    right.plot([0, 1], [0, 1], color="grey", linestyle=":")
    right.set_xlabel("false-positive rate")
    right.set_ylabel("true-positive rate")
    right.set_title("ROC (held out)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def _normal_names(config, names) -> list | None:
    """The normal class names from `normal_classes` / `anomaly_classes` (names or integer ids); None: all normal."""
    given = config.normal_classes or config.anomaly_classes
    if not given:
        return None
    if not names:
        raise DataError(f"{'normal' if config.normal_classes else 'anomaly'}_classes={given} needs labelled data "
                        "(class sub-folders, (x, y) arrays or a sample such as fashion-mnist)")
    picked = []
    for item in (s.strip() for s in str(given).split(",") if s.strip()):
        if item in names:
            picked.append(item)
        elif item.isdigit() and int(item) < len(names):
            picked.append(names[int(item)])
        else:
            raise DataError(f"unknown class {item!r}; the data's classes are {names}")
    normal = picked if config.normal_classes else [n for n in names if n not in picked]
    if not normal:
        raise DataError(f"anomaly_classes={given} leaves no normal class (classes: {names})")
    return normal


def _load(source, config=None, split="train", image_shape=None) -> tuple:
    """Any image source -> `(x float32 [N, H, W, C] in [0, 255], y int or None, class names or [])`."""
    size = tuple(image_shape[:2]) if image_shape else parse_image_size(getattr(config, "image_size", ""))
    channels = int(image_shape[2]) if image_shape else (getattr(config, "channels", 0) or None)
    dataset = load_image_dataset(source, image_size=size, channels=channels, validation_split=0.0, batch_size=2048,
                                 shuffle=False, strict=bool(getattr(config, "strict", False)), require_labels=False,
                                 split=split)
    xs, ys = [], []
    for batch in dataset.train:
        xs.append(np.asarray(batch[0] if isinstance(batch, tuple) else batch, "float32"))
        if isinstance(batch, tuple):
            ys.append(np.asarray(batch[1]))
    names = list(dataset.class_names or [])
    return np.concatenate(xs), (np.concatenate(ys).astype("int64") if ys else None), names


APP = AnomalyDetectorApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
