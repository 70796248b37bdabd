"""Prometheus metrics of the server (prometheus_client, one registry per server).

Exposed at `/monitoring/prometheus/metrics` (TF Serving's path) and `/metrics`:
- `toolkit_serving_requests_total{api,model,method,code}` and `toolkit_serving_request_latency_seconds` (histogram);
- `toolkit_serving_batch_size` (histogram of rows per model call) and `toolkit_serving_queue_rows` (rows waiting
  for a model call, per model and signature: the batching queue depth);
- `toolkit_serving_model_versions{model,state}` and `toolkit_serving_load_failures_total`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401 - re-exported for the REST front end

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """Request counts, latency histogram, batch sizes and loaded versions.

    Examples:
    >>> m = Metrics()
    >>> m.request("rest", "fashion", "predict", 200, 0.003)
    >>> b"toolkit_serving_requests_total" in m.render()
    True
    """

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("toolkit_serving_requests", "Requests by front end, model, method and status code.",
                                ["api", "model", "method", "code"], registry=self.registry)
        self.latency = Histogram("toolkit_serving_request_latency_seconds", "Request latency (seconds).",
                                 ["api", "model", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("toolkit_serving_batch_size", "Rows per model call (merged batches).",
                                    ["model", "signature"], buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_rows = Gauge("toolkit_serving_queue_rows", "Rows waiting for a model call (queue depth).",
                                ["model", "signature"], registry=self.registry)
        self.loaded = Gauge("toolkit_serving_model_versions", "Model versions by state.", ["model", "state"],
                            registry=self.registry)
        self.load_failures = Counter("toolkit_serving_load_failures", "Model versions that failed to load.",
                                     ["model"], registry=self.registry)

    def request(self, api: str, model: str, method: str, code, seconds: float) -> None:
        self.requests.labels(api, model, method, str(code)).inc()
        self.latency.labels(api, model, method).observe(seconds)

    def batch(self, model: str, signature: str, rows: int) -> None:
        self.batch_size.labels(model, signature).observe(rows)

    def queue(self, model: str, signature: str, rows: int) -> None:
        self.queue_rows.labels(model, signature).set(rows)

    def load_failed(self, model: str) -> None:
        self.load_failures.labels(model).inc()

    def set_loaded(self, snapshot: dict) -> None:
        """`{model: {version: state}}` -> the versions gauge."""
        self.loaded.clear()
        for model, versions in snapshot.items():
            counts: dict = {}
            for state in versions.values():
                counts[state] = counts.get(state, 0) + 1
            for state, count in counts.items():
                self.loaded.labels(model, state).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
