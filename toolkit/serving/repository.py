"""The model repository: `<base>/<name>/<version>/` folders, loaded, smoke-tested, polled and swapped.

Mirrors TF Serving's model manager: each version moves START -> LOADING -> AVAILABLE -> UNLOADING -> END;
a version that fails to load (or fails its smoke call) ends in END with the error in its status, and the
version that was serving keeps serving. The policy `latest` serves the newest loadable version, `all`
serves every version on disk. Versions removed from disk are unloaded.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import threading
import time

from toolkit.serving.batcher import Batcher
from toolkit.serving.servable import Servable

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING", "END")


class NotFoundError(LookupError):
    """Unknown model, version or not-yet-available servable (HTTP 404 / gRPC NOT_FOUND)."""


def validate_name(name: str) -> str:
    """Model names are plain folder names: letters, digits, `_ . -`; no `..`, slashes or hidden folders."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '_', '.', '-' (no path separators or '..')")
    return name


def validate_version(version) -> int | None:
    """None, or a non-negative integer version (from an int or a string of digits)."""
    if version is None or version == "":
        return None
    if isinstance(version, int) and version >= 0:
        return version
    if isinstance(version, str) and version.isdigit() and len(version) < 19:
        return int(version)
    raise ValueError(f"invalid model version {version!r}: versions are non-negative integers")


def _versions_on_disk(directory: str) -> dict:
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    return {int(n): os.path.join(directory, n) for n in names
            if n.isdigit() and len(n) < 19 and os.path.isdir(os.path.join(directory, n))}


class Version:
    """One model version's state, error and (when AVAILABLE) its servable and batchers."""

    def __init__(self, name: str, number: int, path: str):
        self.name, self.number, self.path = name, number, path
        self.state, self.error = "START", ""
        self.servable: Servable | None = None
        self.batchers: dict = {}
        self.batching = False

    def close(self) -> None:
        for batcher in self.batchers.values():
            batcher.close()
        self.batchers = {}


class ModelRepository:
    """Loads and serves the SavedModels under a base path (or an explicit `{name: path}` map).

    Args:
        base_path: folder of model folders (`<base>/<name>/<version>/`), like TF Serving's.
        models: `{name: model folder}` instead of (or besides) `base_path`.
        poll_interval_s: seconds between scans for new / removed versions (0: scan once).
        version_policy: `"latest"` (the newest loadable version) or `"all"`.
        batching: `"auto"` (on for dynamic-batch exports, off for static-batch tpu exports), `"on"`, `"off"`.
        max_batch_size: most rows per merged call (static-batch exports use their own batch size).
        max_wait_ms: longest a batch waits for batch-mates under concurrent load.
        metrics: optional `toolkit.serving.metrics.Metrics`.
        workers: threads for unbatched calls.
    """

    def __init__(self, base_path: str | None = None, models: dict | None = None, poll_interval_s: float = 2.0,
                 version_policy: str = "latest", batching: str = "auto", max_batch_size: int = 32,
                 max_wait_ms: float = 2.0, metrics=None, workers: int = 8):
        if version_policy not in ("latest", "all"):
            raise ValueError(f"version_policy must be 'latest' or 'all'. Received: {version_policy!r}")
        if batching not in ("auto", "on", "off"):
            raise ValueError(f"batching must be 'auto', 'on' or 'off'. Received: {batching!r}")
        if base_path is None and not models:
            raise ValueError("give a model base path or at least one model (name and path)")
        if base_path is not None and not os.path.isdir(base_path):
            raise FileNotFoundError(f"model base path {base_path!r} is not a folder")
        for name, path in (models or {}).items():
            validate_name(name)
            if not os.path.isdir(path):
                raise FileNotFoundError(f"model path {path!r} for model {name!r} is not a folder")
        self.base_path, self.fixed = base_path, dict(models or {})
        self.poll_interval_s, self.policy = poll_interval_s, version_policy
        self.batching, self.max_batch_size, self.max_wait_ms = batching, max_batch_size, max_wait_ms
        self.metrics = metrics
        self._models: dict = {}  # name -> {number: Version}
        self._lock = threading.RLock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predict")

    # ---- discovery and loading ------------------------------------------------------------------
    def model_dirs(self) -> dict:
        found = {}
        if self.base_path:
            for name in sorted(os.listdir(self.base_path)):
                path = os.path.join(self.base_path, name)
                if not name.startswith(".") and NAME_PATTERN.match(name) and os.path.isdir(path):
                    found[name] = path
        found.update(self.fixed)
        return found

    def poll(self) -> None:
        """One scan: load new versions (load + smoke call), swap, unload removed or superseded ones."""
        with self._poll_lock:
            dirs = self.model_dirs()
            for name in set(self._models) - set(dirs):
                self._unload_all(name)
            for name, directory in dirs.items():
                self._poll_model(name, directory)
            if self.metrics:
                self.metrics.set_loaded(self.snapshot())

    def _poll_model(self, name: str, directory: str) -> None:
        on_disk = _versions_on_disk(directory)
        with self._lock:
            known = self._models.setdefault(name, {})
            for number in [n for n in known if n not in on_disk]:  # removed from disk
                self._unload(known.pop(number))
        failed = {n for n, v in known.items() if v.state == "END"}
        candidates = sorted(n for n in on_disk if n not in failed)
        wanted = candidates if self.policy == "all" else candidates[-1:]
        for number in wanted:
            if number not in known:
                self._load(name, number, on_disk[number])
        with self._lock:
            available = {n for n, v in known.items() if v.state == "AVAILABLE"}
            if self.policy == "latest" and available:
                newest = max(available)
                for number in sorted(available - {newest}):
                    self._unload(known.pop(number))

    def _load(self, name: str, number: int, path: str) -> None:
        version = Version(name, number, path)
        with self._lock:
            self._models[name][number] = version
        version.state = "LOADING"
        started = time.monotonic()
        try:
            servable = Servable(path)
            servable.smoke_test()
        except Exception as error:  # noqa: BLE001 - any load failure is reported in the model status
            version.state, version.error = "END", f"{type(error).__name__}: {error}"[:2000]
            logger.error("model %s version %d failed to load: %s", name, number, version.error)
            if self.metrics:
                self.metrics.load_failed(name)
            return
        version.servable = servable
        version.batching = self.batching == "on" or (self.batching == "auto" and servable.batch_size is None)
        if version.batching and servable.batch_size is None:
            from toolkit.serving.batcher import _powers_of_two

            servable.warm_up(_powers_of_two(self.max_batch_size))
        version.state = "AVAILABLE"
        logger.info("model %s version %d is available (%.1f s, batching %s)", name, number,
                    time.monotonic() - started, "on" if version.batching else "off")

    def _unload(self, version: Version) -> None:
        version.state = "UNLOADING"
        version.close()
        version.servable = None
        version.state = "END"
        logger.info("model %s version %d unloaded", version.name, version.number)

    def _unload_all(self, name: str) -> None:
        with self._lock:
            for version in self._models.pop(name, {}).values():
                self._unload(version)

    def start(self) -> "ModelRepository":
        """Loads what is on disk now, then keeps polling in a background thread."""
        self.poll()
        if self.poll_interval_s and self.poll_interval_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll_loop, name="model-poller", daemon=True)
            self._thread.start()
        return self

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - keep polling; the error is logged
                logger.exception("polling the model repository failed")

    def close(self) -> None:
        """Stops polling, finishes queued requests and unloads everything."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for name in list(self._models):
            self._unload_all(name)
        self._pool.shutdown(wait=True)

    # ---- lookups --------------------------------------------------------------------------------
    def names(self) -> list:
        with self._lock:
            return sorted(self._models)

    def versions(self, name: str, version=None) -> list:
        """Status entries (newest first) of a model, or of one version; NotFoundError if unknown."""
        validate_name(name)
        number = validate_version(version)
        with self._lock:
            if name not in self._models:
                raise NotFoundError(f"Could not find any versions of model {name}")
            entries = sorted(self._models[name].values(), key=lambda v: -v.number)
        if number is not None:
            entries = [v for v in entries if v.number == number]
            if not entries:
                raise NotFoundError(f"Could not find version {number} of model {name}")
        return entries

    def get(self, name: str, version=None) -> Version:
        """The AVAILABLE version to serve (newest, or the one asked for)."""
        validate_name(name)
        number = validate_version(version)
        with self._lock:
            entries = self._models.get(name, {})
            available = [v for v in entries.values() if v.state == "AVAILABLE"]
        if number is not None:
            available = [v for v in available if v.number == number]
        if not available:
            what = f"Specific(name: {name}, version: {number})" if number is not None else f"Latest({name})"
            raise NotFoundError(f"Servable not found for request: {what}")
        return max(available, key=lambda v: v.number)

    def snapshot(self) -> dict:
        with self._lock:
            return {name: {n: v.state for n, v in versions.items()} for name, versions in self._models.items()}

    # ---- prediction -----------------------------------------------------------------------------
    def predict(self, name: str, version, signature: str | None, arrays: dict):
        """Queues a prediction; returns `(Version, concurrent.futures.Future of {output: array})`.

        Inputs must already be validated against `Version.servable.specs(signature)`.
        """
        for _attempt in range(3):
            entry = self.get(name, version)
            try:
                return entry, self.submit(entry, signature, arrays)
            except RuntimeError:  # the version was unloaded between lookup and submit: take the new one
                continue
        raise NotFoundError(f"Servable not found for request: {name} (being swapped, retry)")

    def submit(self, entry: Version, signature: str | None, arrays: dict):
        """Queues a call on `entry` (batched or not); RuntimeError if it was unloaded since the lookup."""
        servable = entry.servable
        if servable is None or entry.state != "AVAILABLE":
            raise RuntimeError("unloaded")
        signature = signature or "serving_default"
        if not entry.batching:
            return self._pool.submit(self._timed_call, entry, servable, signature, arrays)
        with self._lock:
            if entry.state != "AVAILABLE":
                raise RuntimeError("unloaded")
            batcher = entry.batchers.get(signature)
            if batcher is None:
                size = servable.batch_size or self.max_batch_size
                batcher = entry.batchers[signature] = Batcher(
                    lambda a, s=servable, sig=signature: s.run(sig, a), max_batch_size=size,
                    max_wait_ms=self.max_wait_ms, name=f"batch-{entry.name}-{entry.number}-{signature}",
                    on_batch=(lambda rows, n=entry.name, sig=signature: self.metrics.batch(n, sig, rows))
                    if self.metrics else None)
        return batcher.submit(arrays)

    def _timed_call(self, entry, servable, signature, arrays):
        outputs = servable.run(signature, arrays)
        if self.metrics:
            self.metrics.batch(entry.name, signature, len(next(iter(arrays.values()))))
        return outputs
