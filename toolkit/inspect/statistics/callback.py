"""A training callback that records per-channel layer statistics every N epochs and warns when filters die."""

from __future__ import annotations

import json
import logging
import os

import keras

from toolkit.inspect.statistics.channels import BLOCKED, DEAD
from toolkit.inspect.statistics.statistics import build_debug_model, layer_statistics

logger = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="toolkit")
class LayerStatisticsMonitor(keras.callbacks.Callback):
    """Every `every` epochs, computes layer statistics on `data` and warns when dead/blocked channels appear.

    The debug model shares the training model's layers, so it is built once and always sees current weights.
    Records land in `self.records` (one dict per check: epoch, per-layer counts, newly dead/blocked
    channels) and, with `log_dir`, in `log_dir/layer_statistics.json` plus a heatmap PNG per check.

    Args:
        data: inputs to run (arrays, `(x, y)` or a `tf.data.Dataset`); a few batches are enough.
        layers: layer names, or None / "all" for every conv and dense layer.
        every: check every N epochs (also before training starts, as the baseline).
        max_batches: batches of `data` per check.
        dead_threshold, blocked_threshold: see `classify_channels`.
        log_dir: folder for the JSON log and heatmaps (None: keep in memory only).

    Examples:
    >>> import numpy as np
    >>> monitor = LayerStatisticsMonitor(np.zeros((8, 3), "float32"), every=2)
    >>> monitor.get_config()["every"]
    2
    """

    def __init__(self, data=None, layers=None, every: int = 1, max_batches: int = 4, batch_size: int = 64,
                 dead_threshold: float = 0.01, blocked_threshold: float = 0.0, log_dir: str | None = None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1. Received: every={every}")
        self.data, self.layers, self.every = data, layers, int(every)
        self.max_batches, self.batch_size = max_batches, batch_size
        self.dead_threshold, self.blocked_threshold, self.log_dir = dead_threshold, blocked_threshold, log_dir
        self.records: list = []
        self._debug = None
        self._previous: dict = {}

    def get_config(self):
        return {"layers": self.layers, "every": self.every, "max_batches": self.max_batches,
                "batch_size": self.batch_size, "dead_threshold": self.dead_threshold,
                "blocked_threshold": self.blocked_threshold, "log_dir": self.log_dir}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def on_train_begin(self, logs=None):
        if self.data is None:
            raise ValueError("LayerStatisticsMonitor needs data to run through the model")
        self._debug = build_debug_model(self.model, self.layers)
        self._check(epoch=0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self._check(epoch=epoch + 1)

    def _check(self, epoch: int):
        report = layer_statistics(self.model, self.data, batch_size=self.batch_size, max_batches=self.max_batches,
                                  dead_threshold=self.dead_threshold, blocked_threshold=self.blocked_threshold,
                                  debug_model=self._debug)
        current = {(name, channel): status for name, channel, status in report.problems()}
        new = {key: status for key, status in current.items() if self._previous.get(key) != status}
        self._previous = current
        record = {"epoch": epoch, "counts": report.counts(),
                  "new_problems": [[name, channel, status] for (name, channel), status in sorted(new.items())]}
        self.records.append(record)
        if new and epoch > 0:
            by_layer: dict = {}
            for (name, channel), status in new.items():
                by_layer.setdefault(name, []).append(f"{channel}:{status}")
            logger.warning("epoch %d: filters died or got blocked: %s", epoch,
                           "; ".join(f"{k} [{', '.join(v)}]" for k, v in by_layer.items()))
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
            with open(os.path.join(self.log_dir, "layer_statistics.json"), "w") as f:
                json.dump(self.records, f, indent=1)
            report.save_json(os.path.join(self.log_dir, f"layer_statistics_epoch{epoch:03d}.json"))
            report.plot(os.path.join(self.log_dir, f"layer_statistics_epoch{epoch:03d}.png"))
        return report

    @property
    def dead_or_blocked(self) -> int:
        """Dead plus blocked channels at the latest check."""
        if not self.records:
            return 0
        return sum(c[DEAD] + c[BLOCKED] for c in self.records[-1]["counts"].values())
