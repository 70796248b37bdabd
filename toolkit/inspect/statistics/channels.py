"""Per-channel statistics of one layer: merging batch statistics and classifying channels (dead / blocked / healthy).

The classification rules are the lecture notes' (SEED_CATALOGUE.md section 3); how the statistics are
gathered (a debug model, streamed) is in `toolkit.inspect.statistics.statistics`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

DEAD, BLOCKED, HEALTHY = "dead", "blocked", "healthy"


@dataclasses.dataclass
class LayerStats:
    """Per-channel statistics of one layer (`[C]` arrays) and each channel's class."""

    name: str
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    zero_fraction: np.ndarray
    status: list

    def counts(self) -> dict:
        return {label: int(sum(s == label for s in self.status)) for label in (DEAD, BLOCKED, HEALTHY)}


def classify_channels(minimum, maximum, dead_threshold: float = 0.01, blocked_threshold: float = 0.0) -> list:
    """The notes' rules: dead (both near 0), blocked (max below `blocked_threshold`), else healthy.

    Examples:
    >>> classify_channels([-0.0030, -2.4972, -1.8190], [0.0030, 1.5494, -1.4244])
    ['dead', 'healthy', 'blocked']
    """
    minimum, maximum = np.asarray(minimum, "float64"), np.asarray(maximum, "float64")
    if dead_threshold < 0:
        raise ValueError(f"dead_threshold must be >= 0. Received: {dead_threshold}")
    status = []
    for lo, hi in zip(minimum.ravel(), maximum.ravel()):
        if max(abs(lo), abs(hi)) <= dead_threshold:
            status.append(DEAD)
        elif hi < blocked_threshold:
            status.append(BLOCKED)
        else:
            status.append(HEALTHY)
    return status


class StatisticsAccumulator:
    """Merges per-batch `[6, C]` statistics (count, min, max, mean, m2, zeros) in float64."""

    def __init__(self):
        self.state = None

    def update(self, batch_stats: np.ndarray) -> None:
        count, lo, hi, mean, m2, zeros = np.asarray(batch_stats, "float64")
        if self.state is None:
            self.state = [count, lo, hi, mean, m2, zeros]
            return
        n_a, lo_a, hi_a, mean_a, m2_a, zeros_a = self.state
        n = n_a + count
        delta = mean - mean_a
        self.state = [n, np.minimum(lo_a, lo), np.maximum(hi_a, hi), mean_a + delta * count / n,
                      m2_a + m2 + delta**2 * n_a * count / n, zeros_a + zeros]

    def result(self, name: str, dead_threshold=0.01, blocked_threshold=0.0) -> LayerStats:
        if self.state is None:
            raise ValueError("no data was seen: the dataset is empty")
        n, lo, hi, mean, m2, zeros = self.state
        return LayerStats(name, n, lo, hi, mean, np.sqrt(m2 / n), zeros / n,
                          classify_channels(lo, hi, dead_threshold, blocked_threshold))
