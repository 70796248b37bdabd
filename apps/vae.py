"""Variational autoencoder: learn a latent space of images, sample it, score it in nats, few-label learning.

    from apps import vae
    run = vae.train("fashion-mnist", epochs=10, latent_dim=16)   # or a folder, (x[, y]) arrays, "tfds:NAME"
    print(run.metrics["neg_elbo"], run.metrics["iwae_bound"])    # nats per image on the test set
    path = run.export("savedmodels/fashion-vae")                  # encode / decode / sample / reconstruct
    vae.predict(path, ["shoe.png"])                               # mu, log_var, reconstruction error
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from apps.auto import apply_auto_batch
from apps.base import App, merge_histories, output_stem
from apps.specs.vae import Config, VaeSpec  # noqa: F401  (Config: public as apps.vae.Config)
from toolkit.data.images import parse_image_size
from toolkit.data import load_image_dataset
from toolkit.data import DataError
from toolkit.data.images import as_image_list, encode_image_inputs, encode_png
from toolkit.export import random_samples
from toolkit.export.vae import vae_adapter
from toolkit.models.vae import build_vae, kl_divergence
from toolkit.models.vae.plots import vae_plots
from toolkit.models.vae.semi_supervised import few_label_accuracy
from toolkit.data.batching import steps_per_epoch
from toolkit.training.optimizers import optimizer_of

FASHION_MNIST = ("fashion-mnist", "fashion_mnist")


@dataclasses.dataclass
class Images:
    """Images in [0, 255] (`[N, H, W, C]` float32) with optional int labels and class names."""

    x: np.ndarray
    y: np.ndarray | None = None
    class_names: list | None = None


@dataclasses.dataclass
class VaeData:
    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: Images | None
    train_images: Images
    image_shape: tuple
    num_train: int
    held_images: Images | None = None  # test images, else the validation split (plots, few-label metrics)


class VaeApp(VaeSpec, App):
    def load_data(self, data, config, test_data=None):
        images = load_images(data, config, split="train")
        if test_data is None and isinstance(data, str) and data.lower() in FASHION_MNIST:
            test_data = "fashion-mnist:test"
        test = self.eval_dataset(test_data, {"image_shape": images.x.shape[1:]}, config) if test_data else None
        rng = np.random.default_rng(config.seed)
        order = rng.permutation(len(images.x))
        n_val = int(round(len(order) * config.validation_split))
        train_x, val_x = images.x[order[n_val:]], images.x[order[:n_val]]
        if len(train_x) == 0:
            raise DataError(f"no training images left after validation_split={config.validation_split}")
        train = (tf.data.Dataset.from_tensor_slices(train_x).shuffle(min(len(train_x), 10_000), seed=config.seed)
                 .batch(config.batch_size).prefetch(tf.data.AUTOTUNE))
        validation = tf.data.Dataset.from_tensor_slices(val_x).batch(config.batch_size) if n_val else None
        train_part = Images(train_x, None if images.y is None else images.y[order[n_val:]], images.class_names)
        held = test or Images(val_x, None if images.y is None else images.y[order[:n_val]], images.class_names)
        return VaeData(train, validation, test, train_part, tuple(images.x.shape[1:]), len(train_x),
                       held_images=held if len(held.x) else None)

    def info(self, ctx) -> dict:
        data, config = ctx.data, ctx.config
        return {"image_shape": list(data.image_shape), "num_train": data.num_train,
                "class_names": data.train_images.class_names, "latent_dim": config.latent_dim,
                "iw_samples": config.iw_samples, "iw_images": config.iw_images, "seed": config.seed,
                "batch_size": ctx.state.get("batch_size", config.batch_size)}

    def build_model(self, ctx) -> keras.Model:
        data, config = ctx.data, ctx.config
        # a small set at the default batch 128 would get one step an epoch: `apply_auto_batch` picks a smaller one
        steps = max(1, -(-data.num_train // apply_auto_batch(ctx, self.name)))
        return build_vae(data.image_shape, config.latent_dim, config.architecture, config.width, config.hidden,
                         config.likelihood, config.binarize, config.beta,
                         int(round(config.kl_warmup_epochs * steps)), seed=config.seed)

    def fit(self, model, ctx, callbacks) -> dict:
        data, config = ctx.data, ctx.config
        model.compile(optimizer=optimizer_of(config, steps_per_epoch=steps_per_epoch(ctx.data.train)))
        history = model.fit(data.train, validation_data=data.validation, epochs=config.epochs,
                            callbacks=callbacks, verbose=config.verbose, shuffle=False)
        return merge_histories(history)

    def serving_adapter(self, run):
        return vae_adapter(run.model, random_samples(run.info["image_shape"]))

    def eval_dataset(self, data, info, config=None):
        return load_images(data, config, split="test", image_shape=tuple(info["image_shape"]))

    def score(self, predictor, dataset, info) -> dict:
        """Held-out nats per image: the negative ELBO (one z per image, all images), and on the first
        `iw_images` images the k-sample negative ELBO and importance-weighted bound; KL; reconstruction MSE."""
        x = _as_images(dataset).x
        d, k = int(info["latent_dim"]), int(info.get("iw_samples", 100))
        rng = np.random.default_rng(int(info.get("seed", 0)))
        enc = _chunks(x, 512, lambda b: predictor({"pixels": b}, signature="serving_dense"))
        lw1 = _chunks(x, 512, lambda b: predictor({"pixels": b, "noise": rng.standard_normal((len(b), 1, d),
                                                   "float32")}, signature="log_weights"))["log_weights"]
        n_iw = len(x) if not info.get("iw_images") else min(len(x), int(info["iw_images"]))
        per = max(1, 4096 // max(k, 1))
        lwk = _chunks(x[:n_iw], per, lambda b: predictor({"pixels": b, "noise": rng.standard_normal(
            (len(b), k, d), "float32")}, signature="log_weights"))["log_weights"].astype("float64")
        iwae = np.logaddexp.reduce(lwk, axis=1) - np.log(k)
        kl = kl_divergence(tf.constant(enc["mu"]), tf.constant(enc["log_var"])).numpy()
        return {
            "neg_elbo": float(-lw1.mean()),
            "kl": float(kl.mean()),
            "reconstruction_nll": float(-lw1.mean() - kl.mean()),
            "reconstruction_mse": float(enc["reconstruction_error"].mean()),
            "active_units": int(np.sum(enc["mu"].var(axis=0) > 0.01)),
            "iw_images": int(n_iw),
            "iw_samples": int(k),
            "neg_elbo_k": float(-lwk.mean()),
            "iwae_bound": float(-iwae.mean()),
            "num_images": int(len(x)),
        }

    def finish(self, run, ctx) -> None:
        """Adds the few-label classifier results (mu vs raw pixels) to the held-out metrics."""
        images, held = ctx.data.train_images, ctx.data.held_images
        counts = [int(n) for n in str(run.config.semi_supervised).split(",") if n.strip()]
        if counts and images.y is not None and held is not None and held.y is not None:
            counts, note = fit_label_counts(counts, images.y)
            if note:
                print(f"vae: {note}")
                run.metrics["semi_supervised_note"] = note
            if counts:
                run.metrics["semi_supervised"] = semi_supervised_report(
                    run.model, images, held, counts, run.config.semi_supervised_repeats, run.config.seed)

    def plot(self, run, ctx=None) -> dict:
        plots = super().plot(run, ctx)
        held = ctx.data.held_images if ctx is not None else None
        if run.run_dir and held is not None:
            plots.update(vae_plots(run.model, held.x, held.y, run.run_dir, run.info.get("class_names"),
                                   seed=run.config.seed))
        return plots

    def raw_inputs(self, inputs, info) -> dict:
        return {"images": encode_image_inputs(inputs)}

    def input_items(self, inputs) -> list:
        return as_image_list(inputs)

    def write_outputs(self, results, inputs, outputs, output_dir) -> None:
        """`<name>.reconstruction.png`: the image decoded from mu, at the model's input size."""
        for index, (result, pixels) in enumerate(zip(results, outputs["reconstruction"])):
            path = os.path.join(output_dir, f"{output_stem(inputs[index], index)}.reconstruction.png")
            with open(path, "wb") as f:
                f.write(encode_png(np.clip(np.round(pixels), 0, 255).astype("uint8")))
            result["reconstruction"] = path

    def format_predictions(self, outputs, inputs, top_k=None, score_threshold=None, labels=None) -> list:
        return [{"mu": [round(float(v), 4) for v in mu], "sigma": [round(float(np.exp(0.5 * v)), 4) for v in lv],
                 "reconstruction_error": float(err)}
                for mu, lv, err in zip(outputs["mu"], outputs["log_var"], outputs["reconstruction_error"])]

    def summary(self, metrics) -> str:
        text = super().summary(metrics)
        for n, result in (metrics.get("semi_supervised") or {}).items():
            text += (f"\n{n:>3} labels/class: accuracy on mu {result['latent']['mean']:.4f} "
                     f"+- {result['latent']['std']:.4f} | raw pixels {result['pixels']['mean']:.4f} "
                     f"+- {result['pixels']['std']:.4f}")
        return text


def fit_label_counts(counts, labels) -> tuple:
    """Labels-per-class counts the data can give: each capped at the smallest class's size (with a note), so
    the default `10,100` works on a folder with 30 images per class. Returns `(counts, note or "")`.

    Examples:
    >>> fit_label_counts([10, 100], np.repeat([0, 1, 2], 30))
    ([10, 30], 'semi_supervised: the smallest class has 30 labelled training images; 100 labels/class shrunk to 30')
    >>> fit_label_counts([5], np.array([0, 1]))
    ([1], 'semi_supervised: the smallest class has 1 labelled training images; 5 labels/class shrunk to 1')
    """
    present = np.unique(np.asarray(labels))
    smallest = min(int(np.sum(np.asarray(labels) == c)) for c in present) if len(present) else 0
    if smallest < 1:
        return [], "semi_supervised: skipped (no labelled training images)"
    fitted = sorted({min(int(n), smallest) for n in counts if int(n) > 0})
    shrunk = [int(n) for n in counts if int(n) > smallest]
    note = ""
    if shrunk:
        note = (f"semi_supervised: the smallest class has {smallest} labelled training images; "
                f"{', '.join(map(str, shrunk))} labels/class shrunk to {smallest}")
    return fitted, note


def semi_supervised_report(model, train: Images, test: Images, counts, repeats=3, seed=0) -> dict:
    """`{n: {"latent": acc, "pixels": acc}}`: logistic regression on the encoder's mu vs on raw pixels,
    each trained with `n` labelled training images per class and scored on `test`."""
    mu_train = _chunks(train.x, 1024, lambda b: {"mu": model.encode(b)[0].numpy()})["mu"]
    mu_test = _chunks(test.x, 1024, lambda b: {"mu": model.encode(b)[0].numpy()})["mu"]
    report = {}
    for n in counts:
        report[str(n)] = {
            "latent": few_label_accuracy(mu_train, train.y, mu_test, test.y, n, repeats, seed),
            "pixels": few_label_accuracy(train.x / 255.0, train.y, test.x / 255.0, test.y, n, repeats, seed),
        }
    return report


def _chunks(x, size, fn) -> dict:
    parts = [fn(x[i : i + size]) for i in range(0, len(x), size)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def _as_images(dataset) -> Images:
    if isinstance(dataset, Images):
        return dataset
    xs, ys = [], []
    for batch in dataset:
        xs.append(np.asarray(batch[0] if isinstance(batch, tuple) else batch))
        if isinstance(batch, tuple) and len(batch) > 1:
            ys.append(np.asarray(batch[1]))
    return Images(np.concatenate(xs).astype("float32"), np.concatenate(ys) if ys else None)


def load_images(source, config=None, split="train", image_shape=None) -> Images:
    """Any image source -> `Images`: "fashion-mnist[:train|test]", "digits", a class-per-folder tree or a flat
    folder of images (unlabelled), `(x,)` / `(x, y[, class_names])` / an `x` array, a `.npz` (`x`, optional
    `y`) or `.npy` file, a tf.data.Dataset, "tfds:NAME". Parsed and decoded by `load_image_dataset` (folders
    stream from disk); the batches are concatenated here because the few-label classifier needs arrays."""
    size = tuple(image_shape[:2]) if image_shape else parse_image_size(getattr(config, "image_size", ""))
    channels = int(image_shape[2]) if image_shape else (getattr(config, "channels", 0) or None)
    dataset = load_image_dataset(source, image_size=size, channels=channels, validation_split=0.0, batch_size=2048,
                                 shuffle=False, strict=bool(getattr(config, "strict", False)), require_labels=False,
                                 split=split)
    images = _as_images(dataset.train)
    images.class_names = dataset.class_names or None
    return images


APP = VaeApp()
train = APP.train
evaluate = APP.evaluate
predict = APP.predict
