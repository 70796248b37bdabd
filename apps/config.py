"""App options: one dataclass per app (`BaseConfig` + the app's fields), each field documented for `--help`."""

from __future__ import annotations

import dataclasses

from toolkit.training.lr_schedules import SCHEDULES
from toolkit.training.optimizers import OPTIMIZERS
from toolkit.training.strategies import STRATEGIES


def option(default, help: str, choices=None):
    """A config field with its `--help` text (and allowed values) for the CLI."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass
class BaseConfig:
    """Fields every app has."""

    epochs: int = option(10, "training epochs")
    batch_size: int = option(64, "examples per batch (global, across replicas)")
    learning_rate: float = option(1e-3, "learning rate (the notes' start: Adam 1e-3, SGD with momentum 1e-1)")
    optimizer: str = option("adam", "adam (0.9/0.999, eps 1e-8) | adamw (decoupled weight decay) | sgd (with "
                            "--momentum, --nesterov) | rmsprop (rho 0.9) | adagrad", choices=OPTIMIZERS)
    momentum: float = option(0.9, "sgd: momentum beta (0: plain SGD)")
    nesterov: bool = option(False, "sgd: Nesterov momentum (gradient at the look-ahead point)")
    weight_decay: float = option(0.0, "decoupled weight decay lambda, theta -= lr * lambda * theta each step "
                                 "(0: off; adamw alone defaults to 0.004)")
    clipnorm: float = option(0.0, "clip the global gradient norm to this (0: off)")
    lr_schedule: str = option("constant", "constant | step (x lr_gamma every lr_step_epochs) | exponential "
                              "(x lr_gamma over the run) | cosine | warmup-cosine (transformers) | cyclical "
                              "(lr/10..lr, or --lr-range) | plateau (x0.1 when val_loss stalls 2 epochs)",
                              choices=SCHEDULES)
    lr_range: str = option("", "cyclical schedule bounds: 'LOW,HIGH', or 'auto': run the LR range test (as lr-find) "
                           "on the training data first and take max = half the lowest-loss rate (never below the "
                           "steepest descent), base = max/4 (Smith 2017); saved as RUN_DIR/lr_range.json and "
                           "reused on resume; empty: lr/10..lr")
    lr_gamma: float = option(0.1, "step / exponential schedules: decay factor")
    lr_step_epochs: int = option(0, "step schedule: epochs between decays (0: a third of the epochs)")
    lr_warmup_epochs: float = option(1.0, "warmup-cosine: epochs of linear warm-up from 0")
    validation_split: float = option(0.1, "fraction of the training data held out for validation")
    patience: int = option(5, "early stopping patience in epochs (best weights are restored); -1 disables")
    seed: int = option(1337, "random seed for splits, shuffling and initialisation")
    strategy: str = option("auto", "tf.distribute strategy", choices=STRATEGIES)
    run_dir: str = option("runs", "folder for run directories (config, history, plots, model)")
    resume: str = option("auto", "auto: continue an unfinished run with the same options and data (after a "
                         "crash or kill); never: always start fresh; or the path of a run directory to continue")
    tensorboard: bool = option(True, "write TensorBoard logs to RUN_DIR/logs")
    verbose: int = option(1, "Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch")
    monitor_layers: str = option("", "record per-channel layer statistics while training and warn when filters "
                                 "die: 'all' (every conv/dense layer) or a comma list of layer names; empty: off")
    monitor_every: int = option(1, "with monitor_layers: check every N epochs (on a few validation batches)")


def explicit_options(config_cls, config=None, **overrides) -> frozenset:
    """Names of the options a caller set: keyword overrides, dict keys, or fields of a Config instance that
    differ from the defaults. Recipes fill in only the others (a user's explicit value always wins)."""
    names = set(overrides)
    if isinstance(config, dict):
        names |= set(config)
    elif config is not None:
        defaults = config_cls()
        names |= {f.name for f in dataclasses.fields(config_cls)
                  if getattr(config, f.name) != getattr(defaults, f.name)}
    return frozenset(names)


def make_config(config_cls, config=None, **overrides):
    """A config from a dataclass instance, a dict, or keyword overrides; unknown keys are an error."""
    if config is None:
        config = config_cls()
    elif isinstance(config, dict):
        overrides = {**config, **overrides}
        config = config_cls()
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown option(s) {unknown} for {config_cls.__name__}; known: {sorted(known)}")
    config = dataclasses.replace(config, **overrides)
    for field in dataclasses.fields(config):
        choices = field.metadata.get("choices")
        if choices and getattr(config, field.name) not in choices:
            raise ValueError(f"{field.name} must be one of {tuple(choices)}. Received: {getattr(config, field.name)!r}")
    _check_training_options(config)
    return config


def _check_training_options(config) -> None:
    """Cross-field checks of the training options (bad values fail before any data is read)."""
    from toolkit.training.lr_schedules import parse_lr_range

    lr_range = getattr(config, "lr_range", "")
    if lr_range:
        parse_lr_range(lr_range)
        if getattr(config, "lr_schedule", "") != "cyclical":
            raise ValueError(f"lr_range={lr_range!r} sets the bounds of the cyclical schedule: pass --lr-schedule "
                             f"cyclical (lr_schedule is {getattr(config, 'lr_schedule', '')!r})")
    if getattr(config, "lr_multipliers", ""):
        from toolkit.training.lr_schedules import parse_multipliers

        parse_multipliers(config.lr_multipliers)
    if getattr(config, "mc_samples", 0) < 0:
        raise ValueError(f"mc_samples must be >= 0 (0: no MC-dropout signature). Received: mc_samples={config.mc_samples}")


def record_resolved(run_dir: str | None, key: str, value) -> None:
    """Writes what an `auto` option resolved to (the training mode, the LR range) into RUN_DIR/config.json under
    `"resolved"`, beside the options as given (which stay as the user wrote them, so a resume matches)."""
    import json
    import os

    path = os.path.join(run_dir or "", "config.json")
    if not run_dir or not os.path.isfile(path):
        return
    with open(path) as f:
        record = json.load(f)
    record.setdefault("resolved", {})[key] = value
    with open(path, "w") as f:
        json.dump(record, f, indent=2)


class TaskSpec:
    """What the CLI needs to know about a task without importing TensorFlow: its name, one-line description,
    Config dataclass, the options it ignores and its model kinds (for the export table). Each task's spec
    lives in `apps/specs/<task>.py`; its `App` (in `apps/<task>.py`) subclasses it and adds the work."""

    name = "app"
    description = ""
    config_cls = BaseConfig
    ignored_options: tuple = ()  # Config fields this task does not use (left out of `train --help`)
    model_names: tuple = ()  # model families of tasks with a `model` option (export-table rows)

    def kind(self, config) -> str:
        """The model kind for the export-format table (`toolkit.export.formats`): the task name, or
        `task/model` for tasks with several model families (`model_names`)."""
        return f"{self.name}/{config.model}" if self.model_names else self.name

    def kinds(self) -> list:
        """Every model kind of this task (rows of the export table `--help` shows)."""
        if not self.model_names:
            return [self.kind(self.config_cls())]
        return [self.kind(dataclasses.replace(self.config_cls(), model=m)) for m in self.model_names]
