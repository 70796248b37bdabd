"""Defaults fitted to the data: a batch size and U-Net widths chosen from the number of training examples.

Pure functions (no TensorFlow), so the rules are testable and `--help` can quote them. The apps apply them only
to options the user did not set (`RunContext.explicit`), and say what they chose (printed, logged, `info.json`).

    >>> auto_batch_size(27, 64)
    (4, 'batch_size 4 instead of the default 64: 27 training examples would give 1 step per epoch; 4 gives 7 (pass --batch-size to choose)')
    >>> auto_batch_size(5000, 64)
    (64, '')
    >>> auto_unet_widths(540)
    ((16, 32, 64), 128)
"""

from __future__ import annotations

import sys

MIN_STEPS_PER_EPOCH = 16  # below this an epoch is too few gradient steps (and BatchNorm statistics lag behind)
SMALLEST_AUTO_BATCH = 4  # never go below this automatically (BatchNorm statistics of 2-3 examples are noise)

# U-Net widths by training-set size: (images below, encoder filters, bottleneck). Parameters grow with the width
# squared (about 0.48M, 1.9M, 7.7M for 3 input channels); on a small set the narrow network converges in far fewer
# epochs (BENCHMARKS.md `defaults`) and an epoch costs ~1/10 the time.
UNET_WIDTHS = (
    (2_000, (16, 32, 64), 128),
    (20_000, (32, 64, 128), 256),
    (None, (64, 128, 256), 512),  # the seed U-Net
)


def auto_batch_size(num_train: int, batch_size: int, min_steps: int = MIN_STEPS_PER_EPOCH,
                    smallest: int = SMALLEST_AUTO_BATCH) -> tuple:
    """`(batch size, note)`: `batch_size`, or a smaller power of two when `num_train` examples would give fewer
    than `min_steps` steps per epoch (never below `smallest`, never above `batch_size`). The note is empty when
    nothing changed."""
    num_train, batch_size = int(num_train), int(batch_size)
    if num_train <= 0 or batch_size <= smallest or -(-num_train // batch_size) >= min_steps:
        return batch_size, ""
    chosen = smallest
    while chosen * 2 <= batch_size and -(-num_train // (chosen * 2)) >= min_steps:
        chosen *= 2
    if chosen >= batch_size:
        return batch_size, ""
    before, after = -(-num_train // batch_size), -(-num_train // chosen)
    note = (f"batch_size {chosen} instead of the default {batch_size}: {num_train} training examples would give "
            f"{before} step{'s' if before != 1 else ''} per epoch; {chosen} gives {after} (pass --batch-size to choose)")
    return chosen, note


def auto_unet_widths(num_train: int) -> tuple:
    """`(filters, bottleneck)` of the U-Net for `num_train` training images (see `UNET_WIDTHS`)."""
    for below, filters, bottleneck in UNET_WIDTHS:
        if below is None or num_train < below:
            return filters, bottleneck
    raise AssertionError("unreachable")


def apply_auto_batch(ctx, app_name: str) -> int:
    """Re-batches `ctx.data.train` to `auto_batch_size` when the caller did not set `batch_size`; returns the batch
    size training uses (also `ctx.state["batch_size"]`, and `ctx.state["batch_size_note"]` when it changed).

    TPU runs keep the configured batch (their batches were made static before this hook runs)."""
    config, data = ctx.config, ctx.data
    chosen, note = config.batch_size, ""
    if "batch_size" not in ctx.explicit and not _static(ctx.strategy):
        chosen, note = auto_batch_size(getattr(data, "num_train", 0) or 0, config.batch_size)
    if note:
        import logging

        import tensorflow as tf

        train = data.train.unbatch().batch(chosen)
        if int(data.train.cardinality()) == -(-int(data.num_train) // config.batch_size):
            # a known size keeps Keras counting steps (with an unknown one it warns "ran out of data" and cuts
            # the first epoch short: 0.77 instead of 0.95 accuracy on 3 classes x 10 images, one seed)
            train = train.apply(tf.data.experimental.assert_cardinality(-(-int(data.num_train) // chosen)))
        data.train = train.prefetch(tf.data.AUTOTUNE)
        print(f"{app_name}: {note}", file=sys.stderr, flush=True)  # stdout stays for --json
        logging.getLogger(__name__).info("%s: %s", app_name, note)
        ctx.state["batch_size_note"] = note
    ctx.state["batch_size"] = chosen
    return chosen


def _static(strategy) -> bool:
    if strategy is None:
        return False
    from toolkit.data.batching import needs_static_batches

    return needs_static_batches(strategy)


SMALL_VALIDATION = 20  # apps.results.FEW_EXAMPLES: a loss on fewer validation examples is noise


def early_stopping_context(ctx, app_name: str):
    """`ctx` for `App.callbacks`, with early stopping off when the caller did not set `patience` and the validation
    split has fewer than `SMALL_VALIDATION` examples: on 3 validation images (3 classes x 10, 10% held out) the
    lowest validation loss fell at epoch 1 and restoring it gave a model that predicted one class for everything."""
    import dataclasses

    count = getattr(ctx.data, "num_validation", None)
    patience = ctx.config.patience
    if "patience" in ctx.explicit or patience is None or patience < 0 or not count or count >= SMALL_VALIDATION:
        return ctx
    note = (f"early stopping off: {count} validation example{'s' if count != 1 else ''} are too few to pick the best "
            f"epoch (pass --patience to keep it)")
    print(f"{app_name}: {note}", file=sys.stderr, flush=True)
    ctx.state["patience_note"] = note
    return dataclasses.replace(ctx, config=dataclasses.replace(ctx.config, patience=-1))
