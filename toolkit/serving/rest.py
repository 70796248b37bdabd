"""The REST front end (FastAPI): TF Serving's `/v1/models/...` API, metrics, and the web page at `/`.

Endpoints (as TF Serving documents them):
- `GET  /v1/models/NAME[/versions/N]`: version status (state, error code and message);
- `GET  /v1/models/NAME[/versions/N]/metadata`: SignatureDefs, plus `metadata.toolkit` (labels, task, ...);
- `POST /v1/models/NAME[/versions/N]:predict`: `{"instances": ...}` or `{"inputs": ...}`, `signature_name`;
- errors are `{"error": "..."}` with 400 (bad request), 401 (token), 404 (unknown model/version/route),
  413 (body too large), 500 (model failure).
Extensions: `GET /v1/models` (list), `GET /monitoring/prometheus/metrics` (also `/metrics`), `GET /`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from toolkit.serving.codec import RequestError, format_response, parse_request
from toolkit.serving.metrics import CONTENT_TYPE_LATEST, Metrics
from toolkit.serving.protos import metadata_json, status_response, to_json
from toolkit.serving.repository import ModelRepository, NotFoundError

logger = logging.getLogger(__name__)


class PayloadTooLarge(Exception):
    pass


class Unauthorized(Exception):
    pass


def _tf_error_message(error) -> str:
    from toolkit.serving.servable import describe_error

    return describe_error(error)


def _error_status(error) -> tuple[int, str]:
    """Exception -> (HTTP status, message) for the `{"error": ...}` body."""
    import tensorflow as tf

    if isinstance(error, (RequestError, tf.errors.InvalidArgumentError)):
        return 400, _tf_error_message(error)
    if isinstance(error, NotFoundError):
        return 404, str(error)
    if isinstance(error, PayloadTooLarge):
        return 413, str(error)
    if isinstance(error, Unauthorized):
        return 401, str(error)
    if isinstance(error, ValueError):  # invalid model name / version
        return 400, str(error)
    logger.exception("prediction failed", exc_info=error)
    return 500, f"{type(error).__name__}: {_tf_error_message(error)}"


def create_app(repository: ModelRepository, metrics: Metrics | None = None, auth_token: str | None = None,
               max_body_bytes: int = 16 * 1024 * 1024) -> FastAPI:
    """The FastAPI application serving `repository`.

    Args:
        repository: a started `ModelRepository`.
        metrics: the `Metrics` to record into and expose (default: a new one).
        auth_token: when set, `/v1/...` and metrics need `Authorization: Bearer <token>`.
        max_body_bytes: larger request bodies get 413.
    """
    metrics = metrics or repository.metrics or Metrics()
    app = FastAPI(title="toolkit serving", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.repository, app.state.metrics = repository, metrics

    def check_auth(request: Request) -> None:
        if not auth_token:
            return
        header = request.headers.get("authorization", "")
        if not (header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), auth_token.encode())):
            raise Unauthorized("missing or wrong bearer token (send 'Authorization: Bearer <token>')")

    def error_response(error, name="-", method="-", started=None) -> JSONResponse:
        code, message = _error_status(error)
        if started is not None:
            metrics.request("rest", name, method, code, time.perf_counter() - started)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse({"error": message}, status_code=code, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):  # unknown routes, wrong methods: TF Serving's {"error": ...} shape
        return JSONResponse({"error": f"{error.detail}: {request.method} {request.url.path}"},
                            status_code=error.status_code)

    @app.exception_handler(Exception)
    async def any_error(request, error):
        return error_response(error)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        from toolkit.serving.page import PAGE

        return HTMLResponse(PAGE)

    @app.get("/v1/models")
    async def list_models(request: Request):
        check_auth(request)
        models = []
        for name in repository.names():
            versions = repository.versions(name)
            entry = next((v for v in versions if v.state == "AVAILABLE"), None)
            models.append({"name": name, "version": entry.number if entry else None,
                           "versions": [{"version": v.number, "state": v.state, "error": v.error} for v in versions],
                           **(entry.servable.describe() if entry and entry.servable else {})})
        return {"models": models}

    @app.get("/v1/models/{name}")
    async def model_status(name: str, request: Request):
        return _status(name, None, request)

    @app.get("/v1/models/{name}/versions/{version}")
    async def version_status(name: str, version: str, request: Request):
        return _status(name, version, request)

    def _status(name, version, request):
        try:
            check_auth(request)
            return to_json(status_response(repository.versions(name, version)))
        except Exception as error:  # noqa: BLE001 - mapped to {"error": ...}
            return error_response(error)

    @app.get("/v1/models/{name}/metadata")
    async def model_metadata(name: str, request: Request):
        return _metadata(name, None, request)

    @app.get("/v1/models/{name}/versions/{version}/metadata")
    async def version_metadata(name: str, version: str, request: Request):
        return _metadata(name, version, request)

    def _metadata(name, version, request):
        try:
            check_auth(request)
            return metadata_json(repository.get(name, version))
        except Exception as error:  # noqa: BLE001
            return error_response(error)

    @app.post("/v1/models/{name}:{method}")
    async def predict_latest(name: str, method: str, request: Request):
        return await _predict(name, None, method, request)

    @app.post("/v1/models/{name}/versions/{version}:{method}")
    async def predict_version(name: str, version: str, method: str, request: Request):
        return await _predict(name, version, method, request)

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body_bytes:
            raise PayloadTooLarge(f"request body of {int(length)} bytes exceeds the limit of {max_body_bytes} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise PayloadTooLarge(f"request body exceeds the limit of {max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _predict(name, version, method, request):
        started = time.perf_counter()
        label = name if name in repository.names() else "-"
        try:
            check_auth(request)
            if method != "predict":
                raise RequestError(f"method ':{method}' is not supported; these signatures are predict signatures, use ':predict'")
            body = await read_body(request)
            try:
                document = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise RequestError(f"malformed JSON in the request body: {error}") from None
            signature = document.get("signature_name") if isinstance(document, dict) else None
            if signature is not None and not isinstance(signature, str):
                raise RequestError("\"signature_name\" must be a string")
            for _attempt in range(3):
                entry = repository.get(name, version)
                arrays, layout = parse_request(document, entry.servable.specs(signature) if entry.servable else {})
                try:
                    future = repository.submit(entry, signature, arrays)
                    break
                except RuntimeError:  # unloaded between lookup and submit (a swap): take the new version
                    continue
            else:
                raise NotFoundError(f"Servable not found for request: {name} (being swapped, retry)")
            outputs = await asyncio.wrap_future(future)
            result = format_response(outputs, layout)
        except Exception as error:  # noqa: BLE001 - every failure becomes {"error": ...}
            return error_response(error, label, "predict", started)
        metrics.request("rest", label, "predict", 200, time.perf_counter() - started)
        return Response(json.dumps(result, separators=(",", ":")), media_type="application/json")

    @app.get("/monitoring/prometheus/metrics")
    @app.get("/metrics")
    async def prometheus(request: Request):
        try:
            check_auth(request)
        except Unauthorized as error:
            return error_response(error)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
