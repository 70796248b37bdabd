"""What a user gets from the defaults: old vs new default options of the segmenter and the image classifier.

    .venv/bin/python -m benchmarks.defaults          # writes the defaults_segmenter and defaults_classifier sections
    .venv/bin/python -m benchmarks.defaults --parts classifier --seeds 1 --no-write   # smoke run

Nothing is tuned here: each "new" run passes only the data (plus a run folder and progress output); each "old" run
passes the options the defaults had before issue 15 item 9, nothing else.

- Segmenter: digit mask scenes as in `benchmarks.image_segmenter` (real 8x8 digits scaled to 16-32 px, tinted,
  1-3 per 64x64 canvas, digits 0-3 + background), written as image + mask folders and read back by the app; test
  scenes from another seed. Old defaults: `--filters 64,128,256 --bottleneck 512 --no-batch-norm
  --learning-rate 1e-3 --batch-size 16`; they are ~10x slower per epoch, so they get a wall-clock cap (the table
  says how many epochs they ran).
- Image classifier: Fashion-MNIST t-shirt / trouser / sneaker, N training images per class (10 and 100), scored on
  200 test images per class. Old default: `--batch-size 64` given explicitly (so no automatic batch size); both
  columns get the new early-stopping rule (off under 20 validation images), so the difference is the batch alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks._report import machine, table, write_section

OLD_SEGMENTER = dict(filters="64,128,256", bottleneck=512, batch_norm=False, learning_rate=1e-3, batch_size=16,
                     lr_schedule="constant")
OLD_CLASSIFIER = dict(batch_size=64)
CLASSES = (0, 1, 7)  # Fashion-MNIST t-shirt/top, trouser, sneaker


def _load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def segmenter(args, folder) -> tuple:
    from apps import image_segmenter
    from benchmarks.image_segmenter import TimeCap
    from toolkit.data.mask_writer import write_segmentation_folder
    from toolkit.data.samples import digit_scenes

    scene_args = dict(image_size=args.seg_size, objects=(1, 3), object_size=(16, 32), classes=[0, 1, 2, 3])
    train_dir, test_dir = os.path.join(folder, "scenes", "train"), os.path.join(folder, "scenes", "test")
    write_segmentation_folder(digit_scenes(args.seg_train, seed=1, **scene_args), train_dir)
    write_segmentation_folder(digit_scenes(args.seg_test, seed=2, **scene_args), test_dir)
    rows, loads, curves = [], [_load()], []
    for label, options, cap_minutes in (("new defaults", {}, None), ("old defaults", OLD_SEGMENTER, args.old_cap)):
        app = image_segmenter.APP
        original, cap = app.callbacks, TimeCap(cap_minutes * 60 if cap_minutes else 1e9)
        app.callbacks = lambda ctx, _cap=cap: [*original(ctx), _cap]
        start = time.time()
        try:
            run = image_segmenter.train(train_dir, test_data=test_dir, verbose=2, resume="never",
                                        run_dir=os.path.join(folder, "runs"), **options)
        finally:
            app.callbacks = original
        seconds = time.time() - start
        info = run.info
        network = (f"{','.join(map(str, info['filters']))} / {info['bottleneck']}, batch norm "
                   f"{'on' if run.config.batch_norm else 'off'}, lr {run.config.learning_rate:g} {run.config.lr_schedule}, "
                   f"batch {info['batch_size']}")
        epochs = cap.epochs_run
        capped = " (cap)" if cap_minutes and epochs < run.config.epochs and seconds > cap_minutes * 60 else ""
        rows.append([label, network, run.model.count_params(), f"{epochs}{capped}", f"{seconds:.0f}",
                     f"{seconds / max(epochs, 1):.1f}", f"{run.metrics['mean_iou']:.4f}",
                     f"{run.metrics['pixel_accuracy']:.4f}"])
        curve = " ".join(f"{v:.2f}" for v in run.history.get("val_mean_iou", []))
        curves.append(f"{label}: {curve}")
        print(label, rows[-1], curve, flush=True)
        loads.append(_load())
    return rows, loads, curves


def classifier(args, folder) -> tuple:
    from apps import image_classifier
    from toolkit.data import samples

    x, y, names = samples.fashion_mnist("train")
    x_test, y_test, _ = samples.fashion_mnist("test")
    names = [names[c] for c in CLASSES]
    remap = np.full(10, -1)
    remap[list(CLASSES)] = np.arange(len(CLASSES))
    test_idx = np.concatenate([np.flatnonzero(y_test == c)[:200] for c in CLASSES])
    test = (x_test[test_idx], remap[y_test[test_idx]], names)
    rows, loads = [], [_load()]
    for per_class in args.per_class:
        for seed in args.seeds[: (len(args.seeds) if per_class <= 10 else 1)]:
            rng = np.random.default_rng(seed)
            idx = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in CLASSES])
            data = (x[idx], remap[y[idx]], names)
            for label, options in (("new defaults", {}), ("old defaults", OLD_CLASSIFIER)):
                start = time.time()
                run = image_classifier.train(data, test_data=test, verbose=0, resume="never", seed=seed,
                                             run_dir=os.path.join(folder, "runs"), **options)
                seconds = time.time() - start
                columns = np.asarray(run.metrics["confusion_matrix"]).sum(axis=0)  # rows: true, columns: predicted
                steps = -(-run.info["num_train"] // run.info["batch_size"])
                rows.append([f"3 x {per_class}", seed, label, run.info["batch_size"], steps,
                             len(run.history.get("loss", [])), f"{seconds:.0f}", f"{run.metrics['accuracy']:.4f}",
                             int((columns > 0).sum())])
                print(rows[-1], flush=True)
            loads.append(_load())
    return rows, loads


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="segmenter,classifier")
    parser.add_argument("--seg-train", type=int, default=600)
    parser.add_argument("--seg-test", type=int, default=200)
    parser.add_argument("--seg-size", type=int, default=64)
    parser.add_argument("--old-cap", type=float, default=6.0, help="wall-clock minutes for the old segmenter defaults")
    parser.add_argument("--per-class", type=lambda s: [int(v) for v in s.split(",")], default=[10, 100])
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[1337, 1, 2],
                        help="seeds (data sample and training) for the 10-per-class set; bigger sets use the first")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    folder = tempfile.mkdtemp(prefix="defaults-bench-")
    command = " ".join([".venv/bin/python -m benchmarks.defaults", *(argv if argv is not None else sys.argv[1:])])
    head = (f"`{command}` — {machine()}. Each run passes only the data (new) or only the old default values "
            "(old); no tuning. Timings are wall seconds on 2 CPU cores shared with other jobs (load averages "
            "1/5/15 min below): read them as rough, and the ratios as the finding.")
    written = []
    if "segmenter" in parts:
        rows, loads, curves = segmenter(args, folder)
        sections = ["## Defaults a user gets (issue 15 item 9): image segmenter", head,
            f"{args.seg_train} train / {args.seg_test} test digit scenes, {args.seg_size}x{args.seg_size}, 5 classes. "
            "Defaults otherwise as shipped: 10 epochs, early stopping (patience 5), 10% validation split, ce+dice, "
            f"flip/zoom/translate augmentation. The old defaults ran under a {args.old_cap:g}-minute cap.",
            table(["options", "network", "params", "epochs", "train s", "s/epoch", "held-out mIoU", "pixel acc."],
                  rows),
            "Validation mIoU after each epoch (10% of the training scenes): " + "; ".join(curves) + ".",
            f"Load average before / after each run: {' -> '.join(loads)}.",
        ]
        written.append(("defaults_segmenter", "\n\n".join(sections)))
    if "classifier" in parts:
        rows, loads = classifier(args, folder)
        sections = ["## Defaults a user gets (issue 15 item 9): image classifier", head,
            "Fashion-MNIST t-shirt / trouser / sneaker, N train images per class. Held out: 200 test images per class. Defaults otherwise as shipped (small_cnn width 32, 10 epochs, "
            "patience 5 on the 10% validation split, switched off when it holds fewer than 20 images, flip/translate). "
            "`steps` = training steps per epoch. The old-defaults rows differ only in `--batch-size 64` (they also get the "
            "early-stopping rule).",
            table(["train set", "seed", "options", "batch", "steps", "epochs", "train s", "test accuracy",
                   "classes predicted"], rows),
            f"Load average before / after each set: {' -> '.join(loads)}.",
        ]
        written.append(("defaults_classifier", "\n\n".join(sections)))
    for name, markdown in written:
        print(markdown)
        if not args.no_write:
            write_section(name, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
