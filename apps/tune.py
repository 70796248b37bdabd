"""`toolkit <task> tune`: hyperparameter search over a task's Config with keras-tuner (random search or
Hyperband), scored on the validation split only, resumable after a kill, with a results table, a plot and
the best options written as JSON (`toolkit <task> train --config best.json` reproduces the best trial).

The search space starts from the notes' table (F3:3077-3084): learning rate 1e-5..1e-2 (log), batch 16..512,
dropout 0..0.5, and for the fields a task has, its widths. Each trial runs the task's own hooks (`load_data`,
`build_model`, `fit`), so what is tuned is exactly what `train` trains. keras-tuner's oracles pick the
values and keep the state in the output folder (`--overwrite` starts over); a trial killed mid-way is run
again on resume.

    from apps import image_classifier
    from apps.tune import tune
    result = tune(image_classifier.APP, "data/flowers", trials=10, budget_minutes=20)
    result["best"]          # the best trial's options, also in tune/<task>/best.json
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time

from apps.config import explicit_options

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "hyperband")
# Config field -> (kind, arguments) of its search range; only fields the task's Config has are searched.
SPACE = {
    "learning_rate": ("float", {"min_value": 1e-5, "max_value": 1e-2, "sampling": "log"}),
    "batch_size": ("choice", {"values": [16, 32, 64, 128, 256, 512]}),
    "dropout": ("float", {"min_value": 0.0, "max_value": 0.5, "step": 0.1}),
    "dense_units": ("choice", {"values": [64, 128, 256, 512]}),
    "width": ("choice", {"values": [8, 16, 32, 64]}),
    "units": ("choice", {"values": [32, 64, 128]}),
    "embedding_dim": ("choice", {"values": [32, 64, 128]}),
    "latent_dim": ("choice", {"values": [8, 16, 32]}),
}


def _keras_tuner():
    try:
        import keras_tuner
    except ImportError as error:
        raise ValueError("tune needs keras-tuner: pip install 'keras-applied-toolkit[tune]' (or keras-tuner)") from error
    return keras_tuner


def search_space(config_cls, fields=None, exclude=()):
    """A `keras_tuner.HyperParameters` over the task's tunable fields (`fields`: a subset of `SPACE`; those
    in `exclude`, the values a user set, are left out)."""
    keras_tuner = _keras_tuner()

    names = {f.name for f in dataclasses.fields(config_cls)}
    wanted = list(fields) if fields else list(SPACE)
    unknown = sorted(set(wanted) - set(SPACE))
    if unknown:
        raise ValueError(f"cannot tune {unknown}; tunable fields: {', '.join(SPACE)}")
    hp = keras_tuner.HyperParameters()
    for name in wanted:
        if name not in names or name in exclude:
            continue
        kind, arguments = SPACE[name]
        (hp.Float if kind == "float" else hp.Choice)(name, **arguments)
    return hp


def _budgeted(oracle_cls, deadline: float):
    """The oracle class, stopping the search once `deadline` (a `time.time()`) has passed."""
    from keras_tuner.engine import trial as trial_module

    class Budgeted(oracle_cls):
        def populate_space(self, trial_id):
            if time.time() > deadline:
                return {"status": trial_module.TrialStatus.STOPPED, "values": None}
            return super().populate_space(trial_id)

    return Budgeted


def tune(app, data, output_dir: str | None = None, trials: int = 10, budget_minutes: float = 0.0,
         algorithm: str = "random", fields=None, overwrite: bool = False, config=None, **options) -> dict:
    """Searches `app`'s options on `data`; returns `{"best", "best_val_loss", "trials", "table", "plot",
    "json"}` (`best`: the winning trial's full options; `trials`: one dict per finished trial).

    Raises:
        ValueError: an unknown algorithm or field, no validation split, a task with nothing to tune.
    """
    keras_tuner = _keras_tuner()

    from apps.base import RunContext
    from toolkit.training.distribution import get_strategy

    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose from {', '.join(ALGORITHMS)}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1. Received: trials={trials}")
    if "learning_rate" in getattr(app, "ignored_options", ()):
        raise ValueError(f"{app.name} trains no weights: nothing for tune to search")
    base = app.make_config(config, **{**options, "tensorboard": False})
    if base.validation_split <= 0:
        raise ValueError("tune scores trials on the validation split only: pass --validation-split > 0")
    fixed = explicit_options(app.config_cls, config, **options) - {"tensorboard"}
    hp = search_space(app.config_cls, fields, exclude=fixed)
    if not hp.values:
        raise ValueError(f"nothing left to search: every tunable field of {app.name} is fixed by an option given")
    output_dir = output_dir or os.path.join("tune", app.name)
    deadline = time.time() + budget_minutes * 60 if budget_minutes else math.inf
    common = {"objective": keras_tuner.Objective("val_loss", "min"), "hyperparameters": hp,
              "tune_new_entries": False, "seed": base.seed}
    if algorithm == "random":
        oracle = _budgeted(keras_tuner.oracles.RandomSearchOracle, deadline)(max_trials=trials, **common)
    else:
        oracle = _budgeted(keras_tuner.oracles.HyperbandOracle, deadline)(
            max_epochs=max(2, base.epochs), factor=3, hyperband_iterations=1, **common)

    class AppTuner(keras_tuner.engine.base_tuner.BaseTuner):
        def run_trial(self, trial, *args, **kwargs):
            values = {k: v for k, v in trial.hyperparameters.values.items()
                      if not k.startswith("tuner/") and k not in fixed}
            epochs = trial.hyperparameters.values.get("tuner/epochs", base.epochs)
            trial_config = dataclasses.replace(base, **values, epochs=int(epochs))
            strategy = get_strategy(trial_config.strategy)
            ctx = RunContext(config=trial_config, explicit=frozenset(values), run_dir=os.path.join(
                output_dir, "scratch"), strategy=strategy)
            os.makedirs(ctx.run_dir, exist_ok=True)
            ctx.data = app.load_data(data, trial_config)
            if getattr(ctx.data, "validation", None) is None:
                raise ValueError("tune needs a validation split: the data left none (more data or a larger "
                                 "--validation-split)")
            with strategy.scope():
                model = app.build_model(ctx)
                app.prepare(model, ctx)
                history = app.fit(model, ctx, [])
            val = [v for v in history.get("val_loss", []) if v is not None and math.isfinite(v)]
            if not val:
                raise ValueError(f"trial {trial.trial_id}: no finite val_loss (diverged?)")
            best_epoch = history["val_loss"].index(min(val))
            metrics = {"val_loss": min(val)}  # the other validation metrics at the best epoch
            for key, series in history.items():
                if key.startswith("val_") and key != "val_loss" and len(series) == len(history["val_loss"]):
                    metrics[key] = float(series[best_epoch])
            return metrics

        def save_model(self, trial_id, model, step=0):  # models are not kept: the best options are
            pass

        def load_model(self, trial):
            raise NotImplementedError("tune keeps the best options, not models: train --config best.json")

    tuner = AppTuner(oracle=oracle, directory=output_dir, project_name="search", overwrite=overwrite)
    tuner.search()
    return _write_results(app, base, tuner, output_dir, fixed)


def _write_results(app, base, tuner, output_dir: str, fixed) -> dict:
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED" or trial.score is None:
            continue
        values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        metrics = {name: trial.metrics.get_best_value(name) for name in trial.metrics.metrics}
        rows.append({"trial": trial.trial_id, **values, **{k: float(v) for k, v in metrics.items() if v is not None}})
    if not rows:
        raise ValueError("no trial finished within the budget: raise --budget-minutes or lower --epochs")
    rows.sort(key=lambda row: row["val_loss"])
    best_values = {k: v for k, v in rows[0].items() if k in {f.name for f in dataclasses.fields(app.config_cls)}}
    best = {**dataclasses.asdict(base), **best_values}
    os.makedirs(output_dir, exist_ok=True)
    paths = {"table": os.path.join(output_dir, "results.csv"), "json": os.path.join(output_dir, "best.json"),
             "plot": os.path.join(output_dir, "tune.png")}
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(paths["table"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    with open(paths["json"], "w") as f:
        json.dump(best, f, indent=2)
    _plot(rows, paths["plot"], app.name)
    return {"best": best, "best_val_loss": rows[0]["val_loss"], "trials": rows, **paths}


def _plot(rows: list, path: str, name: str) -> None:
    from toolkit.metrics.plots import plt, save_figure

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    order = sorted(rows, key=lambda row: int(row["trial"]))
    losses = [row["val_loss"] for row in order]
    left.plot(range(1, len(losses) + 1), losses, "o", label="trial")
    left.plot(range(1, len(losses) + 1), [min(losses[: i + 1]) for i in range(len(losses))], "-", label="best so far")
    left.set(xlabel="trial", ylabel="validation loss", title=f"{name}: search")
    left.legend()
    if all("learning_rate" in row for row in rows):
        right.scatter([row["learning_rate"] for row in rows], [row["val_loss"] for row in rows])
        right.set(xscale="log", xlabel="learning rate", ylabel="validation loss", title="loss against rate")
    else:
        right.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def summary(result: dict) -> str:
    """The lines `toolkit <task> tune` prints: a table of the trials (best first) and where the files are."""
    rows = result["trials"]
    columns = [c for c in dict.fromkeys(k for row in rows for k in row) if c != "trial"]
    lines = ["  ".join(["trial", *columns])]
    for row in rows[:20]:
        lines.append("  ".join([str(row["trial"]), *(_cell(row.get(c)) for c in columns)]))
    lines += [f"best validation loss: {result['best_val_loss']:.4f}",
              f"best options: {result['json']} (toolkit <task> train --config {result['json']} ...)",
              f"table: {result['table']}", f"plot: {result['plot']}"]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def add_parser(verbs, spec, add_config_flags) -> None:
    """The `tune` verb of `toolkit <task>` (its fixed options are the task's `train` options)."""
    parser = verbs.add_parser(
        "tune", help="hyperparameter search with keras-tuner, scored on the validation split; writes best.json",
        description="Searches learning rate, batch size, dropout and the task's widths (the notes' starting "
                    "table) with keras-tuner, scoring each trial's validation loss. Options given on the command "
                    "line are fixed, not searched. Resumable: re-run the same command after a kill.")
    parser.add_argument("--data", required=True, help="training data, as for train (a validation split is held "
                                                      "out of it)")
    parser.add_argument("--trials", type=int, default=10, help="trials at most (random search)")
    parser.add_argument("--budget-minutes", type=float, default=0.0, help="start no trial after this (0: no limit)")
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="random", help="random search or Hyperband")
    parser.add_argument("--fields", default="", help=f"comma list of fields to search (default: those of "
                                                     f"{', '.join(SPACE)} the task has)")
    parser.add_argument("--output", default=None, metavar="DIR", help="search state and results (default: "
                                                                      "tune/<task>)")
    parser.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    add_config_flags(parser, spec.config_cls, (*spec.ignored_options, "run_dir", "resume", "tensorboard"))


def run(app, args, overrides: dict) -> int:
    fields = [f.strip() for f in args.fields.split(",") if f.strip()] or None
    result = tune(app, args.data, output_dir=args.output, trials=args.trials, budget_minutes=args.budget_minutes,
                  algorithm=args.algorithm, fields=fields, overwrite=args.overwrite, **overrides)
    print(summary(result))
    return 0
