"""The model repository: `<base>/<name>/<version>/` folders, loaded, smoke-tested, polled and swapped.

Mirrors TF Serving's model manager with its default `AvailabilityPreservingPolicy`:
- each version moves START -> LOADING -> AVAILABLE -> UNLOADING -> END, and stays in the status as END
  after it is unloaded (a failed load: END with its error code and message);
- a model's version policy (`latest` N, `all`, `specific`; see `toolkit.serving.model_config`) picks the
  versions to serve among those on disk; a new version is loaded, smoke-tested and warmed up (with
  `assets.extra/tf_serving_warmup_requests` when present) BEFORE a version it replaces is unloaded, and a
  version that is no longer wanted (superseded or deleted from disk) is unloaded only once a wanted one is
  AVAILABLE: deleting the served version falls back to the next one with no failed request;
- a failed load is retried up to `max_num_load_retries` times, `load_retry_interval_s` apart, and again
  whenever the version folder's contents change (a half-written folder becomes AVAILABLE once complete);
  while it fails, the newest loadable older version serves;
- version labels (`{"stable": 1}`) resolve `get(name, label="stable")`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

from toolkit.serving.model_config import ModelConfig, VersionPolicy, validate_label
from toolkit.serving.servable import Servable
from toolkit.serving.versions import Version, VersionScanner, fingerprint

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING", "END")
MAX_ENDED_RECORDS = 64  # END entries kept per model (beyond those still on disk)

__all__ = ["ModelRepository", "NotFoundError", "Version", "validate_name", "validate_version"]


class NotFoundError(LookupError):
    """Unknown model, version or label, or a not-yet-available servable (HTTP 404 / gRPC NOT_FOUND)."""


def validate_name(name: str) -> str:
    """Model names are plain folder names: letters, digits, `_ . -`; no `..`, slashes or hidden folders."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '_', '.', '-' (no path separators or '..')")
    return name


def validate_version(version) -> int | None:
    """None, or a non-negative integer version (from an int or a string of ASCII digits)."""
    if version is None or version == "":
        return None
    if isinstance(version, int) and not isinstance(version, bool) and 0 <= version < 2**63:
        return version
    if isinstance(version, str) and re.fullmatch(r"[0-9]{1,18}", version):
        return int(version)
    raise ValueError(f"invalid model version {version!r}: versions are non-negative integers")


class ModelRepository:
    """Loads and serves the SavedModels under a base path, an explicit `{name: path}` map, or model configs.

    Args:
        base_path: folder of model folders (`<base>/<name>/<version>/`), like TF Serving's.
        models: `{name: model folder}` instead of (or besides) `base_path`.
        poll_interval_s: seconds between scans for new / removed versions (0: scan once; failed loads are
            still retried).
        version_policy: for `base_path` and `models`: `"latest"` (the newest loadable version) or `"all"`.
        batching: `"auto"` (on for dynamic-batch exports, off for static-batch tpu exports), `"on"`, `"off"`.
        max_batch_size: the largest batch a batched version is warmed up for (powers of two up to it).
        max_wait_ms: kept with the batching settings for callers that read them; the server's `Dispatcher`
            batches with its own `BatchingOptions`.
        metrics: optional `toolkit.serving.metrics.Metrics`.
        model_configs: `[ModelConfig, ...]` (e.g. from `read_model_config_file`): models with their own
            version policy and labels.
        max_num_load_retries: retries of a failed load (TF Serving's `max_num_load_retries`, default 5).
        load_retry_interval_s: seconds between retries (TF Serving's `load_retry_interval_micros`: 60 s).
    """

    def __init__(self, base_path: str | None = None, models: dict | None = None, poll_interval_s: float = 2.0,
                 version_policy: str = "latest", batching: str = "auto", max_batch_size: int = 32,
                 max_wait_ms: float = 2.0, metrics=None, model_configs=None,
                 max_num_load_retries: int = 5, load_retry_interval_s: float = 60.0):
        if version_policy not in ("latest", "all"):
            raise ValueError(f"version_policy must be 'latest' or 'all'. Received: {version_policy!r}")
        if batching not in ("auto", "on", "off"):
            raise ValueError(f"batching must be 'auto', 'on' or 'off'. Received: {batching!r}")
        if max_num_load_retries < 0 or load_retry_interval_s < 0:
            raise ValueError(f"max_num_load_retries ({max_num_load_retries}) and load_retry_interval_s "
                             f"({load_retry_interval_s}) must be >= 0")
        if base_path is None and not models and not model_configs:
            raise ValueError("give a model base path, a model config file or at least one model (name and path)")
        if base_path is not None and not os.path.isdir(base_path):
            raise FileNotFoundError(f"model base path {base_path!r} is not a folder")
        self.default_policy = VersionPolicy("all" if version_policy == "all" else "latest")
        configs = {}
        for name, path in (models or {}).items():
            configs[name] = ModelConfig(name, path, self.default_policy)
        for config in model_configs or []:
            if config.name in configs:
                raise ValueError(f"model {config.name!r} is configured twice")
            configs[config.name] = config
        for config in configs.values():
            if not os.path.isdir(config.base_path):
                raise FileNotFoundError(f"model path {config.base_path!r} for model {config.name!r} is not a folder")
        self.base_path, self.configs = base_path, configs
        self.fixed = {name: c.base_path for name, c in configs.items()}
        self.poll_interval_s, self.policy = poll_interval_s, version_policy
        self.batching, self.max_batch_size, self.max_wait_ms = batching, max_batch_size, max_wait_ms
        self.max_num_load_retries, self.load_retry_interval_s = int(max_num_load_retries), float(load_retry_interval_s)
        self.metrics = metrics
        self._models: dict = {}  # name -> {number: Version}
        self._lock = threading.RLock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_retry: float | None = None
        self._scanner = VersionScanner()

    # ---- discovery --------------------------------------------------------------------------------
    def model_configs(self) -> dict:
        """`{name: ModelConfig}` of every model to serve now (base path folders + configured models)."""
        found = {}
        if self.base_path:
            try:
                names = sorted(os.listdir(self.base_path))
            except OSError as error:
                self._scanner.warn_once((self.base_path, "<listdir>"), "cannot list %s: %s", self.base_path, error)
                names = None
            if names is None:  # unreadable right now: keep the models we know of
                found.update({n: self._config(n) for n in self._models if n not in self.configs})
            for name in names or []:
                path = os.path.join(self.base_path, name)
                if name.startswith(".") or not os.path.isdir(path):
                    continue
                if NAME_PATTERN.match(name) and ".." not in name:
                    found[name] = ModelConfig(name, path, self.default_policy)
                else:
                    self._scanner.warn_once((self.base_path, name), "ignoring folder %r in %s: model names are "
                                            "letters, digits, '_', '.', '-'", name, self.base_path)
        found.update(self.configs)
        return found

    def model_dirs(self) -> dict:
        return {name: config.base_path for name, config in self.model_configs().items()}

    def _config(self, name: str) -> ModelConfig | None:
        if name in self.configs:
            return self.configs[name]
        if self.base_path:
            return ModelConfig(name, os.path.join(self.base_path, name), self.default_policy)
        return None

    # ---- polling, loading, unloading ----------------------------------------------------------------
    def poll(self) -> None:
        """One scan of every model: load what its policy wants, then unload what is no longer wanted."""
        with self._poll_lock:
            self._next_retry = None
            configs = self.model_configs()
            for name in sorted(set(self._models) | set(configs)):
                try:
                    self._poll_model(name, configs.get(name))
                except Exception:  # noqa: BLE001 - one model's trouble never blocks the others
                    logger.exception("polling model %s failed", name)
            if self.metrics:
                self.metrics.set_loaded(self.snapshot())

    def _poll_model(self, name: str, config: ModelConfig | None) -> None:
        on_disk = self._scanner.scan(config.base_path if config else None)
        if on_disk is None:
            return
        policy = config.policy if config else self.default_policy
        now = time.monotonic()
        with self._lock:
            known = self._models.setdefault(name, {})  # unloaded versions stay as END (and load again if wanted)
        usable = {n for n in on_disk if not self._blocked(known.get(n), now)}
        tried: set = set()
        while True:  # load the newest wanted version first; a failure falls back to the next one
            wanted = policy.select(usable)
            todo = [n for n in wanted if n not in tried and (known.get(n) is None or known[n].state != "AVAILABLE")]
            if not todo:
                break
            number = max(todo)
            tried.add(number)
            if not self._load(name, number, on_disk[number], known.get(number)):
                usable.discard(number)
        self._unload_unwanted(name, known, set(policy.select(usable)), bool(policy.select(on_disk)))
        self._schedule_retries(known, on_disk, now)
        self._forget_ended(known, on_disk)

    def _blocked(self, entry: Version | None, now: float) -> bool:
        """True for a failed version not due for a retry (its folder unchanged and retries used or pending)."""
        if entry is None or not entry.failed:
            return False
        if fingerprint(entry.path) != entry.fingerprint:  # the folder changed: a fresh set of retries
            entry.attempts = 0
            return False
        return entry.attempts > self.max_num_load_retries or now < entry.retry_at

    def _schedule_retries(self, known: dict, on_disk: dict, now: float) -> None:
        # a failed version due before this poll's start and not retried in it is not wanted now (a newer one
        # serves): it is looked at again by the regular polls, not by an early wake-up
        pending = [v.retry_at for n, v in known.items()
                   if n in on_disk and v.failed and v.attempts <= self.max_num_load_retries and v.retry_at > now]
        if pending:
            self._next_retry = min([*pending, *([self._next_retry] if self._next_retry is not None else [])])

    def _unload_unwanted(self, name: str, known: dict, wanted: set, aspired: bool) -> None:
        """TF Serving's availability-preserving rule: unload versions no longer wanted once a wanted one is
        AVAILABLE, or when nothing is wanted at all (no version on disk); otherwise keep the newest."""
        with self._lock:
            available = sorted(n for n, v in known.items() if v.state == "AVAILABLE")
            unwanted = [n for n in available if n not in wanted]
            if aspired and not any(n in wanted for n in available):
                if unwanted:
                    logger.info("model %s: keeping version %d until a wanted version %s is available", name,
                                unwanted[-1], sorted(wanted) or "(none loadable yet)")
                unwanted = unwanted[:-1]
            for number in unwanted:
                self._unload(known[number])

    def _forget_ended(self, known: dict, on_disk: dict) -> None:
        with self._lock:
            ended = sorted(n for n, v in known.items() if v.state == "END" and n not in on_disk)
            for number in ended[:max(0, len(ended) - MAX_ENDED_RECORDS)]:
                known.pop(number)

    def _load(self, name: str, number: int, path: str, previous: Version | None = None) -> bool:
        """Loads, smoke-tests and warms one version; True when it became AVAILABLE."""
        version = previous or Version(name, number, path)
        version.fingerprint = fingerprint(path)  # before loading: a change while loading triggers a retry
        with self._lock:
            self._models[name][number] = version
            version.state, version.error, version.error_code = "LOADING", "", "OK"
        started = time.monotonic()
        try:
            servable = Servable(path)
            servable.smoke_test()
            from toolkit.serving.warmup import run_warmup

            warmed = run_warmup(servable, path)
        except Exception as error:  # noqa: BLE001 - any load failure is reported in the model status
            version.fail(error, time.monotonic() + self.load_retry_interval_s)
            left = self.max_num_load_retries + 1 - version.attempts
            logger.error("model %s version %d failed to load (attempt %d; %s): %s", name, number, version.attempts,
                         f"retrying in {self.load_retry_interval_s:g} s or when its folder changes" if left > 0
                         else "no retries left; retried when its folder changes", f"{type(error).__name__}: {error}")
            if self.metrics:
                self.metrics.load_failed(name)
            return False
        version.servable, version.warmup_requests, version.attempts = servable, warmed, 0
        version.batching = self.batching == "on" or (self.batching == "auto" and servable.batch_size is None)
        if version.batching and servable.batch_size is None:
            from toolkit.serving.batcher import _powers_of_two

            servable.warm_up(_powers_of_two(self.max_batch_size))
        with self._lock:
            version.state = "AVAILABLE"
        logger.info("model %s version %d is available (%.1f s, %d warm-up requests, batching %s)", name, number,
                    time.monotonic() - started, warmed, "on" if version.batching else "off")
        return True

    def _unload(self, version: Version) -> None:
        with self._lock:
            version.state = "UNLOADING"
        version.close()
        version.servable = None
        with self._lock:
            version.state = "END"
        logger.info("model %s version %d unloaded", version.name, version.number)

    def start(self) -> "ModelRepository":
        """Loads what is on disk now, then keeps polling (and retrying failed loads) in a background thread."""
        self.poll()
        wants_thread = (self.poll_interval_s and self.poll_interval_s > 0) or self._next_retry is not None
        if wants_thread and self._thread is None:
            self._thread = threading.Thread(target=self._poll_loop, name="model-poller", daemon=True)
            self._thread.start()
        return self

    def _poll_loop(self) -> None:
        polling = bool(self.poll_interval_s and self.poll_interval_s > 0)
        while True:
            deadline = time.monotonic() + self.poll_interval_s if polling else None
            if self._next_retry is not None:
                deadline = min(deadline, self._next_retry) if deadline is not None else self._next_retry
            if deadline is None:  # scan-once mode with no retries pending: done
                self._thread = None
                return
            if self._stop.wait(max(0.0, deadline - time.monotonic()) + 0.001):
                return
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - keep polling; the error is logged
                logger.exception("polling the model repository failed")

    def close(self) -> None:
        """Stops polling, finishes queued requests and unloads everything."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(10)
        with self._poll_lock:
            for versions in list(self._models.values()):
                for version in list(versions.values()):
                    if version.state == "AVAILABLE":
                        self._unload(version)

    # ---- lookups --------------------------------------------------------------------------------
    def names(self) -> list:
        with self._lock:
            return sorted(self._models)

    def labels(self, name: str) -> dict:
        """`{label: version}` of a model (from its config)."""
        config = self.configs.get(name)
        return dict(config.labels) if config else {}

    def _resolve(self, name: str, version, label) -> int | None:
        validate_name(name)
        number = validate_version(version)
        if label is None or label == "":
            return number
        if number is not None:
            raise ValueError(f"give a version or a version label, not both (version {number}, label {label!r})")
        validate_label(label)
        labels = self.labels(name)
        if label not in labels:
            known = f"; its labels are {sorted(labels)}" if labels else "; it has no labels"
            raise NotFoundError(f"Unrecognized servable version label: {label} (model {name}{known})")
        return labels[label]

    def versions(self, name: str, version=None, label=None) -> list:
        """Status entries (newest first) of a model, or of one version / label; NotFoundError if unknown."""
        number = self._resolve(name, version, label)
        with self._lock:
            if name not in self._models:
                raise NotFoundError(f"Could not find any versions of model {name}")
            entries = sorted(self._models[name].values(), key=lambda v: -v.number)
        if number is not None:
            entries = [v for v in entries if v.number == number]
            if not entries:
                via = f" (label {label})" if label else ""
                raise NotFoundError(f"Could not find version {number} of model {name}{via}")
        return entries

    def get(self, name: str, version=None, label=None) -> Version:
        """The AVAILABLE version to serve: the newest, the one asked for, or the one a label names."""
        number = self._resolve(name, version, label)
        with self._lock:
            entries = self._models.get(name, {})
            available = [v for v in entries.values() if v.state == "AVAILABLE"]
        if number is not None:
            available = [v for v in available if v.number == number]
        if not available:
            what = f"Specific(name: {name}, version: {number})" if number is not None else f"Latest({name})"
            via = f" (label {label})" if label else ""
            raise NotFoundError(f"Servable not found for request: {what}{via}")
        return max(available, key=lambda v: v.number)

    def snapshot(self) -> dict:
        with self._lock:
            return {name: {n: v.state for n, v in versions.items()} for name, versions in self._models.items()}
