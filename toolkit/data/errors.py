"""The one error type for bad user data."""

from __future__ import annotations


class DataError(ValueError):
    """Bad user data: the message names the file, field or value.

    A `ValueError`, so callers that catch `ValueError` for bad arguments catch it too.

    Examples:
    >>> issubclass(DataError, ValueError)
    True
    """
