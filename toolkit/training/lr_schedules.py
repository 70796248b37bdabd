"""Learning-rate schedules by name, the notes' list (F3:5311-5337), built from Keras' own schedules.

| name          | rate at step t (T steps in all, s per epoch)                        | built from                      |
|---------------|---------------------------------------------------------------------|---------------------------------|
| constant      | eta0                                                                | a float                         |
| step          | eta0 * gamma ** floor(t / (k s)), gamma = 0.1, every k epochs       | ExponentialDecay(staircase)     |
| exponential   | eta0 * gamma ** (t / T): gamma over the whole run                   | ExponentialDecay                |
| cosine        | 0.5 eta0 (1 + cos(pi t / T))                                        | CosineDecay                     |
| warmup-cosine | linear from 0 to eta0 over the warm-up, then cosine (transformers)  | CosineDecay(warmup_target=...)  |
| cyclical      | triangle between eta0 / 10 and eta0 (or `bounds`), half cycle = T / 4 | CyclicalLearningRate          |
| plateau       | eta0, times 0.1 when the validation loss stalls 2 epochs            | ReduceLROnPlateau (a callback)  |

Importing this module does not import Keras (`SCHEDULES` feeds `--lr-schedule`'s choices in `--help`).

Examples:
>>> rate = build_schedule("step", 0.1, steps_per_epoch=10, epochs=9, step_epochs=3)
>>> [round(float(rate(t)), 6) for t in (0, 29, 30, 60)]
[0.1, 0.1, 0.01, 0.001]
>>> warm = build_schedule("warmup-cosine", 1e-3, steps_per_epoch=10, epochs=10, warmup_epochs=1)
>>> [round(float(warm(t)), 6) for t in (0, 5, 10, 100)]
[0.0, 0.0005, 0.001, 0.0]
>>> build_schedule("constant", 0.01, steps_per_epoch=5, epochs=2)
0.01
"""

from __future__ import annotations

SCHEDULES = ("constant", "step", "exponential", "cosine", "warmup-cosine", "cyclical", "plateau")


def build_schedule(name: str, learning_rate: float, steps_per_epoch: int, epochs: int, gamma: float = 0.1,
                   step_epochs: int = 0, warmup_epochs: float = 1.0, bounds=None):
    """The rate (a float or a Keras `LearningRateSchedule`) for `name`; `plateau` is a constant rate here
    (its callback is `plateau_callback`). `step_epochs=0` decays every third of the run. `bounds`: the
    cyclical schedule's `(low, high)` (e.g. from a range test, `parse_lr_range`), instead of lr/10 .. lr.

    Raises:
        ValueError: an unknown name or a bad gamma / warm-up (named).
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown lr_schedule {name!r}; choose from {', '.join(SCHEDULES)}")
    if not 0 < gamma <= 1:
        raise ValueError(f"lr_gamma must be in (0, 1]. Received: lr_gamma={gamma}")
    if name in ("constant", "plateau"):
        return learning_rate
    import keras

    from toolkit.training.schedules import CyclicalLearningRate

    steps_per_epoch, epochs = max(1, int(steps_per_epoch)), max(1, int(epochs))
    total = steps_per_epoch * epochs
    if name == "step":
        every = step_epochs or max(1, epochs // 3)
        return keras.optimizers.schedules.ExponentialDecay(learning_rate, every * steps_per_epoch, gamma,
                                                           staircase=True)
    if name == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(learning_rate, total, gamma)
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total)
    if name == "warmup-cosine":
        warmup = int(round(warmup_epochs * steps_per_epoch))
        if warmup < 0 or warmup >= total:
            raise ValueError(f"lr_warmup_epochs={warmup_epochs} must be >= 0 and shorter than the run ({epochs} "
                             "epochs)")
        return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=total - warmup, warmup_target=learning_rate,
                                                      warmup_steps=warmup)
    low, high = bounds or (learning_rate / 10, learning_rate)
    return CyclicalLearningRate(low, high, step_size=max(1, total // 4))


def parse_lr_range(text: str):
    """`--lr-range` text -> `(low, high)` floats, or None for '' / 'auto' (resolved by a range test).

    >>> parse_lr_range("1e-4,1e-2")
    (0.0001, 0.01)
    >>> parse_lr_range("0.1,0.01")
    Traceback (most recent call last):
    ...
    ValueError: lr_range must be 'auto' or 'LOW,HIGH' with 0 < LOW < HIGH. Received: lr_range='0.1,0.01'
    """
    text = (text or "").strip()
    if text in ("", "auto"):
        return None
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        low = high = -1.0
    if not 0 < low < high:
        raise ValueError(f"lr_range must be 'auto' or 'LOW,HIGH' with 0 < LOW < HIGH. Received: lr_range={text!r}")
    return low, high


def plateau_callback(monitor: str = "val_loss"):
    """The `plateau` schedule: `ReduceLROnPlateau` (x0.1 after 2 epochs without improvement)."""
    import keras

    return keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.1, patience=2, min_lr=1e-7, verbose=1)


def parse_multipliers(text: str) -> list:
    """`--lr-multipliers` text -> a list of floats > 0 ('' -> [] : off).

    >>> parse_multipliers("0.1, 0.3,1")
    [0.1, 0.3, 1.0]
    >>> parse_multipliers("0.1,-1")
    Traceback (most recent call last):
    ...
    ValueError: lr_multipliers must be a comma list of numbers > 0 (first to last backbone group). Received: '0.1,-1'
    """
    text = (text or "").strip()
    if not text:
        return []
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = [-1.0]
    if not all(v > 0 for v in values):
        raise ValueError("lr_multipliers must be a comma list of numbers > 0 (first to last backbone group). "
                         f"Received: {text!r}")
    return values
