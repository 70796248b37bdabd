"""The server process: repository + REST (uvicorn) + gRPC, started together, stopped gracefully."""

from __future__ import annotations

import logging
import signal
import socket
import threading

from toolkit.serving.batcher import BatchingOptions
from toolkit.serving.limits import Limits
from toolkit.serving.metrics import Metrics
from toolkit.serving.repository import ModelRepository

logger = logging.getLogger(__name__)


class Server:
    """TF Serving work-alike: REST on `rest_port`, gRPC on `grpc_port`, both on `host` (loopback by default).

    Args:
        repository: a `ModelRepository` (started by `start`).
        host: address to bind; `127.0.0.1` unless you mean to expose the server (then set `auth_token`).
        rest_port: REST port (0 picks a free one; see `.rest_port` after `start`).
        grpc_port: gRPC port (0 picks a free one; None disables gRPC).
        auth_token: bearer token required by `/v1/...`, metrics and gRPC calls.
        max_body_bytes: REST request body limit (413 beyond it; overrides `limits.max_body_bytes`).
        grace_s: seconds in-flight requests get to finish on shutdown.
        limits: per-request `Limits` (body, JSON depth, image pixels, timeouts, connections, allowed hosts).
        batching: `BatchingOptions` (TF Serving's knobs) for versions the repository batches.
        workers: threads per model signature for unbatched calls.

    Examples:
    >>> import httpx
    >>> from toolkit.export import export
    >>> _ = export(keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)]), "savedmodels/tiny")
    >>> server = Server(ModelRepository("savedmodels"), rest_port=0, grpc_port=0).start()   # free ports
    >>> server.url
    'http://127.0.0.1:...'
    >>> httpx.get(server.url + "/v1/models/tiny").json()["model_version_status"][0]["state"]
    'AVAILABLE'
    >>> server.grpc_port > 0
    True
    >>> server.stop()
    """

    def __init__(self, repository: ModelRepository, host: str = "127.0.0.1", rest_port: int = 8501,
                 grpc_port: int | None = 8500, auth_token: str | None = None,
                 max_body_bytes: int | None = None, grace_s: float = 10.0, limits: Limits | None = None,
                 batching: BatchingOptions | None = None, workers: int = 4):
        import dataclasses

        from toolkit.serving.dispatch import Dispatcher

        self.repository, self.host = repository, host
        self.metrics = repository.metrics = repository.metrics or Metrics()
        self.rest_port, self.grpc_port = rest_port, grpc_port
        self.limits = dataclasses.replace(limits or Limits(), **({"max_body_bytes": max_body_bytes} if max_body_bytes else {}))
        self.auth_token, self.max_body_bytes, self.grace_s = auth_token, self.limits.max_body_bytes, grace_s
        self.dispatcher = Dispatcher(repository, batching, workers=workers)
        self._uvicorn = None
        self._thread: threading.Thread | None = None
        self._grpc = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.rest_port}"

    def _prepare(self):
        import uvicorn

        from toolkit.serving.rest import create_app

        self.repository.start()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP; without it,
        # Nagle + delayed ACKs add ~40 ms to every keep-alive request.
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.host, self.rest_port))
        self.rest_port = self._socket.getsockname()[1]
        if self.grpc_port is not None:
            from toolkit.serving.grpc_server import create_grpc_server

            address = f"[{self.host}]:{self.grpc_port}" if ":" in self.host else f"{self.host}:{self.grpc_port}"
            self._grpc, self.grpc_port = create_grpc_server(
                self.repository, address, self.auth_token, max_message_bytes=max(self.max_body_bytes, 4 * 1024 * 1024),
                limits=self.limits, dispatcher=self.dispatcher)
            self._grpc.start()
        from toolkit.serving.http_protocol import guarded_protocol

        self._app = create_app(self.repository, self.metrics, self.auth_token, limits=self.limits,
                               dispatcher=self.dispatcher, host=self.host)
        limits = self.limits
        config = uvicorn.Config(self._app, log_level="warning", access_log=False, timeout_graceful_shutdown=self.grace_s,
                                lifespan="off", backlog=1024, timeout_keep_alive=limits.idle_timeout_s,
                                limit_concurrency=limits.max_connections,
                                http=guarded_protocol(limits.header_timeout_s, limits.body_timeout_s,
                                                      limits.max_header_bytes))
        self._uvicorn = uvicorn.Server(config)
        logger.info("serving REST on %s, gRPC on port %s, models %s", self.url, self.grpc_port, self.repository.names())

    def start(self) -> "Server":
        """Starts in background threads (for tests and embedding); returns self once it accepts requests."""
        self._prepare()
        self._thread = threading.Thread(target=self._uvicorn.run, kwargs={"sockets": [self._socket]},
                                        name="rest-server", daemon=True)
        self._thread.start()
        while not self._uvicorn.started and self._thread.is_alive():
            threading.Event().wait(0.02)
        if not self._uvicorn.started:
            raise RuntimeError("the REST server failed to start")
        return self

    def serve_forever(self, ready=None) -> None:
        """Runs in the calling (main) thread until SIGINT/SIGTERM, then shuts down gracefully.

        Args:
            ready: optional `callback(server)` once both front ends accept requests.
        """
        self._prepare()
        if ready is not None:
            def announce():
                while not self._uvicorn.started and not self._uvicorn.should_exit:
                    threading.Event().wait(0.02)
                if self._uvicorn.started:
                    ready(self)
            threading.Thread(target=announce, daemon=True).start()
        # uvicorn handles SIGINT/SIGTERM (stop accepting, drain in-flight requests) and re-raises the signal
        # to the handler that was there before; a no-op one lets us then stop gRPC and unload the models.
        previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._uvicorn.run(sockets=[self._socket])
        finally:
            self._shutdown_rest_of()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        """Graceful stop: no new connections, in-flight requests finish (up to `grace_s`), models unload."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(self.grace_s + 5)
        self._shutdown_rest_of()

    def _shutdown_rest_of(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(self.grace_s).wait()
            self._grpc = None
        self.repository.close()
        if getattr(self, "_app", None) is not None:
            self._app.close()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        logger.info("server stopped")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
