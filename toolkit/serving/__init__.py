"""Serving exported SavedModels: a TensorFlow Serving work-alike (REST + gRPC), batching, versions, web page.

- `ModelRepository`: `<base>/<name>/<version>/` folders, loaded, smoke-tested, polled, swapped, unloaded.
- `Server`: REST (FastAPI + uvicorn) and gRPC (tensorflow-serving-api protos) on loopback by default.
- `Client`: a small REST client (`Client("http://127.0.0.1:8501").predict("fashion", instances=[...])`).

Submodules are imported lazily: `from toolkit.serving import Client` does not import TensorFlow.
"""

from __future__ import annotations

from toolkit.lazy import lazy_exports

_EXPORTS = {
    "Client": "toolkit.serving.client",
    "ServingError": "toolkit.serving.client",
    "Batcher": "toolkit.serving.batcher",
    "ModelRepository": "toolkit.serving.repository",
    "NotFoundError": "toolkit.serving.repository",
    "Server": "toolkit.serving.server",
    "Metrics": "toolkit.serving.metrics",
    "create_app": "toolkit.serving.rest",
    "RequestError": "toolkit.serving.codec",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
