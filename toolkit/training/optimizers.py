"""Optimisers by name, with the lecture notes' defaults (F3:5164-5299), built from Keras' own optimisers.

| name    | update (notes)                                            | Keras class, settings                   |
|---------|-----------------------------------------------------------|-----------------------------------------|
| sgd     | v <- beta v + g; theta <- theta - eta v (beta = 0.9)      | SGD(momentum=0.9); 0 gives plain SGD    |
| sgd + nesterov | gradient at the look-ahead point                   | SGD(nesterov=True) (Sutskever's form)   |
| adagrad | G += g^2; theta -= eta g / (sqrt(G) + eps)                | Adagrad(initial_accumulator_value=0)    |
| rmsprop | G = 0.9 G + 0.1 g^2; theta -= eta g / sqrt(G + eps)       | RMSprop(rho=0.9)                        |
| adam    | bias-corrected m, v (0.9, 0.999), eps = 1e-8, eta = 1e-3  | Adam(epsilon=1e-8)                      |
| adamw   | adam, then theta -= eta lambda theta (decoupled decay)    | AdamW(weight_decay=lambda)              |

Keras' defaults differ from the notes in two places, so they are set here: Adam's epsilon (1e-7 -> 1e-8) and
AdaGrad's starting accumulator (0.1 -> 0). Weight decay is decoupled for every optimiser (Keras applies
`theta -= eta * lambda * theta` before the update), and `clipnorm` clips the global gradient norm.

This module imports Keras only when an optimiser is built: `OPTIMIZERS` feeds every app's `--optimizer`
choices, which `--help` lists without TensorFlow.

Examples:
>>> opt = build_optimizer("sgd", 0.1, nesterov=True)
>>> type(opt).__name__, float(opt.momentum), opt.nesterov
('SGD', 0.9, True)
>>> build_optimizer("adam", 1e-3).epsilon
1e-08
>>> build_optimizer("lion", 1e-3)
Traceback (most recent call last):
...
ValueError: unknown optimizer 'lion'; choose from adam, adamw, sgd, rmsprop, adagrad
"""

from __future__ import annotations

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")


def build_optimizer(name: str, learning_rate, momentum: float = 0.9, nesterov: bool = False,
                    weight_decay: float = 0.0, clipnorm: float = 0.0):
    """A Keras optimiser by name. `learning_rate` is a float or a `LearningRateSchedule`.

    Raises:
        ValueError: an unknown name, or a negative rate, momentum, weight decay or clip norm (named).
    """
    import keras

    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    for field, value in (("momentum", momentum), ("weight_decay", weight_decay), ("clipnorm", clipnorm)):
        if value < 0:
            raise ValueError(f"{field} must be >= 0. Received: {field}={value}")
    if isinstance(learning_rate, (int, float)) and learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0. Received: learning_rate={learning_rate}")
    common = {"weight_decay": weight_decay or None, "global_clipnorm": clipnorm or None}
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=nesterov, **common)
    if name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate, initial_accumulator_value=0.0, epsilon=1e-8, **common)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, rho=0.9, epsilon=1e-8, **common)
    if name == "adamw":  # AdamW's own default decay (0.004) only when none is given
        common["weight_decay"] = weight_decay or 0.004
        return keras.optimizers.AdamW(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8, **common)
    return keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8, **common)


def optimizer_of(config, learning_rate=None, steps_per_epoch: int | None = None):
    """The optimiser an app's Config asks for (`optimizer`, `momentum`, `nesterov`, `weight_decay`,
    `clipnorm`), at `learning_rate` (a float or schedule). Without one, the rate is `config.learning_rate`,
    following `config.lr_schedule` when `steps_per_epoch` is given (`toolkit.training.lr_schedules`; a
    cyclical one between the bounds of `config.lr_range` when it holds 'LOW,HIGH')."""
    if learning_rate is None:
        learning_rate = config.learning_rate
        if steps_per_epoch and getattr(config, "lr_schedule", "constant") != "constant":
            from toolkit.training.lr_schedules import build_schedule, parse_lr_range

            learning_rate = build_schedule(
                config.lr_schedule, config.learning_rate, steps_per_epoch, config.epochs,
                gamma=getattr(config, "lr_gamma", 0.1), step_epochs=getattr(config, "lr_step_epochs", 0),
                warmup_epochs=getattr(config, "lr_warmup_epochs", 1.0),
                bounds=parse_lr_range(getattr(config, "lr_range", "")))
    return build_optimizer(
        getattr(config, "optimizer", "adam"), learning_rate,
        momentum=getattr(config, "momentum", 0.9), nesterov=getattr(config, "nesterov", False),
        weight_decay=getattr(config, "weight_decay", 0.0), clipnorm=getattr(config, "clipnorm", 0.0))
