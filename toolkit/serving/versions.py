"""Version folders and version records: which `<version>/` folders count, what one version's state is, and
what a failed load tells a client.

- `scan_versions`: the child folders of a model folder whose names are plain ASCII integers (`0`-`9` only,
  at most 18 digits, so int64 like TF Serving's); anything else (`²`, `٣`, `v2`, ...) is skipped with one
  warning per name, dot-folders (the exporter's `.tmp-export-*` staging) silently.
- `fingerprint`: names, sizes and mtimes of a version folder's files; a failed load is retried when it
  changes (a half-written folder that is completed later).
- `Version`: one version's state (START -> LOADING -> AVAILABLE -> UNLOADING -> END), its error (code and a
  message without absolute paths), its load attempts and, when AVAILABLE, its servable and batchers.
"""

from __future__ import annotations

import logging
import os
import re

from toolkit.serving.servable import Servable

logger = logging.getLogger(__name__)

VERSION_PATTERN = re.compile(r"[0-9]{1,18}")  # [0-9], not \d: \d (and str.isdigit) accept '٣', '²', ...
FINGERPRINT_MAX_FILES = 10000


class VersionScanner:
    """Lists version folders, warning once per (model folder, odd name); the warned set is bounded."""

    def __init__(self, max_warnings: int = 10000):
        self._warned: set = set()
        self.max_warnings = max_warnings

    def warn_once(self, key, message: str, *args) -> None:
        if key in self._warned:
            return
        if len(self._warned) < self.max_warnings:
            self._warned.add(key)
        logger.warning(message, *args)

    def scan(self, directory: str | None) -> dict | None:
        """`{version number: folder}` under `directory`; `{}` when it does not exist; None when it cannot be
        read right now (then the caller keeps what it serves)."""
        if directory is None:
            return {}
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return {}
        except OSError as error:
            self.warn_once((directory, "<listdir>"), "cannot list model folder %s: %s", directory, error)
            return None
        found: dict = {}
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = os.path.join(directory, name)
            if not os.path.isdir(path):
                continue
            if not VERSION_PATTERN.fullmatch(name):
                self.warn_once((directory, name), "ignoring folder %r in %s: version folders are named by a plain "
                               "integer (ASCII digits 0-9, at most 18)", name, directory)
                continue
            number = int(name)
            if number in found:  # '007' and '7': keep the canonical spelling
                self.warn_once((directory, name), "ignoring folder %r in %s: version %d is also folder %r",
                               name, directory, number, str(number))
                if name != str(number):
                    continue
            found[number] = path
        return found


def fingerprint(path: str):
    """A value that changes when files are added to, removed from or rewritten in `path`."""
    entries = []
    try:
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                file = os.path.join(root, name)
                try:
                    stat = os.stat(file)
                except OSError:
                    continue
                entries.append((os.path.relpath(file, path), stat.st_size, stat.st_mtime_ns))
            if len(entries) > FINGERPRINT_MAX_FILES:
                break
    except OSError:
        return None
    return hash(tuple(entries))


_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/-])(?:/[^/\s'\"(),;:]+)+/([^/\s'\"(),;:]*)")


def client_message(text: str, path: str, shown_as: str) -> str:
    """`text` with the version folder `path` shown as `shown_as` (`NAME/VERSION`) and any other absolute
    path cut to its last component: clients never see where models live on the server.

    Examples:
    >>> client_message("no file /srv/models/m/2/variables/x in /tmp/a/b", "/srv/models/m/2", "m/2")
    'no file m/2/variables/x in b'
    """
    for root in sorted({path, os.path.abspath(path), os.path.realpath(path)}, key=len, reverse=True):
        text = text.replace(root.rstrip(os.sep), shown_as)
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)


def error_code(error) -> str:
    """A load error -> the `tensorflow.error.Code` name TF Serving would report (NOT_FOUND, ...)."""
    if isinstance(error, FileNotFoundError):
        return "NOT_FOUND"
    import tensorflow as tf

    if isinstance(error, tf.errors.OpError) and type(error) is not tf.errors.OpError:
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__.removesuffix("Error")).upper()
        return name
    return "UNKNOWN"


class Version:
    """One model version's state, error and load attempts; its servable and batchers when AVAILABLE.

    Attributes:
        state: `START`, `LOADING`, `AVAILABLE`, `UNLOADING` or `END`.
        error: why the last load failed (no absolute paths), `""` otherwise.
        error_code: a `tensorflow.error.Code` name, `"OK"` when there is no error.
        attempts: failed load attempts since the folder last changed.
        retry_at: `time.monotonic()` after which a failed load may be tried again.
        warmup_requests: how many `assets.extra/tf_serving_warmup_requests` records the load ran.
    """

    def __init__(self, name: str, number: int, path: str):
        self.name, self.number, self.path = name, number, path
        self.state, self.error, self.error_code = "START", "", "OK"
        self.servable: Servable | None = None
        self.batchers: dict = {}
        self.batching = False
        self.attempts, self.retry_at, self.fingerprint = 0, 0.0, None
        self.warmup_requests = 0

    @property
    def failed(self) -> bool:
        return self.state == "END" and bool(self.error)

    def fail(self, error: BaseException, retry_at: float) -> None:
        text = f"{type(error).__name__}: {getattr(error, 'message', None) or error}"
        self.state, self.error_code = "END", error_code(error)
        self.error = client_message(text, self.path, f"{self.name}/{self.number}")[:2000]
        self.attempts += 1
        self.retry_at = retry_at
        self.servable = None

    def close(self) -> None:
        """Drains and stops this version's batchers (a dispatcher adding one meanwhile sees the state change)."""
        batchers, self.batchers = self.batchers, {}
        for batcher in list(batchers.values()):
            batcher.close()

    def __repr__(self) -> str:
        return f"Version({self.name!r}, {self.number}, {self.state}{', ' + self.error if self.error else ''})"
