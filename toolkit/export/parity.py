"""Parity: an export's outputs against the live model's on the same sample inputs."""

from __future__ import annotations

import numpy as np

from toolkit.export.errors import ExportError


def compare_outputs(expected: dict, actual: dict, tolerance: float, where: str) -> float:
    """Max abs difference over the numeric outputs; raises ExportError beyond `tolerance` x the output's scale
    (max(1, its largest magnitude)): a detector's boxes in pixels (0-640) differ by float32 round-off of ~1e-4 px
    between the live model and its graph, which is no mismatch, while probabilities keep the absolute bound.

    Examples:
    >>> compare_outputs({"y": np.array([1.0, 2.0])}, {"y": np.array([1.0, 2.5])}, 1.0, "test")
    0.5
    >>> compare_outputs({"box": np.array([640.0])}, {"box": np.array([640.0002])}, 1e-6, "test") < 3e-4  # 640 px
    True
    >>> compare_outputs({"p": np.array([0.5])}, {"p": np.array([0.5002])}, 1e-4, "test")
    Traceback (most recent call last):
    ...
    toolkit.export.errors.ExportError: test: output 'p' differs from the live model by 0.0002 > tolerance 0.0001 (x its scale 1)
    """
    worst = 0.0
    for name, want in expected.items():
        if name not in actual:
            raise ExportError(f"{where}: output {name!r} is missing (has {sorted(actual)})")
        got = np.asarray(actual[name])
        want = np.asarray(want)
        if want.dtype.kind in "SUO":
            continue  # label strings follow from the class ids compared below
        if got.shape != want.shape:
            raise ExportError(f"{where}: output {name!r} has shape {got.shape}, expected {want.shape}")
        diff = float(np.max(np.abs(got.astype("float64") - want.astype("float64")))) if want.size else 0.0
        if want.dtype.kind in "iu" and diff > 0:
            raise ExportError(f"{where}: integer output {name!r} differs from the live model")
        scale = max(1.0, float(np.max(np.abs(want.astype("float64"))))) if want.size else 1.0
        if diff > tolerance * scale:
            raise ExportError(f"{where}: output {name!r} differs from the live model by {diff:.3g} > tolerance "
                              f"{tolerance} (x its scale {scale:.3g})")
        worst = max(worst, diff)
    return worst
