"""The export error type (its own module so every export step can raise it without importing the exporter)."""

from __future__ import annotations


class ExportError(RuntimeError):
    """An export failed (parity, conversion, ...); nothing was published."""
