"""Vision backbones side by side (issue 17). Writes the `vision` section of BENCHMARKS.md.

    .venv/bin/python -m benchmarks.vision [--minutes 2] [--backbones small_cnn,resnet18,...] [--train N]

Every backbone goes through the same app (`apps.image_classifier`, its defaults: width 32, Dense(256) head,
flip/translate augmentation, Adam 1e-3) on the same Fashion-MNIST data (toolkit.data.samples, offline), and gets
the same wall-clock training budget on this machine: a callback stops training once the budget is spent (the
epoch count is only an upper bound). Reported: held-out test accuracy, parameters, CPU minutes (process time,
both cores), wall minutes, training images/s.
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

COMMAND = ".venv/bin/python -m benchmarks.vision"
DEFAULT_BACKBONES = ("small_cnn", "resnet18", "resnet_ode", "resnet18_mhc", "vit_tiny", "vit_tiny_moe",
                     "vit_tiny_mhc")


def _budget_app(seconds: float):
    """The image-classifier app with one more callback: stop training once `seconds` of wall time are spent."""
    import keras

    from apps.image_classifier import ImageClassifierApp

    class Budget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.start, self.first, self.images, self.epochs, self.train_seconds = None, None, 0, 0, 0.0

        def on_train_begin(self, logs=None):
            self.start = time.time()

        def on_train_batch_end(self, batch, logs=None):
            now = time.time()
            if self.first is None:  # images/s from the end of the first step: tracing and compiling excluded
                self.first = now
            else:
                self.images += BATCH
            if now - self.start > seconds:
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs += 1

        def on_train_end(self, logs=None):
            self.train_seconds = time.time() - (self.first or self.start)

    class BudgetApp(ImageClassifierApp):
        budget = None

        def callbacks(self, ctx):
            BudgetApp.budget = Budget()
            return [*super().callbacks(ctx), BudgetApp.budget]

    return BudgetApp()


BATCH = 128


def run_one(backbone: str, data, test, minutes: float) -> list:
    from toolkit.models.transfer import count_params

    app = _budget_app(minutes * 60)
    cpu, wall = time.process_time(), time.time()
    run = app.train(data, test_data=test, backbone=backbone, epochs=100, batch_size=BATCH, patience=-1,
                    validation_split=0.05, verbose=0, tensorboard=False, run_dir=tempfile.mkdtemp(prefix="vision_"))
    cpu_min, wall_min = (time.process_time() - cpu) / 60, (time.time() - wall) / 60
    budget = type(app).budget
    rate = budget.images / max(budget.train_seconds, 1e-9)
    params = count_params(run.model)["total"]
    row = [backbone, run.metrics["accuracy"], f"{params:,}", budget.epochs, cpu_min, wall_min, round(rate)]
    print(row, os.getloadavg(), flush=True)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="wall-clock training budget per backbone")
    parser.add_argument("--backbones", default=",".join(DEFAULT_BACKBONES))
    parser.add_argument("--train", type=int, default=60000, help="training images (Fashion-MNIST train split)")
    parser.add_argument("--test", type=int, default=5000, help="held-out test images (test split)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    from toolkit.data import samples

    x, y, names = samples.fashion_mnist("train")
    xt, yt, _ = samples.fashion_mnist("test")
    rng = np.random.default_rng(0)
    keep, keep_test = rng.permutation(len(x))[: args.train], rng.permutation(len(xt))[: args.test]
    data, test = (x[keep], y[keep], names), (xt[keep_test], yt[keep_test], names)
    load_before = os.getloadavg()
    rows = [run_one(b.strip(), data, test, args.minutes) for b in args.backbones.split(",") if b.strip()]
    load_after = os.getloadavg()
    argv_text = " ".join(sys.argv[1:] if argv is None else argv)
    markdown = (
        "## Vision backbones (issue 17)\n\n"
        f"Command: `{COMMAND}{' ' + argv_text if argv_text else ''}`  \n"
        f"Machine: {machine()}; load average (1/5/15 min) {load_before[0]:.1f}/{load_before[1]:.1f}/"
        f"{load_before[2]:.1f} before, {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f} after "
        "(the 2 cores were shared with other jobs).\n\n"
        f"Fashion-MNIST, {len(keep):,} training images (5% held out for validation), {len(keep_test):,} test "
        f"images; each backbone gets {args.minutes:g} wall minutes of training through `apps.image_classifier` "
        "at its defaults (width 32, batch 128, Adam 1e-3, flip/translate).\n\n"
        + table(["backbone", "test accuracy", "parameters", "epochs started", "CPU minutes", "wall minutes",
                 "train images/s"], rows)
    )
    print(markdown)
    if not args.no_write:
        write_section("vision", markdown)


if __name__ == "__main__":
    main()
