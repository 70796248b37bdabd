"""Parity: an export's outputs against the live model's on the same sample inputs."""

from __future__ import annotations

import numpy as np

from toolkit.export.errors import ExportError


def compare_outputs(expected: dict, actual: dict, tolerance: float, where: str) -> float:
    """Max abs difference over the numeric outputs; raises ExportError beyond `tolerance`.

    Examples:
    >>> compare_outputs({"y": np.array([1.0, 2.0])}, {"y": np.array([1.0, 2.5])}, 1.0, "test")
    0.5
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
        worst = max(worst, diff)
    if worst > tolerance:
        raise ExportError(f"{where}: outputs differ from the live model by {worst:.3g} > tolerance {tolerance}")
    return worst
