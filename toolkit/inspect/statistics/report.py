"""Reporting layer statistics: a terminal table, JSON, a heatmap PNG, and the notes' text format."""

from __future__ import annotations

import json
import os
import re

import numpy as np

from toolkit.inspect.statistics.channels import (
    BLOCKED, DEAD, HEALTHY, NOT_APPLICABLE, LayerStats, classify_channels,
)

# Channels per layer the heatmap shows before it says how many it leaves out (the JSON report has all).
MAX_HEATMAP_CHANNELS = 1024

_LINE = re.compile(r"layer\s+(?P<layer>\S+?)\[(?P<channel>\d+)\]\s+min=(?P<min>[-+0-9.eE]+)\s+max=(?P<max>[-+0-9.eE]+)")


class StatisticsReport:
    """The statistics of several layers plus the thresholds used to classify their channels."""

    def __init__(self, layers: list, thresholds: dict | None = None):
        self.layers = list(layers)
        self.thresholds = dict(thresholds or {})

    def __getitem__(self, name) -> LayerStats:
        for layer in self.layers:
            if layer.name == name or layer.name.split("/")[-1] == name:
                return layer
        raise KeyError(f"no statistics for layer {name!r}; layers: {[s.name for s in self.layers]}")

    def counts(self) -> dict:
        """`{layer: {"dead": n, "blocked": n, "healthy": n}}`."""
        return {layer.name: layer.counts() for layer in self.layers}

    def problems(self) -> list:
        """`(layer, channel, status)` for every dead or blocked channel."""
        return [(layer.name, channel, status) for layer in self.layers
                for channel, status in enumerate(layer.status) if status in (DEAD, BLOCKED)]

    def to_dict(self) -> dict:
        """Everything, per layer: what was tapped, counts, the dead / blocked channel indices, every statistic."""
        return {
            "thresholds": self.thresholds,
            "layers": [{"name": s.name, "channels": len(s.status), "activation": s.activation, "tapped": s.tapped,
                        "tap": s.tap or s.name, "checks": list(s.checks), "note": s.note, "counts": s.counts(),
                        DEAD: s.channels(DEAD), BLOCKED: s.channels(BLOCKED),
                        "min": s.min.tolist(), "max": s.max.tolist(), "mean": s.mean.tolist(),
                        "std": s.std.tolist(), "zero_fraction": s.zero_fraction.tolist(), "status": s.status}
                       for s in self.layers],
            "problems": [f"{name}[{channel}] {status}" for name, channel, status in self.problems()],
        }

    def save_json(self, path: str) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        return path

    def lines(self) -> list:
        """The notes' per-channel lines (`layer NAME[c] min=... max=...`) plus mean, std, zeros and status."""
        return [f"layer {s.name}[{c}] min={s.min[c]:.4f} max={s.max[c]:.4f} mean={s.mean[c]:.4f} "
                f"std={s.std[c]:.4f} zeros={s.zero_fraction[c]:.3f} {s.status[c]}"
                for s in self.layers for c in range(len(s.status))]

    def table(self, per_channel: bool = False, max_indices: int = 8) -> str:
        """One row per layer (activation, channel counts by class, value ranges), then the dead and blocked
        channels' indices (the first `max_indices` of each, `(+N more)`; all are in `to_dict`). Layers whose
        values go through no ReLU-family activation show "n/a". `per_channel` adds the notes' lines."""
        header = f"{'layer':<36} {'activation':>10} {'ch':>5} {'dead':>5} {'blocked':>7} {'healthy':>7} " \
                 f"{'min':>9} {'max':>9} {'mean std':>9} {'zeros':>6}"
        rows = [header, "-" * len(header)]
        for s in self.layers:
            c = s.counts()
            dead, blocked, healthy = (c[DEAD], c[BLOCKED], c[HEALTHY]) if s.classified else (NOT_APPLICABLE,) * 3
            if s.classified and BLOCKED not in s.checks:
                blocked = NOT_APPLICABLE
            rows.append(f"{s.name[-36:]:<36} {s.activation[-10:]:>10} {len(s.status):>5} {dead:>5} {blocked:>7} "
                        f"{healthy:>7} {s.min.min():>9.4f} {s.max.max():>9.4f} {s.std.mean():>9.4f} "
                        f"{s.zero_fraction.mean():>6.3f}")
            listed = [f"{label}: {_indices(s.channels(label), max_indices)}" for label in (DEAD, BLOCKED)
                      if s.channels(label)]
            if listed:
                rows.append(f"    {'; '.join(listed)}")
        rows += self._footnotes()
        if per_channel:
            rows += ["", *self.lines()]
        return "\n".join(rows)

    def _footnotes(self) -> list:
        notes = []
        if any(not s.classified for s in self.layers):
            notes.append("n/a: no ReLU-family activation follows (softmax, sigmoid, linear, ...): dead/blocked do "
                         "not apply")
        after_bn = [s for s in self.layers if not s.classified and s.note]
        if after_bn:
            notes.append(f"{len(after_bn)} of them n/a as tapped: BatchNormalization lies between their output and "
                         "the ReLU (pre-activation taps, the default, measure the ReLU's input)")
        if any(s.classified and BLOCKED not in s.checks for s in self.layers):
            notes.append("blocked n/a: after the ReLU a blocked channel is all zeros (dead), or the activation "
                         "passes values below 0")
        moved = [s for s in self.layers if s.tap and s.tap != s.name]
        if moved:
            notes.append(f"{len(moved)} layer{'s' if len(moved) > 1 else ''} measured where the activation sees "
                         f"them, after BatchNormalization (e.g. {moved[0].name} at {moved[0].tap}; 'tap' in JSON)")
        return [""] + notes if notes else []

    def heatmap_note(self, max_channels: int = MAX_HEATMAP_CHANNELS) -> str | None:
        """What `plot(max_channels=...)` leaves out, in words (None when it shows every channel)."""
        cut = [s for s in self.layers if len(s.status) > max_channels]
        if not cut:
            return None
        most = max(len(s.status) for s in cut)
        names = ", ".join(s.name for s in cut[:3]) + (f" and {len(cut) - 3} more" if len(cut) > 3 else "")
        return (f"heatmap shows the first {max_channels} of up to {most} channels of {len(cut)} "
                f"layer{'s' if len(cut) > 1 else ''} ({names}); the JSON report has every channel")

    def plot(self, path: str, value: str = "status", max_channels: int = MAX_HEATMAP_CHANNELS,
             wrap: int = 128) -> str:
        """Heatmap PNG: per layer, its channels in rows of `wrap` (channel = row offset + column), as status
        classes (dead / blocked / healthy / n/a) or a statistic's values (`value="max"`, ...).

        Every channel is shown up to `max_channels` per layer; beyond, the title says how many are left out
        (`heatmap_note`) and the JSON report (`save_json`) has them all.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        if max_channels < 1 or wrap < 1:
            raise ValueError(f"max_channels and wrap must be >= 1. Received: {max_channels}, {wrap}")
        shown = [min(len(s.status), max_channels) for s in self.layers]
        width = min(max(shown), wrap)
        heights = [-(-n // width) for n in shown]
        grid = np.full((sum(heights), width), np.nan)
        ticks, labels, row = [], [], 0
        codes_of = {DEAD: 0, BLOCKED: 1, HEALTHY: 2, NOT_APPLICABLE: 3}
        for s, n, height in zip(self.layers, shown, heights):
            values = [codes_of[t] for t in s.status] if value == "status" else getattr(s, value)
            flat = np.full(height * width, np.nan)
            flat[:n] = np.asarray(values, "float64")[:n]
            grid[row:row + height] = flat.reshape(height, width)
            for k in range(height):
                ticks.append(row + k)
                label = s.name[-30:] if k == 0 else f"+{k * width}"
                labels.append(label + (f" (first {n} of {len(s.status)})" if k == 0 and n < len(s.status) else ""))
            row += height
        fig, ax = plt.subplots(figsize=(min(16, 3 + width * 0.12), min(60, 1.5 + 0.16 * len(grid))))
        if value == "status":
            cmap = ListedColormap(["black", "tab:red", "tab:green", "lightgrey"]).with_extremes(bad="white")
            image = ax.imshow(grid, aspect="auto", interpolation="nearest", vmin=-0.5, vmax=3.5, cmap=cmap)
            bar = fig.colorbar(image, ax=ax, ticks=[0, 1, 2, 3])
            bar.ax.set_yticklabels([DEAD, BLOCKED, HEALTHY, NOT_APPLICABLE])
        else:
            fig.colorbar(ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis"), ax=ax)
        ax.set_yticks(ticks, labels, fontsize=6 if len(grid) > 40 else 7)
        for boundary in np.cumsum(heights)[:-1]:
            ax.axhline(boundary - 0.5, color="white", linewidth=1.5)
        ax.set_xlabel("channel (row offset + column)" if max(heights) > 1 else "channel")
        note = self.heatmap_note(max_channels)
        ax.set_title(f"per-channel {value}" + (f"\n{note}" if note else ""), fontsize=9)
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def _indices(channels: list, limit: int) -> str:
    """`3, 7, 12 (+5 more)`."""
    text = ", ".join(str(c) for c in channels[:limit])
    return text + (f" (+{len(channels) - limit} more)" if len(channels) > limit else "")


def parse_debug_output(text: str, dead_threshold: float = 0.01, blocked_threshold: float = 0.0) -> list:
    """Classifies the notes' printed debug lines (`layer conv2d_0_m[7] min=-1.8190 max=-1.4244`).

    Returns:
        `[(layer, channel, min, max, status)]` in input order.

    Examples:
    >>> parse_debug_output("layer conv2d_0_m[7] min=-1.8190 max=-1.4244")
    [('conv2d_0_m', 7, -1.819, -1.4244, 'blocked')]
    """
    rows = [(m["layer"], int(m["channel"]), float(m["min"]), float(m["max"])) for m in _LINE.finditer(text)]
    if not rows:
        raise ValueError("no 'layer NAME[c] min=... max=...' lines found in the text")
    status = classify_channels([r[2] for r in rows], [r[3] for r in rows], dead_threshold, blocked_threshold)
    return [(*row, s) for row, s in zip(rows, status)]
