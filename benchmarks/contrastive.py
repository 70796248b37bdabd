"""Contrastive pretraining benchmark: SimCLR-pretrained backbone vs the same backbone from scratch vs the VAE's
encoder features, with 10 labels per class of Fashion-MNIST; test accuracy on the full 10,000-image test set.

Protocol (every method sees the same labelled images: `pick_per_class(y, labels, seed + r)` for draw r, the draw
`few_label_accuracy` makes):
- SimCLR (`toolkit.models.contrastive.pretrain_simclr`): a small conv backbone (3 x conv-BN-ReLU, 32/64/128
  filters, two max-pools, global average pool -> 128 features) pretrained on all 60,000 training images without
  labels (two augmented views per image, InfoNCE) for a wall-clock budget; then a linear probe (logistic
  regression on its standardised features, `few_label_accuracy`) and a fine-tune (`build_transfer_classifier`).
- scratch: the same backbone, random init, trained end to end on the labelled images with the same recipe as the
  fine-tune (same steps, optimizer, augmentation); plus the linear probe of the random-init features (a control:
  random conv features are already better than pixels).
- VAE: `build_vae((28, 28, 1), 16, "conv")` trained on all 60,000 images for a wall-clock budget
  (`benchmarks.vae.train`), linear probe on mu (the `benchmarks.vae` few-label protocol).
- raw pixels: the linear probe on the 784 pixels.

    .venv/bin/python -m benchmarks.contrastive             # the defaults are the reported run (~10 min, 2 cores)
    .venv/bin/python -m benchmarks.contrastive --quick --no-write   # a ~1 min smoke run

Writes the `contrastive` section of BENCHMARKS.md through `benchmarks/_report.py:write_section`.
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

from benchmarks._report import machine, table, write_section  # noqa: E402
from benchmarks.vae import train as train_vae  # noqa: E402
from toolkit.data import samples  # noqa: E402
from toolkit.models.contrastive import build_transfer_classifier, default_augmentation, pretrain_simclr  # noqa: E402
from toolkit.models.vae import build_vae  # noqa: E402
from toolkit.models.vae.semi_supervised import few_label_accuracy, pick_per_class  # noqa: E402
from toolkit.models.vision.classic import conv_norm_act  # noqa: E402

CONTEXT = """Context, not a target: SimCLR (Chen, Kornblith, Norouzi & Hinton, ICML 2020) pretrains for 100-800 epochs
at batch sizes of 256-8192 on accelerators; here the backbone gets a few minutes of CPU, a small fraction of one
such schedule, so the figures say whether the recipe helps at this budget, not what SimCLR reaches."""


def build_backbone(width: int = 32) -> keras.Model:
    """Images in [0, 1] `[B, 28, 28, 1]` -> `[B, 4 * width]` features (conv-BN-ReLU x 3, two max-pools, GAP)."""
    inputs = keras.Input((28, 28, 1), name="images")
    x = inputs
    for i, filters in enumerate((width, 2 * width, 4 * width)):
        x = conv_norm_act(x, filters, 3, name=f"block{i + 1}")
        x = keras.layers.MaxPooling2D()(x) if i < 2 else x
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="backbone")


def features(model, images, batch_size=500):
    return np.concatenate([model.predict(images[i:i + batch_size], verbose=0)
                           for i in range(0, len(images), batch_size)])


def probe(extract, x, y, xt, yt, draws, labels, seed):
    """`few_label_accuracy` on `extract(images)` features. It reads only the training rows its draws pick (the
    same `pick_per_class` draws as `draws`), so only those rows are computed; the other rows stay zero, unread."""
    rows = np.unique(np.concatenate(draws))
    train = np.zeros((len(x),) + extract(x[:1]).shape[1:], "float32")
    train[rows] = extract(x[rows])
    return few_label_accuracy(train, y, extract(xt), yt, labels, len(draws), seed)


def supervised(encoder, x, y, xt, yt, idx, steps, learning_rate, seed):
    """Trains `encoder` + a softmax head end to end on `x[idx]` (augmented views) for `steps`; test accuracy."""
    keras.utils.set_random_seed(seed)
    classifier = build_transfer_classifier(encoder, 10)
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, classifier(default_augmentation(seed)(inputs)))
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    batch = min(50, len(idx))
    epochs = max(1, round(steps * batch / len(idx)))
    model.fit(x[idx], y[idx], batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    return float(np.mean(features(classifier, xt).argmax(axis=1) == yt))


def compare(a, b):
    """`a - b` in mean accuracy, and whether it exceeds the larger draw-to-draw std of the two."""
    difference, spread = np.mean(a) - np.mean(b), max(np.std(a), np.std(b))
    return (f"{difference:+.4f} ({'larger than' if abs(difference) > spread else 'within'} the draw-to-draw "
            f"std {spread:.4f})")


def mean_std(runs):
    return f"{np.mean(runs):.4f} ± {np.std(runs):.4f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-seconds", type=float, default=240.0,
                        help="wall-clock seconds of SimCLR pretraining (after the first step)")
    parser.add_argument("--vae-seconds", type=float, default=90.0, help="wall-clock seconds of VAE training")
    parser.add_argument("--steps", type=int, default=150,
                        help="optimizer steps (batch 50) of each fine-tune / scratch run on the labelled images")
    parser.add_argument("--labels", type=int, default=10, help="labelled training images per class")
    parser.add_argument("--repeats", type=int, default=3, help="independent draws of the labelled images")
    parser.add_argument("--batch-size", type=int, default=256, help="SimCLR batch (2 x batch views per step)")
    parser.add_argument("--temperature", type=float, default=0.5, help="InfoNCE temperature tau")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam rate of the fine-tune / scratch runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20 s pretraining, 10 s VAE, 20 steps, 1 draw, 2,000 test images")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.pretrain_seconds, args.vae_seconds, args.steps, args.repeats = 20.0, 10.0, 20, 1
    load, started = os.getloadavg()[0], time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    x, y, _ = samples.fashion_mnist("train")
    xt, yt, _ = samples.fashion_mnist("test")
    if args.quick:
        xt, yt = xt[:2000], yt[:2000]
    x01, xt01 = x.astype("float32") / 255.0, xt.astype("float32") / 255.0
    draws = [pick_per_class(y, args.labels, args.seed + r) for r in range(args.repeats)]

    backbone = build_backbone()
    random_weights = [w.copy() for w in backbone.get_weights()]
    random_probe = probe(lambda images: features(backbone, images), x01, y, xt01, yt, draws, args.labels, args.seed)
    print("random-init probe", random_probe["mean"], flush=True)
    simclr = pretrain_simclr(backbone, x01, epochs=1000, batch_size=args.batch_size, temperature=args.temperature,
                             seed=args.seed, max_seconds=args.pretrain_seconds)
    epochs_seen = simclr["steps"] * args.batch_size / len(x01)
    print(f"SimCLR {simclr['steps']} steps ({epochs_seen:.2f} epochs), loss {simclr['loss']}", flush=True)
    pretrained_weights = backbone.get_weights()
    simclr_probe = probe(lambda images: features(backbone, images), x01, y, xt01, yt, draws, args.labels, args.seed)
    print("SimCLR probe", simclr_probe["mean"], flush=True)

    vae = build_vae((28, 28, 1), 16, "conv", seed=args.seed)
    vae_steps, vae_wall, _ = train_vae(vae, x.astype("float32"), args.vae_seconds, 128, args.seed)
    vae_probe = probe(lambda images: np.concatenate([vae.encode(images[i:i + 2000])[0].numpy()
                                                     for i in range(0, len(images), 2000)]),
                      x.astype("float32"), y, xt.astype("float32"), yt, draws, args.labels, args.seed)
    print("VAE probe", vae_probe["mean"], flush=True)
    pixel_probe = few_label_accuracy(x01, y, xt01, yt, args.labels, args.repeats, args.seed)

    tuned, scratch = [], []
    for r, idx in enumerate(draws):
        for weights, runs in ((pretrained_weights, tuned), (random_weights, scratch)):
            encoder = build_backbone()
            encoder.set_weights(weights)
            runs.append(supervised(encoder, x01, y, xt01, yt, idx, args.steps, args.learning_rate, args.seed + r))
        print(f"draw {r}: fine-tune {tuned[-1]:.4f}, scratch {scratch[-1]:.4f}", flush=True)
    total = time.perf_counter() - started

    rows = [["SimCLR backbone", "fine-tune (end to end)", mean_std(tuned)],
            ["SimCLR backbone", "linear probe (frozen features)", mean_std(simclr_probe["runs"])],
            ["same backbone, random init", "from scratch (end to end)", mean_std(scratch)],
            ["same backbone, random init", "linear probe (frozen features)", mean_std(random_probe["runs"])],
            ["VAE z=16 encoder (mu)", "linear probe (frozen features)", mean_std(vae_probe["runs"])],
            ["raw pixels (784)", "linear probe", mean_std(pixel_probe["runs"])]]
    best_simclr = max((tuned, simclr_probe["runs"]), key=np.mean)
    verdict = [
        f"- SimCLR vs scratch (same labels, same backbone): fine-tune {compare(tuned, scratch)}; linear probe "
        f"{compare(simclr_probe['runs'], random_probe['runs'])} over the random-init probe.",
        f"- Fine-tune vs linear probe of the SimCLR backbone: {compare(tuned, simclr_probe['runs'])}.",
        f"- Best SimCLR ({np.mean(best_simclr):.4f}) vs VAE mu probe: {compare(best_simclr, vae_probe['runs'])}; "
        f"vs raw pixels: {compare(best_simclr, pixel_probe['runs'])}.",
    ]
    command = "python -m benchmarks.contrastive " + " ".join(sys.argv[1:] if argv is None else argv)
    markdown = "\n\n".join([
        f"## Contrastive pretraining (SimCLR) vs scratch vs VAE features, {args.labels} labels/class",
        f"Command: `{command}` · {machine()} · load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at the end, "
        f"on 2 shared cores (other agents were running too) · total {total / 60:.1f} min.",
        f"Fashion-MNIST. Unlabelled pretraining on all 60,000 training images; {args.labels} labelled training "
        f"images per class, {args.repeats} random draws (the same draws for every method); test accuracy on "
        f"{len(yt):,} test images, mean ± std over the draws. Backbone: 3 x (3x3 conv-BN-ReLU) with 32 / 64 / 128 "
        f"filters, 2 max-pools, global average pool (128 features, {backbone.count_params():,} parameters).",
        f"SimCLR: {args.pretrain_seconds:.0f} s budget -> {simclr['steps']} steps of {args.batch_size} images "
        f"(2 views each; {epochs_seen:.2f} epochs), tau {args.temperature}, Adam 1e-3, projection head "
        f"128 -> 128 -> 64 (discarded), views: `default_augmentation` (zoom-in crop up to 30%, horizontal flip, 10% "
        f"translation, contrast 0.4, brightness 0.2); InfoNCE {simclr['loss'][0]:.3f} (first epoch mean) -> "
        f"{simclr['loss'][-1]:.3f} (last). VAE: {args.vae_seconds:.0f} s budget -> {vae_steps} steps of 128 "
        f"({vae_steps * 128 / len(x):.2f} epochs), `benchmarks.vae.train`. Fine-tune and scratch: softmax head, "
        f"Adam {args.learning_rate:g}, {args.steps} steps of batch 50 with the same augmentation, no early stopping "
        "(10 labels per class leave nothing to validate on). Linear probes: `few_label_accuracy` (logistic "
        "regression on standardised features, the `benchmarks.vae` protocol).",
        table(["features", "classifier", f"test accuracy ({args.labels} labels/class)"], rows),
        "Reading (generated from the figures above):\n" + "\n".join(verdict),
        CONTEXT,
    ])
    print(markdown)
    if not args.no_write:
        write_section("contrastive", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
