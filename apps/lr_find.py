"""`toolkit <task> lr-find`: the learning-rate range test (Smith 2017) run through a task's own hooks.

The task's data, model and loss are exactly what `train` would use (its `load_data`, `build_model` and `fit`
hooks), with the rate raised from 1e-7 every batch for one epoch. Writes `lr_find.png` (loss against rate,
steepest descent and lowest loss marked) and `lr_find.json` into the output folder and returns the
suggested rates.

    from apps import image_classifier
    from apps.lr_find import lr_find
    result = lr_find(image_classifier.APP, "data/flowers", output_dir="lr_find")
    result["suggested"], result["cyclical_range"]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import tempfile

from apps.config import explicit_options

logger = logging.getLogger(__name__)

# Options the range test fixes: one epoch, a constant rate it sets itself, no early stop, no second phase.
FIXED = {"epochs": 1, "patience": -1, "tensorboard": False, "lr_schedule": "constant", "fine_tune_epochs": 0,
         "max_minutes": 0.0}


def lr_find(app, data, output_dir: str = "lr_find", min_lr: float = 1e-7, max_lr: float = 10.0,
            steps: int | None = None, config=None, **options) -> dict:
    """Runs the range test for `app` on `data`; returns `analyse_range_test`'s dict plus `plot` and `json`.

    Raises:
        ValueError: bad bounds, a model whose recipe owns its schedule (the BERT recipe), or too few batches.
    """
    import keras  # here, not at the top: `add_parser` builds `--help`, which must not import TensorFlow

    from apps.base import RunContext
    from toolkit.training.distribution import get_strategy

    if not 0 < min_lr < max_lr:  # before any data is read
        raise ValueError(f"need 0 < min_lr < max_lr. Received: min_lr={min_lr}, max_lr={max_lr}")
    fields = {f.name for f in dataclasses.fields(app.config_cls)}
    if "learning_rate" in getattr(app, "ignored_options", ()):
        raise ValueError(f"{app.name} trains no weights with a learning rate: nothing for lr-find to test")
    fixed = {k: v for k, v in FIXED.items() if k in fields}
    config = app.make_config(config, **{**options, **fixed, "learning_rate": min_lr, "lr_range": ""})
    if getattr(config, "model", "") == "bert":
        raise ValueError("lr-find: the BERT recipe sets its own warm-up and decay schedule; pass --learning-rate "
                         "to train instead (the recipe's 3e-5 is the usual start)")
    strategy = get_strategy(config.strategy)
    keras.utils.set_random_seed(config.seed)
    with tempfile.TemporaryDirectory(prefix="lr_find_") as scratch:
        ctx = RunContext(config=config, explicit=explicit_options(app.config_cls, None, **options), run_dir=scratch,
                         strategy=strategy)
        ctx.data = app.load_data(data, config)
        finder = _range_test(app, ctx, min_lr, max_lr, steps)
    return _report(app, finder.result(), max_lr, output_dir, "lr_find")


def _range_test(app, ctx, min_lr, max_lr, steps):
    """One epoch of `app.fit` with the rate ramped by `LRRangeTest` (ctx.config already fixed to `FIXED`)."""
    from toolkit.training.lr_finder import LRRangeTest

    with ctx.strategy.scope():
        model = app.build_model(ctx)
        app.prepare(model, ctx)
        finder = LRRangeTest(min_lr, max_lr, steps=steps)
        app.fit(model, ctx, [finder])
    return finder


def _report(app, result, max_lr, output_dir, stem):
    from toolkit.training.lr_finder import plot_range_test

    if not result["diverged"]:
        result["warning"] = (f"the loss never diverged up to max_lr={max_lr:g}: the lowest-loss rate may lie above "
                             "it (raise --max-lr)")
        logger.warning("lr-find: %s", result["warning"])
    os.makedirs(output_dir, exist_ok=True)
    result["plot"] = plot_range_test(result, os.path.join(output_dir, f"{stem}.png"),
                                     title=f"{app.name}: learning-rate range test")
    result["json"] = os.path.join(output_dir, f"{stem}.json")
    with open(result["json"], "w") as f:
        json.dump(result, f, indent=2)
    return result


RANGE_FILE = "lr_range.json"  # in the run directory: a resumed run reuses the bounds instead of re-testing


def auto_lr_range(app, ctx, min_lr: float = 1e-7, max_lr: float = 10.0, print_fn=None):
    """`--lr-schedule cyclical --lr-range auto`: the range test on the run's own training data (`ctx.data`),
    before training; returns `ctx.config` with `lr_range` set to the found 'LOW,HIGH'.

    The bounds are `toolkit.training.lr_finder.cyclical_bounds` (Smith 2017, section 3.3: max_lr half the
    lowest-loss rate, at least the steepest-descent rate; base_lr a quarter of it). The test, its plot and the
    bounds are written to RUN_DIR/lr_range.json / .png; a resumed run reads them back instead of re-testing.
    A test whose loss never diverged is warned about (printed, logged, and kept in the json): its upper bound
    may be too low.
    """
    import copy
    import functools

    import keras

    print_fn = print_fn or functools.partial(print, file=sys.stderr)  # a training note: stdout stays for --json
    path = os.path.join(ctx.run_dir, RANGE_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            result = json.load(f)
        low, high = result["cyclical_range"]
        print_fn(f"{app.name}: --lr-range auto: reusing the range test in {path}: cyclical rate {low:.3g} .. "
                 f"{high:.3g}")
    else:
        fields = {f.name for f in dataclasses.fields(app.config_cls)}
        fixed = {k: v for k, v in FIXED.items() if k in fields}
        config = dataclasses.replace(ctx.config, **fixed, learning_rate=min_lr, lr_range="", verbose=0)
        # a copy of the task data: a hook (the automatic batch size) may re-batch it; the run keeps the original
        scratch = dataclasses.replace(ctx, config=config, data=copy.copy(ctx.data), state={})
        finder = _range_test(app, scratch, min_lr, max_lr, None)
        result = _report(app, finder.result(), max_lr, ctx.run_dir, "lr_range")
        keras.utils.set_random_seed(ctx.config.seed)  # the real model starts as it would without the test
        low, high = result["cyclical_range"]
        print_fn(f"{app.name}: --lr-range auto: range test over {len(result['lrs'])} batches: steepest descent at "
                 f"{result['steepest']:.3g}, lowest loss at {result['minimum']:.3g} -> cyclical rate {low:.3g} .. "
                 f"{high:.3g} (Smith 2017: max half the lowest-loss rate, base a quarter of max); plot: "
                 f"{result['plot']}")
    if result.get("warning"):
        print_fn(f"{app.name}: warning: --lr-range auto: {result['warning']}")
    from apps.config import record_resolved

    record_resolved(ctx.run_dir, "lr_range", [low, high])
    return dataclasses.replace(ctx.config, lr_range=f"{low!r},{high!r}")


def summary(result: dict) -> str:
    """The lines `toolkit <task> lr-find` prints."""
    low, high = result["cyclical_range"]
    lines = [f"batches: {len(result['lrs'])}, rates {result['lrs'][0]:.1e} .. {result['lrs'][-1]:.1e}",
             f"suggested learning rate (steepest descent): {result['suggested']:.2e}",
             f"lowest loss at: {result['minimum']:.2e}",
             f"cyclical bounds (Smith 2017: max half the lowest-loss rate, base a quarter of max): "
             f"--lr-schedule cyclical --lr-range {low:.2e},{high:.2e} (or --lr-range auto)",
             f"plot: {result['plot']}"]
    if result.get("warning"):
        lines.append(f"warning: {result['warning']}")
    return "\n".join(lines)


def add_parser(verbs, spec, add_config_flags) -> None:
    """The `lr-find` verb of `toolkit <task>` (its training options are the task's `train` options)."""
    parser = verbs.add_parser(
        "lr-find", help="learning-rate range test: loss against an exponentially rising rate, suggested rate",
        description="Raises the learning rate from --min-lr every batch for one epoch (Smith 2017), with the "
                    "task's own data, model and loss; writes lr_find.png (steepest descent and lowest loss marked) "
                    "and lr_find.json, and prints the suggested rate and cyclical bounds.")
    parser.add_argument("--data", required=True, help="training data, as for train")
    parser.add_argument("--min-lr", type=float, default=1e-7, help="first rate (default: 1e-7, the notes')")
    parser.add_argument("--max-lr", type=float, default=10.0, help="last rate, unless the loss diverges first")
    parser.add_argument("--steps", type=int, default=None, help="batches to ramp over (default: one epoch)")
    parser.add_argument("--output", default="lr_find", metavar="DIR", help="folder for lr_find.png / .json")
    add_config_flags(parser, spec.config_cls, (*spec.ignored_options, *FIXED, "learning_rate", "run_dir", "resume",
                                               "monitor_layers", "monitor_every", "lr_range"))


def run(app, args, overrides: dict) -> int:
    result = lr_find(app, args.data, output_dir=args.output, min_lr=args.min_lr, max_lr=args.max_lr,
                     steps=args.steps, **overrides)
    print(summary(result))
    return 0
