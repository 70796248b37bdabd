"""Where a validated request goes: the version's batcher (TF Serving's knobs) or its unbatched call queue.

Both are `Batcher`s kept on the `Version` (so unloading a version drains and stops them): a batching one
with `BatchingOptions`, or a one-row one whose `workers` threads call the model per request. Both bound
their queue (503 when full) and drop requests that were cancelled or whose deadline passed before their
call started, so a timed-out request costs no model time.
"""

from __future__ import annotations

import threading

from toolkit.serving.batcher import Batcher, BatchingOptions
from toolkit.serving.repository import NotFoundError


class Dispatcher:
    """Submits requests for a `ModelRepository`'s versions.

    Args:
        repository: the started repository (versions decide `batching`; its `metrics` are recorded into).
        options: `BatchingOptions` for batched versions (static-batch exports use their own batch size).
        workers: threads per (version, signature) for unbatched calls.
        max_enqueued: most requests waiting per (version, signature) when unbatched (503 beyond).
    """

    def __init__(self, repository, options: BatchingOptions | None = None, workers: int = 4,
                 max_enqueued: int = 1024):
        self.repository, self.options = repository, options or BatchingOptions()
        self.workers, self.max_enqueued = workers, max_enqueued
        self._lock = threading.Lock()

    def submit(self, entry, signature: str | None, arrays: dict, deadline: float | None = None):
        """Queues a call on `entry`; RuntimeError if it was unloaded since the lookup (take the new one)."""
        return self.batcher(entry, signature).submit(arrays, deadline)

    def run_inline_if_idle(self, entry, signature: str | None, arrays: dict):
        """Outputs of a call made on the calling thread when `entry`'s queue is idle, else None (see
        `Batcher.run_inline_if_idle`); RuntimeError if the version was unloaded."""
        return self.batcher(entry, signature).run_inline_if_idle(arrays)

    def batcher(self, entry, signature: str | None):
        """The `Batcher` of (version, signature), made on first use."""
        servable = entry.servable
        if servable is None or entry.state != "AVAILABLE":
            raise RuntimeError("unloaded")
        signature = signature or "serving_default"
        key = ("batched" if entry.batching else "direct", signature)
        batcher = entry.batchers.get(key)
        if batcher is None:
            with self._lock:
                batcher = entry.batchers.get(key)
                if batcher is None:
                    batcher = self._make(entry, servable, signature)
                    entry.batchers[key] = batcher
            if entry.state != "AVAILABLE":  # unloaded while we made it: Version.close may not have seen it
                batcher.close()
                raise RuntimeError("unloaded")
        return batcher

    def predict(self, name: str, version, signature: str | None, arrays: dict, deadline=None, lookup=None):
        """Looks up the version (`lookup()` or `repository.get`) and queues; retries across a swap."""
        for _attempt in range(3):
            entry = lookup() if lookup else self.repository.get(name, version)
            try:
                return entry, self.submit(entry, signature, arrays, deadline)
            except RuntimeError:
                continue
        raise NotFoundError(f"Servable not found for request: {name} (being swapped, retry)")

    def _make(self, entry, servable, signature: str) -> Batcher:
        metrics = self.repository.metrics
        on_batch = on_queue = None
        if metrics:
            def on_batch(rows, n=entry.name, s=signature):
                metrics.batch(n, s, rows)

            def on_queue(depth, n=entry.name, s=signature):
                metrics.queue(n, s, depth)
        name = f"{entry.name}/{entry.number}/{signature}"

        def call(arrays, s=servable, sig=signature):
            return s.run(sig, arrays)

        if not entry.batching:
            return Batcher(call, max_batch_size=1, max_wait_ms=0, on_batch=on_batch, on_queue=on_queue,
                           name=f"call {name}", num_batch_threads=self.workers, pad=False,
                           max_enqueued_batches=self.max_enqueued)
        o = self.options
        static = servable.batch_size
        return Batcher(call, max_batch_size=static or o.max_batch_size, max_wait_ms=o.batch_timeout_micros / 1000.0,
                       on_batch=on_batch, on_queue=on_queue, name=f"batch {name}",
                       allowed_batch_sizes=[static] if static else (o.allowed_batch_sizes or None),
                       num_batch_threads=o.num_batch_threads, max_enqueued_batches=o.max_enqueued_batches)
