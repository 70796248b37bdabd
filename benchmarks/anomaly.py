"""Anomaly benchmark: Fashion-MNIST ROC-AUC / PR-AUC per held-out class for the conv autoencoder, the denoising
autoencoder and the VAE (score: reconstruction MSE, or -ELBO for the VAE).

Protocol per held-out class c: train on the training images of the other 9 classes (a seeded subset), for the same
wall-clock budget per model; pick the threshold at 5% FPR on 1,000 held-back normal training images; score a seeded
subset of the normal test images (`--test-normal`) and all 1,000 test images of class c (anomalous).

    .venv/bin/python -m benchmarks.anomaly --classes 1,5 --budget 15      # seconds of training per model

Writes the `anomaly` section of BENCHMARKS.md through `benchmarks/_report.py:write_section`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from apps.anomaly_detector import anomaly_metrics  # noqa: E402
from benchmarks._report import machine, table, write_section  # noqa: E402
from toolkit.data import samples  # noqa: E402
from toolkit.data.image_samples import FASHION_MNIST_CLASSES  # noqa: E402
from toolkit.models.autoencoders import AnomalyDetector, build_autoencoder  # noqa: E402
from toolkit.models.vae import build_vae  # noqa: E402

MODELS = ("autoencoder", "denoising", "vae")

CONTEXT = """Context: most published Fashion-MNIST anomaly figures use the one-class protocol (train on ONE class, the
other nine are anomalies), a different and easier-to-separate task, so none is quoted as a like-for-like target. With
nine normal classes and one held out, a class that looks like a normal one (shirt vs t-shirt, pullover, coat) is
hard to flag by reconstruction, and reconstruction error also tracks how much ink an image has, not only how unusual
it is."""


class TimeLimit(keras.callbacks.Callback):
    """Stops training once `seconds` of wall-clock time have passed after the first step (checked every batch)."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds, self.steps = seconds, 0

    def on_train_begin(self, logs=None):
        self.start = None

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.start is None:  # the clock starts after the first step (graph tracing is not training)
            self.start = time.perf_counter()
        elif time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def build(model, seed, latent_dim):
    if model == "vae":
        autoencoder = build_vae((28, 28, 1), latent_dim, "conv", 32, 256, likelihood="gaussian", seed=seed)
    else:
        kind = {"autoencoder": "undercomplete", "denoising": "denoising"}[model]
        options = {"noise_level": 0.2, "seed": seed} if model == "denoising" else {}
        autoencoder = build_autoencoder(kind, (28, 28, 1), latent_dim, "conv", 32, 256, **options)
    return AnomalyDetector(autoencoder, elbo_samples=8, seed=seed)


def run_one(model, held_class, data, args):
    (x_train, y_train), (x_test, y_test) = data
    rng = np.random.default_rng(args.seed + held_class)
    normal = x_train[y_train != held_class]
    normal = normal[rng.permutation(len(normal))[: args.train_images + 1000]]
    fit_x, calibration = normal[1000:], normal[:1000]
    keras.utils.set_random_seed(args.seed)
    detector = build(model, args.seed, args.latent_dim)
    detector.autoencoder.compile(optimizer=keras.optimizers.Adam(1e-3))
    dataset = tf.data.Dataset.from_tensor_slices(fit_x).shuffle(10_000, seed=args.seed).batch(128).prefetch(2)
    limit = TimeLimit(args.budget)
    start = time.perf_counter()
    detector.autoencoder.fit(dataset, epochs=1000, callbacks=[limit], verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    threshold = detector.calibrate(calibration, 0.05)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y_test != held_class))[: args.test_normal],
                           np.flatnonzero(y_test == held_class)])
    scores = detector.scores_of(x_test[keep])
    anomalous = (y_test[keep] == held_class).astype("int64")
    m = anomaly_metrics(scores, anomalous, flags=scores > threshold)
    return {"model": model, "class": FASHION_MNIST_CLASSES[held_class], "roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"],
            "fpr": m["false_positive_rate"], "tpr": m["true_positive_rate"], "steps": limit.steps,
            "epochs": limit.steps * 128 / len(fit_x), "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="1,5,6,8", help="held-out class ids (comma list) or 'all'")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of training per model and class")
    parser.add_argument("--train-images", type=int, default=12000, help="normal training images per run")
    parser.add_argument("--test-normal", type=int, default=3000, help="normal test images scored (seeded subset; "
                        "every test image of the held-out class is scored)")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    classes = list(range(10)) if args.classes == "all" else [int(c) for c in args.classes.split(",")]
    models = [m.strip() for m in args.models.split(",")]
    load = os.getloadavg()[0]
    x_train, y_train, _ = samples.fashion_mnist("train")
    x_test, y_test, _ = samples.fashion_mnist("test")
    data = ((x_train.astype("float32"), y_train), (x_test.astype("float32"), y_test))
    rows = []
    started = time.perf_counter()
    for held in classes:
        for model in models:
            row = run_one(model, held, data, args)
            rows.append(row)
            print(f"{row['class']:>10} {model:>12}: ROC-AUC {row['roc_auc']:.4f}  PR-AUC {row['pr_auc']:.4f}  "
                  f"FPR@t {row['fpr']:.3f}  TPR@t {row['tpr']:.3f}  ({row['epochs']:.2f} epochs in {row['seconds']:.0f} s)",
                  flush=True)
    total = time.perf_counter() - started
    by_model = {m: [r for r in rows if r["model"] == m] for m in models}
    header = ["held-out class", *[f"{m} ROC-AUC" for m in models], *[f"{m} PR-AUC" for m in models]]
    body = [[FASHION_MNIST_CLASSES[c], *[next(r["roc_auc"] for r in by_model[m] if r["class"] == FASHION_MNIST_CLASSES[c])
                                         for m in models],
             *[next(r["pr_auc"] for r in by_model[m] if r["class"] == FASHION_MNIST_CLASSES[c]) for m in models]]
            for c in classes]
    body.append(["mean", *[float(np.mean([r["roc_auc"] for r in by_model[m]])) for m in models],
                 *[float(np.mean([r["pr_auc"] for r in by_model[m]])) for m in models]])
    rates = [[r["class"], r["model"], r["fpr"], r["tpr"], r["epochs"], r["steps"]] for r in rows]
    command = "python -m benchmarks.anomaly " + " ".join(sys.argv[1:] if argv is None else argv)
    markdown = "\n\n".join([
        "## Anomaly detection (Fashion-MNIST, one class held out as the anomaly)",
        f"Command: `{command}` · {machine()} · load average at start {load:.1f} on 2 shared cores (other jobs "
        f"running: the models train fewer steps than on an idle machine) · total {total / 60:.1f} min.",
        f"Each model: conv encoder/decoder (32/64 filters, Dense 256, latent {args.latent_dim}), trained "
        f"{args.budget:.0f} s on {args.train_images} normal training images (the other nine classes); threshold at 5% "
        f"FPR on 1,000 held-back normal training images; scored on {args.test_normal} normal test images (seeded) and "
        f"the held-out class's 1,000 (PR-AUC's chance level is {1000 / (1000 + args.test_normal):.2f}). Scores: reconstruction MSE (autoencoder, denoising with Gaussian noise 0.2), "
        "-ELBO with 8 fixed noise draws (VAE with a Gaussian decoder, one learned sigma, on [0, 1] pixels; a soft-"
        "Bernoulli cross-entropy would add each image's own pixel entropy, which ranks dark, low-ink images as normal).",
        table(header, body),
        "At the threshold (test set): false- and true-positive rates, and the training each model got in its budget:",
        table(["class", "model", "FPR", "TPR", "epochs", "steps"], rates),
        CONTEXT,
    ])
    print(markdown)
    if not args.no_write:
        write_section("anomaly", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
