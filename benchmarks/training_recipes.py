"""The notes' training recipe against the apps' Adam default (issue 19): Fashion-MNIST, the built-in CNN
(`small_cnn`, the image classifier's default backbone and head), the same CPU budget for each arm.

- default: Adam (0.9 / 0.999, eps 1e-8), constant 1e-3, as many epochs as the budget allows.
- recipe: the LR range test (Smith 2017; `toolkit.training.lr_finder`, 1e-7 .. 10 over `--range-steps` batches)
  with SGD + Nesterov momentum 0.9, bounds by `cyclical_bounds` (max = half the lowest-loss rate, never below the
  steepest descent; base = max / 4), then the triangular cyclical schedule (two full cycles, ending at the base
  rate) over the epochs the rest of the budget allows. The range test's cost is part of the recipe's budget.

Budget = process CPU seconds (all threads), or with `--epochs N` the compute of N epochs (on a heavily loaded
machine the CPU clock also runs while TensorFlow's threads wait for a core, so epochs are the fairer unit).
The epoch count of each arm is fixed up front from a timed first epoch (the schedule needs its length).
Everything else is equal: 59,000 training / 1,000 validation images, batch 128, no augmentation, the
head's dropout 0.5, seed; test accuracy on the 10,000 test images with the final weights.

    flock /tmp/bench.lock nice -n 5 .venv/bin/python -m benchmarks.training_recipes --cpu-minutes 5
    .venv/bin/python -m benchmarks.training_recipes --quick --no-write     # smoke run

Writes the `training_recipes` section of BENCHMARKS.md and benchmarks/results/training_recipes_lr_range.png.
"""

from __future__ import annotations

import argparse
import os
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._report import machine, table, write_section  # noqa: E402
from toolkit.data import samples  # noqa: E402
from toolkit.models.transfer import build_image_classifier  # noqa: E402
from toolkit.training import CyclicalLearningRate  # noqa: E402
from toolkit.training.lr_finder import LRRangeTest, plot_range_test  # noqa: E402
from toolkit.training.optimizers import build_optimizer  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")


class CpuClock(keras.callbacks.Callback):
    """Records the process CPU seconds each epoch costs."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(time.process_time() - self._start)


def model_of(seed):
    keras.utils.set_random_seed(seed)
    return build_image_classifier((28, 28, 1), 10)  # small_cnn, width 32, Dense 256, dropout 0.5: the defaults


def fit_budget(model, optimizer, x, y, val, budget, first_epoch_cost, batch, planned=None):
    """Fits for `planned` epochs, or as many as `budget` CPU seconds allow at `first_epoch_cost` each."""
    epochs = planned or max(1, int(budget // first_epoch_cost))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = CpuClock()
    history = model.fit(x, y, batch_size=batch, epochs=epochs, validation_data=val, callbacks=[clock], verbose=2)
    return epochs, clock, history.history


def timed_first_epoch(x, y, batch, seed):
    """CPU seconds of one Adam epoch of the model (its own warm-up excluded: the second epoch's cost)."""
    model = model_of(seed)
    model.compile(optimizer=build_optimizer("adam", 1e-3), loss="sparse_categorical_crossentropy")
    clock = CpuClock()
    n = min(len(x), 12_800)
    model.fit(x[:n], y[:n], batch_size=batch, epochs=2, callbacks=[clock], verbose=0)
    return clock.epochs[1] * len(x) / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-minutes", type=float, default=5.0, help="CPU budget of each arm")
    parser.add_argument("--epochs", type=int, default=0, help="budget in epochs instead (each arm the compute of N "
                        "epochs; the range test's batches count as their fraction of an epoch): robust to a loaded "
                        "machine, whose CPU clock runs while threads wait")
    parser.add_argument("--train", type=int, default=59_000, help="training images (the first N)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--range-steps", type=int, default=300, help="batches of the range test")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--quick", action="store_true", help="smoke run: 6,000 images, 0.3 CPU-minutes")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    x, y, _ = samples.fashion_mnist("train")
    xt, yt, _ = samples.fashion_mnist("test")
    x, xt = x.astype("float32"), xt.astype("float32")  # the model normalises raw [0, 255] pixels itself
    if args.quick:
        x, y, xt, yt, args.cpu_minutes, args.range_steps = x[:6000], y[:6000], xt[:1000], yt[:1000], 0.3, 60
    val = (x[-1000:], y[-1000:])
    x, y = x[:-1000][:args.train], y[:-1000][:args.train]
    load_start, wall = os.getloadavg(), time.monotonic()
    steps_per_epoch = -(-len(x) // args.batch)
    if args.epochs:  # budget in epoch units
        budget, epoch_cost = float(args.epochs), 1.0
        unit = f"{args.epochs} epochs of compute per arm"
    else:
        budget = args.cpu_minutes * 60
        epoch_cost = timed_first_epoch(x, y, args.batch, args.seed)
        unit = f"{args.cpu_minutes:g} CPU-minutes per arm (process CPU time, all threads)"
    print(f"one epoch ~ {epoch_cost:.1f}; budget {budget:.0f} per arm ({unit})", flush=True)
    rows = []

    # the default: Adam 1e-3, constant
    model = model_of(args.seed)
    start = time.process_time()
    epochs, clock, history = fit_budget(model, build_optimizer("adam", 1e-3), x, y, val, budget, epoch_cost,
                                        args.batch)
    adam = {"arm": "default: Adam 1e-3, constant", "epochs": epochs, "cpu_s": time.process_time() - start,
            "test_accuracy": float(model.evaluate(xt, yt, verbose=0)[1]), "val_accuracy": history["val_accuracy"][-1],
            "rates": "1e-3"}
    rows.append(adam)
    print(adam, flush=True)

    # the recipe: range test (SGD + Nesterov) -> cyclical
    start = time.process_time()
    model = model_of(args.seed)
    model.compile(optimizer=build_optimizer("sgd", 1e-7, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy")
    finder = LRRangeTest(1e-7, 10.0, steps=args.range_steps)
    model.fit(x, y, batch_size=args.batch, epochs=1, callbacks=[finder], verbose=0)
    result = finder.result()
    low, high = result["cyclical_range"]
    os.makedirs(RESULTS, exist_ok=True)
    plot = plot_range_test(result, os.path.join(RESULTS, "training_recipes_lr_range.png"),
                           title="Fashion-MNIST small_cnn, SGD + Nesterov: range test")
    range_cost = (len(result["lrs"]) / steps_per_epoch if args.epochs else time.process_time() - start)
    print(f"range test: {len(result['lrs'])} batches, cost {range_cost:.2f}, steepest {result['steepest']:.3g}, "
          f"lowest loss {result['minimum']:.3g}, diverged {result['diverged']} -> cyclical {low:.3g} .. {high:.3g}",
          flush=True)
    epochs = max(1, int((budget - range_cost + 1e-9) // epoch_cost))
    steps = steps_per_epoch * epochs
    model = model_of(args.seed)  # a fresh start: the range test's model has seen rates up to divergence
    schedule = CyclicalLearningRate(low, high, step_size=max(1, steps // 4))
    _, clock, history = fit_budget(model, build_optimizer("sgd", schedule, momentum=0.9, nesterov=True), x, y, val,
                                   budget, epoch_cost, args.batch, planned=epochs)
    recipe = {"arm": "recipe: range test -> cyclical, SGD + Nesterov 0.9", "epochs": epochs,
              "cpu_s": time.process_time() - start, "test_accuracy": float(model.evaluate(xt, yt, verbose=0)[1]),
              "val_accuracy": history["val_accuracy"][-1], "rates": f"{low:.3g} .. {high:.3g}"}
    rows.append(recipe)
    print(recipe, flush=True)
    minutes = (time.monotonic() - wall) / 60
    if args.no_write:
        return
    load_end = os.getloadavg()
    reduced = ("" if not args.epochs and args.cpu_minutes >= 10 else
               " (the issue asks 10 CPU-minutes: reduced to fit the shared, heavily loaded 2-core machine)")
    shortfall = (f"at the issue's budget each arm got {adam['epochs']} (Adam) / {recipe['epochs']} (recipe) epochs "
                 f"of {len(x):,} images on these 2 cores (one epoch ~ {epoch_cost / 60:.1f} CPU-minutes)")
    met = recipe["test_accuracy"] >= 0.93 and recipe["test_accuracy"] >= adam["test_accuracy"] - 0.002
    body = [
        "## Training recipe vs the Adam default (benchmarks/training_recipes.py)",
        "",
        f"Fashion-MNIST, built-in small_cnn with the app's default head, {len(x):,} training / 1,000 validation / "
        f"{len(xt):,} test images, batch {args.batch}, no augmentation, seed {args.seed}. Budget "
        f"**{unit}**{reduced}, the "
        f"recipe's range test ({len(result['lrs'])} batches, {range_cost:.2f} of the budget's units) included. "
        f"{minutes:.1f} min wall on {machine()}; load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at "
        f"end.",
        "",
        table(["arm", "learning rate", "epochs", "CPU s", "val accuracy", "test accuracy"],
              [[r["arm"], r["rates"], r["epochs"], round(r["cpu_s"]), round(r["val_accuracy"], 4),
                round(r["test_accuracy"], 4)] for r in rows]),
        "",
        f"Range test (SGD + Nesterov): steepest descent {result['steepest']:.3g}, lowest loss {result['minimum']:.3g}"
        f", diverged: {result['diverged']}; plot: benchmarks/results/training_recipes_lr_range.png.",
        "",
        f"Target (the recipe at least matches Adam and reaches >= 0.93 test accuracy): **{'met' if met else 'missed'}**"
        f" ({recipe['test_accuracy']:.4f} vs {adam['test_accuracy']:.4f}): matches Adam: "
        f"{'yes' if recipe['test_accuracy'] >= adam['test_accuracy'] - 0.002 else 'no'}; >= 0.93: "
        f"{'yes' if recipe['test_accuracy'] >= 0.93 else 'no'}. 0.93 takes the built-in CNN ~10+ epochs on the full "
        f"54-59K images; {'a budget this small stops both arms far short of it' if reduced else shortfall}.",
    ]
    write_section("training_recipes", "\n".join(body))
    print("wrote BENCHMARKS.md section training_recipes;", plot)


if __name__ == "__main__":
    main()
