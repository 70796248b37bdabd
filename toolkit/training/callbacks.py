"""Default callbacks: early stopping with best-weights restore, progress-friendly logging."""

from __future__ import annotations

import keras


def default_callbacks(
    patience: int | None = 5,
    monitor: str = "val_loss",
    has_validation: bool = True,
    extra: list | None = None,
) -> list:
    """Early stopping (restores the best weights) when there is validation data, plus `extra`.

    Args:
        patience: epochs without improvement before stopping; None disables early stopping.
        monitor: metric to watch.
        has_validation: whether `fit` receives validation data (early stopping needs it).
        extra: more callbacks to append.
    """
    callbacks = []
    if patience is not None and has_validation:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True, verbose=1)
        )
    callbacks.extend(extra or [])
    return callbacks
