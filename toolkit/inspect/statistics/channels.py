"""Per-channel statistics of one layer: merging batch statistics and classifying channels (dead / blocked / healthy).

The classification rules are the lecture notes' (SEED_CATALOGUE.md section 3); how the statistics are
gathered (a debug model, streamed) is in `toolkit.inspect.statistics.statistics`. The rules are about ReLU:
"blocked" (max < 0) means a ReLU always outputs 0, so they are applied only where the tapped values go
through a ReLU-family activation (`checks_for`); elsewhere (logits, softmax, sigmoid, linear outputs) every
channel is "n/a".
"""

from __future__ import annotations

import dataclasses

import numpy as np

DEAD, BLOCKED, HEALTHY, NOT_APPLICABLE = "dead", "blocked", "healthy", "n/a"
STATUSES = (DEAD, BLOCKED, HEALTHY, NOT_APPLICABLE)

# Output exactly 0 for every input below 0: a channel negative everywhere is blocked (output and gradient 0).
ZERO_BELOW = ("relu", "relu6")
# ReLU variants that pass a (scaled or saturating) signal below 0: a channel negative everywhere still carries
# one, so only "dead" (|x| tiny everywhere, output ~0) applies.
NEGATIVE_SIDE = ("leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish", "mish", "prelu", "hard_silu",
                 "hard_swish")


def checks_for(activation: str | None, tapped: str = "pre-activation") -> tuple:
    """Which classes apply to values that feed (`tapped="pre-activation"`) or come out of
    (`"post-activation"`) `activation`; `()` means none: every channel is "n/a".

    Examples:
    >>> checks_for("relu"), checks_for("relu", "post-activation"), checks_for("elu"), checks_for("softmax")
    (('dead', 'blocked'), ('dead',), ('dead',), ())
    """
    if activation in ZERO_BELOW:
        # After the ReLU a blocked channel is all zeros, so it shows as dead: blocked is visible only before.
        return (DEAD, BLOCKED) if tapped == "pre-activation" else (DEAD,)
    if activation in NEGATIVE_SIDE and tapped in ("pre-activation", "post-activation"):
        return (DEAD,)
    return ()


@dataclasses.dataclass
class LayerStats:
    """Per-channel statistics of one layer (`[C]` arrays) and each channel's class.

    `activation` is the nonlinearity the tapped values go through ("relu", "softmax", "linear", ...),
    `tapped` where they were taken ("pre-activation", "post-activation", or "output" when no activation
    follows directly), `tap` the layer whose output was reduced, `checks` the classes that apply
    (`checks_for`; empty: every status is "n/a"), `note` why, where that is not obvious.
    """

    name: str
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    zero_fraction: np.ndarray
    status: list
    activation: str = "relu"
    tapped: str = "pre-activation"
    tap: str = ""
    checks: tuple = (DEAD, BLOCKED)
    note: str = ""

    @property
    def classified(self) -> bool:
        """False when no class applies (every channel "n/a")."""
        return bool(self.checks)

    def counts(self) -> dict:
        """`{"dead": n, "blocked": n, "healthy": n, "n/a": n}`."""
        return {label: int(sum(s == label for s in self.status)) for label in STATUSES}

    def channels(self, status: str) -> list:
        """Indices of the channels with `status` (e.g. `DEAD`), ascending."""
        return [channel for channel, s in enumerate(self.status) if s == status]


def classify_channels(minimum, maximum, dead_threshold: float = 0.01, blocked_threshold: float = 0.0,
                      checks=(DEAD, BLOCKED)) -> list:
    """The notes' rules: dead (both near 0), blocked (max below `blocked_threshold`), else healthy.

    `checks` names the rules that apply (see `checks_for`): a rule left out is never given; with none, every
    channel is "n/a" (`NOT_APPLICABLE`).

    Examples:
    >>> classify_channels([-0.0030, -2.4972, -1.8190], [0.0030, 1.5494, -1.4244])
    ['dead', 'healthy', 'blocked']
    >>> classify_channels([-0.0030, -2.4972, -1.8190], [0.0030, 1.5494, -1.4244], checks=())
    ['n/a', 'n/a', 'n/a']
    """
    minimum, maximum = np.asarray(minimum, "float64"), np.asarray(maximum, "float64")
    if dead_threshold < 0:
        raise ValueError(f"dead_threshold must be >= 0. Received: {dead_threshold}")
    if not checks:
        return [NOT_APPLICABLE] * minimum.size
    status = []
    for lo, hi in zip(minimum.ravel(), maximum.ravel()):
        if DEAD in checks and max(abs(lo), abs(hi)) <= dead_threshold:
            status.append(DEAD)
        elif BLOCKED in checks and hi < blocked_threshold:
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

    def result(self, name: str, dead_threshold=0.01, blocked_threshold=0.0, **tap) -> LayerStats:
        """The merged statistics, classified; `tap` holds `LayerStats`' activation, tapped, tap, checks, note."""
        if self.state is None:
            raise ValueError("no data was seen: the dataset is empty")
        n, lo, hi, mean, m2, zeros = self.state
        checks = tuple(tap.get("checks", (DEAD, BLOCKED)))
        return LayerStats(name, n, lo, hi, mean, np.sqrt(m2 / n), zeros / n,
                          classify_channels(lo, hi, dead_threshold, blocked_threshold, checks), **tap)
