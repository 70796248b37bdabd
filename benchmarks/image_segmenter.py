"""U-Net vs the same network without skip connections on held-out digit mask scenes.

    .venv/bin/python -m benchmarks.image_segmenter                    # writes the image_segmenter section
    .venv/bin/python -m benchmarks.image_segmenter --train 200 --test 50 --epochs 2 --no-write   # smoke run

Both networks come from `toolkit.models.unet.build_unet` with the same widths and are trained by the
image-segmenter app with the same budget (epochs, batch size, loss, learning rate, seed) in the same
process; each gets the same wall-clock cap. Data: `digit_scenes` (real 8x8 digits scaled to 16-32 px,
colour-tinted, pasted on a 64x64 canvas; 1-3 objects), written as image + mask folders and read back
through the app's folder loader. Test scenes use a different seed (new placements, scales, tints and
combinations; the 1,797 source digit bitmaps are shared, scikit-learn ships no digit split).
Targets: U-Net mIoU >= 0.85 and >= 5 points above the no-skip network.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import keras

from benchmarks._report import machine, table, write_section


class TimeCap(keras.callbacks.Callback):
    """Stops training at the end of the epoch during which `seconds` ran out."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.epochs_run = seconds, 0

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run = epoch + 1
        if time.time() - self.start > self.seconds:
            self.model.stop_training = True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--classes", default="0,1,2,3", help="source digit classes (plus background)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--filters", default="16,32,64")
    parser.add_argument("--bottleneck", type=int, default=128)
    parser.add_argument("--loss", default="ce+dice")
    parser.add_argument("--cap-minutes", type=float, default=12.0, help="wall-clock cap per network")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)

    from apps import image_segmenter
    from toolkit.data.mask_writer import write_segmentation_folder
    from toolkit.data.samples import digit_scenes

    classes = [int(c) for c in args.classes.split(",")]
    scene_args = dict(image_size=args.image_size, objects=(1, 3), object_size=(16, 32), classes=classes)
    folder = tempfile.mkdtemp(prefix="segbench-")
    start = time.time()
    write_segmentation_folder(digit_scenes(args.train, seed=1, **scene_args), os.path.join(folder, "train"))
    write_segmentation_folder(digit_scenes(args.test, seed=2, **scene_args), os.path.join(folder, "test"))
    print(f"data written to {folder} in {time.time() - start:.1f}s", flush=True)

    results = {}
    for label, skips in (("U-Net (skips)", True), ("no skips (encoder-decoder)", False)):
        cap = TimeCap(args.cap_minutes * 60)
        app = image_segmenter.APP
        original = app.callbacks
        app.callbacks = lambda ctx, _cap=cap: [*original(ctx), _cap]
        start = time.time()
        try:
            run = image_segmenter.train(
                os.path.join(folder, "train"), test_data=os.path.join(folder, "test"), epochs=args.epochs,
                batch_size=args.batch_size, learning_rate=args.learning_rate, filters=args.filters,
                bottleneck=args.bottleneck, skip_connections=skips, loss=args.loss, augment="none",
                validation_split=0.0, patience=-1, verbose=2, run_dir=os.path.join(folder, "runs"),
            )
        finally:
            app.callbacks = original
        seconds = time.time() - start
        results[label] = (run, cap.epochs_run, seconds)
        print(f"{label}: mIoU {run.metrics['mean_iou']:.4f}  Dice {run.metrics['mean_dice']:.4f}  "
              f"{cap.epochs_run} epochs  {seconds:.0f}s", flush=True)
        print(image_segmenter.APP.summary(run.metrics), flush=True)

    (unet, unet_epochs, _), (plain, _, _) = results["U-Net (skips)"], results["no skips (encoder-decoder)"]
    gap = 100 * (unet.metrics["mean_iou"] - plain.metrics["mean_iou"])
    rows = [[label, f"{run.metrics['mean_iou']:.4f}", f"{run.metrics['mean_dice']:.4f}",
             f"{run.metrics['pixel_accuracy']:.4f}", run.model.count_params(), epochs, f"{seconds:.0f}"]
            for label, (run, epochs, seconds) in results.items()]
    per_class = [[name, *[_fmt(r[0].metrics["per_class"][name]["iou"]) for r in results.values()]]
                 for name in unet.metrics["per_class"]]
    targets = (f"U-Net mIoU {unet.metrics['mean_iou']:.4f} (target >= 0.85: "
               f"{'met' if unet.metrics['mean_iou'] >= 0.85 else 'NOT met'}); gap {gap:+.1f} points over no-skip "
               f"(target >= 5: {'met' if gap >= 5 else 'NOT met'})")
    budget_note = ("" if all(e == args.epochs for _, e, _ in results.values()) else
                   f" The {args.cap_minutes:g}-minute cap stopped a network before {args.epochs} epochs.")
    markdown = "\n\n".join([
        "## Image segmenter: U-Net vs no skip connections",
        f"`{' '.join(['.venv/bin/python -m benchmarks.image_segmenter', *(argv if argv is not None else sys.argv[1:])])}`"
        f" — {machine()}",
        f"Held-out digit mask scenes: {args.train} train / {args.test} test, {args.image_size}x{args.image_size}, "
        f"digits {classes} + background ({len(classes) + 1} classes), 1-3 objects of 16-32 px; test scenes from "
        "another seed (the source digit bitmaps are shared). Both networks: `build_unet(filters="
        f"({args.filters}), bottleneck={args.bottleneck})`, loss {args.loss}, Adam {args.learning_rate}, batch "
        f"{args.batch_size}, {args.epochs} epochs, no augmentation, same seed, same run.{budget_note}",
        table(["network", "mIoU", "mean Dice", "pixel acc.", "params", "epochs", "train s"], rows),
        table(["class IoU", *results], per_class),
        targets + ". Timings are on 2 CPU cores shared with other jobs: read them as rough.",
    ])
    print(markdown)
    if not args.no_write:
        write_section("image_segmenter", markdown)
    return 0


def _fmt(value):
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
