"""Run directories: one folder per training run (config, status, history, logs, checkpoints, plots, model).

Re-running the same training (same app, options and data) after a crash or kill finds the unfinished run
directory and resumes it; `resume="RUN_DIR"` names one explicitly; `resume="never"` always starts fresh.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os

import numpy as np

from toolkit.training.fault_tolerance import is_resumable, read_json

# Options that do not change what is trained (so they do not block resuming).
_NEUTRAL = {"run_dir", "verbose", "resume", "strategy", "monitor_every"}


def describe_data(data) -> str | None:
    """A stable description of a data source and its content (None when it cannot be fingerprinted, e.g.
    tf.data). Files and folders are described cheaply by their file list, sizes and modification times, so
    adding a class folder or editing a file changes the description; arrays by a hash of their bytes."""
    if isinstance(data, (str, os.PathLike)):
        text = str(data)
        if text.startswith("tfds:") or not os.path.exists(text):
            return text
        return f"{os.path.abspath(text)}#{_content_signature(text)}"
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        digest = hashlib.sha1()
        for part in data[:2]:
            array = np.ascontiguousarray(part)
            digest.update(str((array.shape, array.dtype.str)).encode())
            digest.update(array.tobytes())
        if len(data) == 3:
            digest.update(json.dumps(list(data[2])).encode())
        return "arrays:" + digest.hexdigest()
    if isinstance(data, dict):  # apps whose data is a dict of arrays / paths
        return "dict:" + hashlib.sha1(repr(sorted((k, describe_data(v)) for k, v in data.items())).encode()).hexdigest()
    return None


def _content_signature(path: str) -> str:
    digest = hashlib.sha1()
    if os.path.isfile(path):
        stat = os.stat(path)
        digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            try:
                stat = os.stat(full)
            except OSError:
                continue
            digest.update(f"{os.path.relpath(full, path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _sha(value) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint_parts(app_name: str, config, data, test_data=None) -> dict | None:
    """`{"options", "data", "test_data"}` hashes of a training call (None when the data can't be described)."""
    source = describe_data(data)
    if source is None:
        return None
    options = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NEUTRAL}
    return {"options": _sha([app_name, options]), "data": _sha(source),
            "test_data": _sha(describe_data(test_data) if test_data is not None else None)}


def fingerprint(app_name: str, config, data, test_data=None) -> str | None:
    """One hash of the app, the options that change training, and the data's content."""
    parts = fingerprint_parts(app_name, config, data, test_data)
    return None if parts is None else _sha(parts)


def worker_suffix() -> str:
    """Non-chief multi-worker replicas write into their own sub-folder (Keras' multi-worker convention)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task") or {}
    if task.get("type") in (None, "chief") or (task.get("type") == "worker" and task.get("index", 0) == 0
                                                 and "chief" not in config.get("cluster", {})):
        return ""
    return f"{task.get('type')}-{task.get('index', 0)}"


def is_chief() -> bool:
    return worker_suffix() == ""


def resolve_run_dir(app_name: str, config, print_fn=print, key: str | None = None, parts: dict | None = None) -> tuple:
    """Returns `(run_dir, resumed)`: an explicit resume dir, an unfinished run with the same fingerprint, or new.

    A run that failed while reading its data is never resumed (nothing was trained). When the newest unfinished
    run differs only in its options or its data's content, the reason for starting fresh is printed."""
    root = os.path.join(config.run_dir, app_name)
    if config.resume not in ("auto", "never", ""):
        if not os.path.isfile(os.path.join(config.resume, "status.json")):
            raise FileNotFoundError(f"resume: {config.resume!r} is not a run directory (no status.json)")
        if read_json(os.path.join(config.resume, "status.json"))["status"] == "finished":
            raise ValueError(f"resume: run {config.resume!r} already finished; nothing to resume")
        return _with_worker(config.resume), True
    if config.resume == "auto" and key is not None and os.path.isdir(root):
        mismatch = None
        for name in sorted(os.listdir(root), reverse=True):
            candidate = os.path.join(root, name)
            status = read_json(os.path.join(candidate, "status.json"))
            if not status or status.get("stage") == "data" or not is_resumable(candidate):
                continue
            if status.get("fingerprint") == key:
                print_fn(f"resume: found unfinished run {candidate} with the same options and data; continuing it "
                         "(pass resume='never' / --resume never to start fresh)")
                return _with_worker(candidate), True
            if mismatch is None and parts and status.get("parts"):
                changed = [part.replace("_", " ") for part in ("options", "data", "test_data")
                           if status["parts"].get(part) != parts.get(part)]
                mismatch = (candidate, changed)
        if mismatch:
            print_fn(f"resume: not continuing unfinished run {mismatch[0]}: its {' and '.join(mismatch[1])} "
                     "changed since; starting a fresh run")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return _with_worker(os.path.join(root, stamp)), False


def _with_worker(path: str) -> str:
    suffix = worker_suffix()
    path = os.path.join(path, suffix) if suffix else path
    os.makedirs(path, exist_ok=True)
    return path


def list_runs(root: str = "runs") -> list:
    """Every run directory under `root` (`root/<app>/<run>/`) with its status and headline metrics (and, from
    status.json, a failed run's `reason` and `stage`, a finished run's `note`)."""
    rows = []
    if not os.path.isdir(root):
        return rows
    for app in sorted(os.listdir(root)):
        app_dir = os.path.join(root, app)
        if not os.path.isdir(app_dir):
            continue
        for name in sorted(os.listdir(app_dir)):
            path = os.path.join(app_dir, name)
            status = read_json(os.path.join(path, "status.json")) or {}
            metrics = read_json(os.path.join(path, "metrics.json")) or {}
            headline = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            rows.append({"app": app, "run": name, "path": path, "status": status.get("status", "unknown"),
                         "reason": status.get("reason", ""), "stage": status.get("stage", ""),
                         "note": status.get("note", ""), "metrics": dict(list(headline.items())[:3])})
    return rows
