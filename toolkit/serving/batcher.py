"""Server-side batching: concurrent requests to one model signature are merged into one call.

Hand-written because TF Serving's batching (`BatchingSession`) is C++ inside the model server and has no
Python API. It takes TF Serving's knobs (`BatchingOptions`, or a `--batching-parameters-file`):
- `max_batch_size`: most rows per merged call; `allowed_batch_sizes`: calls are padded (last row repeated)
  up to one of these (default: powers of two up to `max_batch_size`), so kernels see a few shapes;
- `batch_timeout_micros`: longest a batch waits for batch-mates. Adaptive: the wait applies only when the
  previous batch had company (concurrent load); a lone client is never delayed by the timer;
- `num_batch_threads`: batches run concurrently on this many threads (one gathers while others compute);
- `max_enqueued_batches`: queued rows beyond `max_enqueued_batches * max_batch_size` are refused at once
  with `QueueFull` (HTTP 503 / gRPC UNAVAILABLE), as TF Serving does, instead of queueing without bound.
Only requests with the same trailing input shapes are merged; inputs are validated before they queue. A
request whose future was cancelled (client gone, REST timeout) or whose deadline passed before its batch
started is dropped, not computed. If a merged call fails (one image that does not decode, ...), every
request of that batch is retried alone, so one bad request never fails its batch-mates.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import threading
import time
from typing import Callable

import numpy as np

from toolkit.serving.limits import LimitError

logger = logging.getLogger(__name__)


class QueueFull(LimitError):
    """The batching queue is full (HTTP 503, gRPC UNAVAILABLE)."""

    def __init__(self, message: str):
        super().__init__(message, 503, "UNAVAILABLE")


class DeadlineExceeded(LimitError):
    """The request's deadline passed before its model call started (HTTP 504, gRPC DEADLINE_EXCEEDED)."""

    def __init__(self, message: str):
        super().__init__(message, 504, "DEADLINE_EXCEEDED")


def _powers_of_two(limit: int) -> list:
    sizes, size = [], 1
    while size < limit:
        sizes.append(size)
        size *= 2
    return sizes + [limit]


@dataclasses.dataclass
class BatchingOptions:
    """TF Serving's `BatchingParameters` (session_bundle_config.proto), with this server's defaults.

    Examples:
    >>> BatchingOptions.from_text('max_batch_size { value: 16 } allowed_batch_sizes: 4 allowed_batch_sizes: 16')
    BatchingOptions(max_batch_size=16, batch_timeout_micros=2000, num_batch_threads=1, allowed_batch_sizes=(4, 16), max_enqueued_batches=64)
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 1
    allowed_batch_sizes: tuple = ()
    max_enqueued_batches: int = 64

    def __post_init__(self):
        self.allowed_batch_sizes = tuple(int(s) for s in self.allowed_batch_sizes or ())
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1. Received: {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batch_timeout_micros must be >= 0. Received: {self.batch_timeout_micros}")
        sizes = self.allowed_batch_sizes
        if sizes and (list(sizes) != sorted(set(sizes)) or sizes[0] < 1 or sizes[-1] != self.max_batch_size):
            raise ValueError(f"allowed_batch_sizes must increase and end with max_batch_size "
                             f"({self.max_batch_size}), as in TF Serving. Received: {list(sizes)}")

    @classmethod
    def from_text(cls, text: str, **defaults) -> "BatchingOptions":
        """Parses TF Serving's `--batching_parameters_file` text proto (`BatchingParameters`); fields this
        server has no use for (`thread_pool_name`, `pad_variable_length_inputs`, ...) are accepted and ignored."""
        from google.protobuf import text_format

        proto = _batching_parameters_class()()
        try:
            text_format.Parse(text, proto, allow_unknown_field=True)
        except text_format.ParseError as error:
            raise ValueError(f"batching parameters: {error}") from None
        values = dict(defaults)
        for name in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"):
            if proto.HasField(name):
                values[name] = getattr(proto, name).value
        if proto.allowed_batch_sizes:
            values["allowed_batch_sizes"] = tuple(proto.allowed_batch_sizes)
        return cls(**values)


def _batching_parameters_class():
    """`tensorflow.serving.BatchingParameters`: from tensorflow_serving when it ships the servables protos
    (the model server's source tree does; the tensorflow-serving-api wheel does not), else the same message
    (the fields of session_bundle_config.proto this server reads) built from a descriptor."""
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2

        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        pass
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    file = descriptor_pb2.FileDescriptorProto(name="toolkit/batching_parameters.proto", package="tensorflow.serving",
                                              dependency=["google/protobuf/wrappers.proto"], syntax="proto3")
    message = file.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for number, (name, kind) in enumerate([
            ("max_batch_size", "Int64Value"), ("batch_timeout_micros", "Int64Value"),
            ("max_enqueued_batches", "Int64Value"), ("num_batch_threads", "Int64Value"),
            ("thread_pool_name", "StringValue"), ("allowed_batch_sizes", None),
            ("pad_variable_length_inputs", "bool"), ("enable_large_batch_splitting", "bool"),
            ("max_execution_batch_size", "Int64Value")], start=1):
        if kind is None:
            message.field.add(name=name, number=number, label=field.LABEL_REPEATED, type=field.TYPE_INT64)
        elif kind == "bool":
            message.field.add(name=name, number=number, label=field.LABEL_OPTIONAL, type=field.TYPE_BOOL)
        else:
            message.field.add(name=name, number=number, label=field.LABEL_OPTIONAL, type=field.TYPE_MESSAGE,
                              type_name=f".google.protobuf.{kind}")
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def batch_rows(arrays: dict) -> int | None:
    """The shared 0-th dimension of `arrays`, or None when they have none (a scalar, different lengths)."""
    sizes = {int(v.shape[0]) if np.ndim(v) else None for v in arrays.values()}
    return sizes.pop() if len(sizes) == 1 else None


class _Item:
    __slots__ = ("arrays", "rows", "future", "key", "deadline", "queued")

    def __init__(self, arrays: dict, deadline: float | None):
        self.arrays = arrays
        rows = batch_rows(arrays)
        self.rows = 1 if rows is None else rows
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        # inputs without one shared 0-th dimension (scalars, columns of different lengths) run alone, unpadded
        self.key = (tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(arrays.items())) if rows is not None
                    else ("alone", id(self)))
        self.deadline, self.queued = deadline, time.monotonic()


class Batcher:
    """Merges concurrent calls of `fn(arrays) -> outputs` (dicts of numpy arrays, batch-major).

    Args:
        fn: the model call; takes and returns `{name: array}` with rows on axis 0.
        max_batch_size, allowed_batch_sizes, num_batch_threads, max_enqueued_batches: as in `BatchingOptions`.
        max_wait_ms: longest a batch waits for more rows under concurrent load (`batch_timeout_micros` / 1000).
        on_batch: optional `callback(rows)` after each model call (metrics).
        on_queue: optional `callback(queued_rows)` when the queue changes (metrics).
        pad: pad calls up to an allowed batch size (off for a one-row "batcher" of unbatched calls).

    Examples:
    >>> b = Batcher(lambda a: {"y": a["x"] * 2}, max_batch_size=8)
    >>> b.submit({"x": np.array([1, 2])}).result()["y"].tolist()
    [2, 4]
    >>> b.close()
    """

    def __init__(self, fn: Callable, max_batch_size: int = 32, max_wait_ms: float = 2.0,
                 on_batch: Callable | None = None, name: str = "batcher", allowed_batch_sizes=None,
                 num_batch_threads: int = 1, max_enqueued_batches: int | None = None,
                 on_queue: Callable | None = None, pad: bool = True):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1. Received: {max_batch_size}")
        self.fn, self.max_batch_size, self.max_wait = fn, int(max_batch_size), max(0.0, max_wait_ms) / 1000.0
        self.allowed = sorted(set(allowed_batch_sizes or _powers_of_two(self.max_batch_size))) if pad else []
        self.max_rows = None if not max_enqueued_batches else int(max_enqueued_batches) * self.max_batch_size
        self.name, self.on_batch, self.on_queue = name, on_batch, on_queue
        self._queue: collections.deque = collections.deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        self._gather = threading.Lock()  # one thread gathers a batch at a time; others compute
        self._company = False
        self._closed = False
        self._active = 0  # model calls in progress (workers and inline callers)
        self._slots = max(1, int(num_batch_threads))
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, int(num_batch_threads)))]
        for thread in self._threads:
            thread.start()

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def submit(self, arrays: dict, deadline: float | None = None) -> concurrent.futures.Future:
        """Queues one request; the future gives its outputs (only its rows) or its exception.

        Args:
            arrays: validated inputs, rows on axis 0.
            deadline: `time.monotonic()` after which the request is dropped if its call has not started.
        Raises QueueFull when `max_enqueued_batches` batches are already waiting, RuntimeError once closed.
        """
        item = _Item(arrays, deadline)
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed (server shutting down)")
            if self.max_rows is not None and self._queued_rows and self._queued_rows + item.rows > self.max_rows:
                raise QueueFull(f"the batching queue of {self.name} is full ({self._queued_rows} rows waiting; "
                                f"max_enqueued_batches={self.max_rows // self.max_batch_size} of "
                                f"max_batch_size={self.max_batch_size}); retry later")
            self._queue.append(item)
            self._queued_rows += item.rows
            depth = self._queued_rows
            self._cond.notify()
        if self.on_queue:
            self.on_queue(depth)
        return item.future

    def run_inline_if_idle(self, arrays: dict):
        """For callers on their own thread (gRPC): when nothing is queued or running, makes the call here and
        returns its outputs (no hand-off to a worker: lower latency for a lone client); otherwise None (then
        `submit`). Calls that arrive meanwhile queue and are batched as usual."""
        with self._cond:
            if self._queue or self._active or self._closed:
                return None
            self._active += 1
        try:
            outputs = self._padded_call(arrays)
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()
        if self.on_batch:
            self.on_batch(batch_rows(arrays) or 1)
        return outputs

    def close(self, timeout: float = 10.0) -> None:
        """Finishes what is queued, then stops the workers (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    # ---- workers ----------------------------------------------------------------------------------
    def _pop(self):
        """The queue head if it is still wanted (not cancelled, deadline not passed), else None. Holds _cond."""
        item = self._queue.popleft()
        self._queued_rows -= item.rows
        if not item.future.set_running_or_notify_cancel():
            return None
        if item.deadline is not None and time.monotonic() > item.deadline:
            item.future.set_exception(DeadlineExceeded(
                f"the request's deadline passed after {time.monotonic() - item.queued:.3f} s in the queue of {self.name}"))
            return None
        return item

    def _take(self):
        """Blocks for the next batch; None once closed and drained."""
        with self._gather, self._cond:
            first = None
            while first is None:
                # wait for work, and for a free slot: an inline call counts against num_batch_threads
                while not self._queue or self._active >= self._slots:
                    if self._closed and not self._queue:
                        return None
                    self._cond.wait()
                first = self._pop()
            batch, rows = [first], first.rows
            deadline = time.monotonic() + (self.max_wait if self._company else 0.0)
            while rows < self.max_batch_size:
                if not self._queue:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._closed:
                        break
                    self._cond.wait(remaining)
                    continue
                head = self._queue[0]
                if head.key != first.key or rows + head.rows > self.max_batch_size:
                    break  # starts the next batch
                item = self._pop()
                if item is not None:
                    batch.append(item)
                    rows += item.rows
            self._company = len(batch) > 1 or bool(self._queue)
            self._active += 1
            depth = self._queued_rows
        if self.on_queue:
            self.on_queue(depth)
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._run(batch)
            except Exception as error:  # noqa: BLE001 - never lose a worker; deliver the error
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
            finally:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

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
        rows = batch_rows(arrays)
        if rows is None:
            return self.fn(arrays)
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
