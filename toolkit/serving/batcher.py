"""Server-side batching: concurrent requests to one model signature are merged into one call.

Hand-written because TF Serving's batching (`BatchingSession`) is C++ inside the model server and has no
Python API. Behaviour:
- requests queue per (model version, signature); one worker thread takes whatever is queued, up to
  `max_batch_size` rows, concatenates the inputs, makes one call and splits the outputs back by rows;
- adaptive wait: the worker waits up to `max_wait_ms` for batch-mates only when the previous batch had
  company (concurrent load); a lone client is never delayed by the timer;
- only requests with the same trailing input shapes are merged; inputs are validated before they queue;
- if a merged call fails (one image that does not decode, ...), every request of that batch is retried
  alone, so one bad request never fails its batch-mates: each gets its own result or its own error.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from typing import Callable

import numpy as np

logger = logging.getLogger(__name__)


def _powers_of_two(limit: int) -> list:
    sizes, size = [], 1
    while size < limit:
        sizes.append(size)
        size *= 2
    return sizes + [limit]


class _Item:
    __slots__ = ("arrays", "rows", "future", "key")

    def __init__(self, arrays: dict):
        self.arrays = arrays
        self.rows = int(len(next(iter(arrays.values()))))
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.key = tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(arrays.items()))


class Batcher:
    """Merges concurrent calls of `fn(arrays) -> outputs` (dicts of numpy arrays, batch-major).

    Args:
        fn: the model call; takes and returns `{name: array}` with rows on axis 0.
        max_batch_size: most rows per merged call.
        max_wait_ms: longest a batch waits for more rows under concurrent load.
        on_batch: optional `callback(rows)` after each merged call (metrics).

    Examples:
    >>> b = Batcher(lambda a: {"y": a["x"] * 2}, max_batch_size=8)
    >>> b.submit({"x": np.array([1, 2])}).result()["y"].tolist()
    [2, 4]
    >>> b.close()
    """

    def __init__(self, fn: Callable, max_batch_size: int = 32, max_wait_ms: float = 2.0,
                 on_batch: Callable | None = None, name: str = "batcher", allowed_batch_sizes=None):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1. Received: {max_batch_size}")
        self.fn, self.max_batch_size, self.max_wait = fn, int(max_batch_size), max(0.0, max_wait_ms) / 1000.0
        # Like TF Serving's `allowed_batch_sizes`: calls are padded (last row repeated) up to one of a few
        # sizes, so the kernels see a handful of shapes (each new shape costs oneDNN a new primitive).
        self.allowed = sorted(set(allowed_batch_sizes or _powers_of_two(self.max_batch_size)))
        self.on_batch = on_batch
        self._queue: queue.Queue = queue.Queue()
        self._held: _Item | None = None
        self._company = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, arrays: dict) -> concurrent.futures.Future:
        """Queues one request; the future gives its outputs (only its rows) or its exception."""
        if self._closed:
            raise RuntimeError("the batcher is closed (server shutting down)")
        item = _Item(arrays)
        self._queue.put(item)
        return item.future

    def close(self, timeout: float = 10.0) -> None:
        """Finishes what is queued, then stops the worker."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _next(self, timeout=None):
        if self._held is not None:
            item, self._held = self._held, None
            return item
        try:
            return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return False

    def _loop(self) -> None:
        while True:
            first = self._next()
            if first is None:
                return
            batch, rows = [first], first.rows
            deadline = time.monotonic() + (self.max_wait if self._company else 0.0)
            stop = False
            while rows < self.max_batch_size:
                item = self._next(max(0.0, deadline - time.monotonic()))
                if item is False:
                    break
                if item is None:
                    stop = True
                    break
                if item.key != first.key or rows + item.rows > self.max_batch_size:
                    self._held = item  # starts the next batch
                    break
                batch.append(item)
                rows += item.rows
            self._company = len(batch) > 1 or self._held is not None or not self._queue.empty()
            self._run(batch)
            if stop:
                while self._held is not None or not self._queue.empty():  # drain what is left
                    item = self._next(0)
                    if item not in (None, False):
                        self._run([item])
                return

    def _run(self, batch: list) -> None:
        if len(batch) == 1:
            self._call_one(batch[0])
            return
        try:
            merged = {k: np.concatenate([item.arrays[k] for item in batch]) for k in batch[0].arrays}
            outputs = self._padded_call(merged)
            total = sum(item.rows for item in batch)
            if any(np.ndim(v) == 0 or len(v) != total for v in outputs.values()):
                raise ValueError("outputs are not batch-major; cannot split them per request")
        except Exception as error:  # noqa: BLE001 - isolate the bad request(s): retry each alone
            logger.info("merged call of %d requests failed (%s); retrying each alone", len(batch), error)
            for item in batch:
                self._call_one(item)
            return
        if self.on_batch:
            self.on_batch(total)
        start = 0
        for item in batch:
            item.future.set_result({k: v[start:start + item.rows] for k, v in outputs.items()})
            start += item.rows

    def _padded_call(self, arrays: dict) -> dict:
        rows = len(next(iter(arrays.values())))
        size = next((a for a in self.allowed if a >= rows), rows)
        if size == rows:
            return self.fn(arrays)
        padded = {k: np.concatenate([v, np.repeat(v[-1:], size - rows, axis=0)]) for k, v in arrays.items()}
        outputs = self.fn(padded)
        return {k: (v[:rows] if np.ndim(v) and len(v) == size else v) for k, v in outputs.items()}

    def _call_one(self, item: _Item) -> None:
        try:
            outputs = self._padded_call(item.arrays)
        except Exception as error:  # noqa: BLE001 - delivered to the caller, who maps it to a 4xx/5xx
            item.future.set_exception(error)
            return
        if self.on_batch:
            self.on_batch(item.rows)
        item.future.set_result(outputs)
