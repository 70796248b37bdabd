"""Reporting layer statistics: a terminal table, JSON, a heatmap PNG, and the notes' text format."""

from __future__ import annotations

import json
import os
import re

import numpy as np

from toolkit.inspect.statistics.channels import BLOCKED, DEAD, HEALTHY, LayerStats, classify_channels

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
                for channel, status in enumerate(layer.status) if status != HEALTHY]

    def to_dict(self) -> dict:
        return {
            "thresholds": self.thresholds,
            "layers": [{"name": s.name, "channels": len(s.status), "counts": s.counts(),
                        "min": s.min.tolist(), "max": s.max.tolist(), "mean": s.mean.tolist(),
                        "std": s.std.tolist(), "zero_fraction": s.zero_fraction.tolist(), "status": s.status}
                       for s in self.layers],
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

    def table(self, per_channel: bool = False) -> str:
        """One row per layer (channel counts by class, value ranges); `per_channel` adds the notes' lines."""
        header = f"{'layer':<36} {'ch':>4} {'dead':>5} {'blocked':>7} {'healthy':>7} {'min':>9} {'max':>9} " \
                 f"{'mean std':>9} {'zeros':>6}"
        rows = [header, "-" * len(header)]
        for s in self.layers:
            c = s.counts()
            rows.append(f"{s.name[-36:]:<36} {len(s.status):>4} {c[DEAD]:>5} {c[BLOCKED]:>7} {c[HEALTHY]:>7} "
                        f"{s.min.min():>9.4f} {s.max.max():>9.4f} {s.std.mean():>9.4f} {s.zero_fraction.mean():>6.3f}")
        if per_channel:
            rows += ["", *self.lines()]
        return "\n".join(rows)

    def plot(self, path: str, value: str = "status", max_channels: int = 128) -> str:
        """Heatmap PNG: one row per layer, one column per channel (status classes, or a statistic's values)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        width = min(max(len(s.status) for s in self.layers), max_channels)
        grid = np.full((len(self.layers), width), np.nan)
        for row, s in enumerate(self.layers):
            if value == "status":
                codes = [{DEAD: 0, BLOCKED: 1, HEALTHY: 2}[t] for t in s.status]
            else:
                codes = getattr(s, value)
            grid[row, :min(width, len(codes))] = np.asarray(codes, "float64")[:width]
        fig, ax = plt.subplots(figsize=(min(16, 3 + width * 0.12), 1.5 + 0.35 * len(self.layers)))
        if value == "status":
            image = ax.imshow(grid, aspect="auto", interpolation="nearest", vmin=0, vmax=2,
                              cmap=ListedColormap(["black", "tab:red", "tab:green"]))
            bar = fig.colorbar(image, ax=ax, ticks=[1 / 3, 1, 5 / 3])
            bar.ax.set_yticklabels([DEAD, BLOCKED, HEALTHY])
        else:
            fig.colorbar(ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis"), ax=ax)
        ax.set_yticks(range(len(self.layers)), [s.name[-30:] for s in self.layers], fontsize=7)
        ax.set_xlabel("channel")
        ax.set_title(f"per-channel {value}")
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


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
