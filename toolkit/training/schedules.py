"""Cyclical learning rate (Smith 2017), the seed's triangle wave between two bounds."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class CyclicalLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Triangular cyclical learning rate: `lr = min + (max - min) * triangle(step)`.

    The rate climbs linearly from `min_lr` to `max_lr` over `step_size` steps and back down over the next
    `step_size`, then repeats (one cycle = `2 * step_size` steps). `mode="triangular2"` halves the
    amplitude every cycle. Pick the bounds with an LR range test.

    Args:
        min_lr: float. lower bound.
        max_lr: float. upper bound.
        step_size: int. steps per half cycle (2-8 epochs' worth is typical).
        mode: str. `"triangular"` or `"triangular2"`.

    Examples:
    >>> schedule = CyclicalLearningRate(1e-4, 1e-2, step_size=10)
    >>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 15, 20)]
    [0.0001, 0.00505, 0.01, 0.00505, 0.0001]
    """

    def __init__(self, min_lr: float, max_lr: float, step_size: int, mode: str = "triangular"):
        if not 0 < min_lr <= max_lr:
            raise ValueError(f"need 0 < min_lr <= max_lr. Received: min_lr={min_lr}, max_lr={max_lr}")
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1. Received: step_size={step_size}")
        if mode not in ("triangular", "triangular2"):
            raise ValueError(f"mode must be 'triangular' or 'triangular2'. Received: mode={mode!r}")
        self.min_lr, self.max_lr, self.step_size, self.mode = float(min_lr), float(max_lr), int(step_size), mode

    def __call__(self, step):
        step = ops.cast(step, "float32")
        cycle = ops.floor(1.0 + step / (2.0 * self.step_size))
        x = ops.abs(step / self.step_size - 2.0 * cycle + 1.0)
        amplitude = (self.max_lr - self.min_lr) * ops.maximum(0.0, 1.0 - x)
        if self.mode == "triangular2":
            amplitude = amplitude / ops.power(2.0, cycle - 1.0)
        return self.min_lr + amplitude

    def get_config(self):
        return {"min_lr": self.min_lr, "max_lr": self.max_lr, "step_size": self.step_size, "mode": self.mode}
