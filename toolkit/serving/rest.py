"""The REST front end: TF Serving's `/v1/models/...` API, metrics, and the web page at `/`.

Endpoints (as TF Serving documents them):
- `GET  /v1/models/NAME[/versions/N | /labels/LABEL]`: version status (state, error code and message);
- `GET  /v1/models/NAME[/versions/N | /labels/LABEL]/metadata`: SignatureDefs, plus `metadata.toolkit`;
- `POST /v1/models/NAME[/versions/N | /labels/LABEL]:predict`: `{"instances": ...}` or `{"inputs": ...}`,
  `signature_name`; tensors go to the graph whatever their shape (dtype checked), as in TF Serving;
- `POST /v1/models/NAME[...]:classify` / `:regress`: `{"signature_name", "context", "examples"}` ->
  serialized `tf.Example`s for a classify / regress signature -> `{"results": ...}` (see `examples.py`);
- errors are `{"error": "..."}` with 400 (bad request, JSON nested too deep), 401 (token), 403 (Host or
  Origin not allowed), 404 (unknown model/version/route), 413 (body or decoded image too large), 415
  (content type), 500 (model failure), 503 (queue full), 504 (`--rest-api-timeout-in-ms` passed).
Extensions: `GET /v1/models` (list), `GET /monitoring/prometheus/metrics` (also `/metrics`), `GET /`.

The request path is a plain ASGI handler in front of FastAPI (which keeps the GET routes): Host, Origin and
token checks for every request, and `:predict` handled without FastAPI's per-request machinery. Bodies over
`OFFLOAD_BYTES` are parsed (and large outputs printed) on a worker thread, so a big request never holds
the event loop while other requests wait.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from concurrent.futures.process import BrokenProcessPool
import dataclasses
import hmac
import logging
import re
import time

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from toolkit.serving.batcher import DeadlineExceeded
from toolkit.serving.codec import RequestError, decode_body, dumps, encode_response, parse_body, parse_request
from toolkit.serving.dispatch import Dispatcher
from toolkit.serving.limits import HostCheck, LimitError, Limits, check_image_pixels, model_roots, redact_paths
from toolkit.serving.metrics import CONTENT_TYPE_LATEST, Metrics
from toolkit.serving.protos import metadata_json, status_response, to_json
from toolkit.serving.repository import ModelRepository, NotFoundError
from toolkit.serving.status import http_status_of, op_error_code

logger = logging.getLogger(__name__)

OFFLOAD_BYTES = 64 * 1024  # bodies (and outputs, in elements) beyond this are handled on a worker thread
PROCESS_BYTES = 1024 * 1024  # bodies beyond this are parsed in a helper process (the parse holds the GIL)
PREDICT = re.compile(r"^/v1/models/([^/:]+)(?:/versions/([^/:]+)|/labels/([^/:]+))?:([^/:]*)$")
PROTECTED = ("/v1/", "/metrics", "/monitoring/")
# TF Serving reads any body as JSON; browsers can send text/plain and multipart/form-data cross-origin
# without a preflight, so those are refused. x-www-form-urlencoded stays: it is what `curl -d` sends (TF
# Serving's documented examples); browser posts of it carry an Origin header, checked below.
ACCEPTED_TYPES = (b"", b"application/json", b"application/x-www-form-urlencoded")


class HTTPError(Exception):
    """An error with its own HTTP status (401, 403, 415, ...)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    """The client disconnected before its request was complete."""


def error_status(error, roots=()) -> tuple[int, str]:
    """Exception -> (HTTP status, client-facing message without absolute paths)."""
    import tensorflow as tf

    from toolkit.serving.servable import describe_error

    if isinstance(error, HTTPError):
        code, message = error.status, str(error)
    elif isinstance(error, LimitError):
        code, message = error.status, str(error)
    elif isinstance(error, (RequestError, tf.errors.InvalidArgumentError)):
        code, message = 400, describe_error(error)
    elif isinstance(error, NotFoundError):
        code, message = 404, str(error).strip("'\"")
    elif isinstance(error, ValueError):  # invalid model name / version
        code, message = 400, str(error)
    elif http_status_of(error) not in (None, 500):  # an op error: TF Serving's status for its code (ABORTED 409)
        code, message = http_status_of(error), f"{op_error_code(error)}: {describe_error(error)}"
        logger.warning("prediction failed in the graph: %s", message)
    else:
        logger.error("prediction failed: %s: %s", type(error).__name__, error, exc_info=error)
        code, message = 500, f"{type(error).__name__}: {describe_error(error)}"
    return code, redact_paths(message, roots)


async def send_json(send, status: int, body: bytes, headers=()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class ServingApp:
    """The ASGI application: checks, the `:predict` fast path, and the FastAPI app for the rest."""

    def __init__(self, api: FastAPI, repository, dispatcher: Dispatcher, metrics: Metrics, limits: Limits,
                 auth_token: str | None, hosts: HostCheck):
        self.api, self.repository, self.dispatcher, self.metrics = api, repository, dispatcher, metrics
        self.limits, self.hosts = limits, hosts
        self.token = auth_token.encode() if auth_token else None
        self.roots = model_roots(repository)
        self.state = api.state
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="rest-codec")
        self._processes = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.api(scope, receive, send)
        headers = dict(scope["headers"])
        path = scope["path"]
        try:
            self.check(headers, path)
        except HTTPError as error:
            extra = [(b"www-authenticate", b"Bearer")] if error.status == 401 else []
            return await send_json(send, error.status, dumps({"error": str(error)}), extra)
        if scope["method"] == "POST":
            match = PREDICT.match(path)
            if match:
                return await self.predict(match, headers, receive, send)
        return await self.api(scope, receive, send)

    def check(self, headers: dict, path: str) -> None:
        host = headers.get(b"host")
        if not self.hosts.host_ok(host.decode("latin-1") if host is not None else None):
            raise HTTPError(403, f"Host {host.decode('latin-1')!r} is not allowed; this server answers "
                                 "localhost, its bound address and --allowed-hosts")
        origin = headers.get(b"origin")
        if origin is not None and not self.hosts.origin_ok(origin.decode("latin-1")):
            raise HTTPError(403, f"cross-origin request from {origin.decode('latin-1')!r} refused "
                                 "(allow its host with --allowed-hosts)")
        if self.token and path.startswith(PROTECTED):
            header = headers.get(b"authorization", b"")
            if not (header.startswith(b"Bearer ") and hmac.compare_digest(header[7:], self.token)):
                raise HTTPError(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')")

    async def read_body(self, headers: dict, receive) -> bytes:
        limit = self.limits.max_body_bytes
        length = headers.get(b"content-length")
        if length and length.isdigit() and int(length) > limit:
            raise LimitError(f"request body of {int(length)} bytes exceeds the limit of {limit} bytes (--max-body-mb)")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise LimitError(f"request body exceeds the limit of {limit} bytes (--max-body-mb)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def prepare(self, body: bytes, name: str, version, label):
        """Body -> (version entry, signature, arrays, layout): parse, look up, validate, check limits."""
        document = decode_body(body, self.limits.max_json_depth)
        signature = document.get("signature_name") if isinstance(document, dict) else None
        if signature is not None and not isinstance(signature, str):
            raise RequestError("\"signature_name\" must be a string")
        entry = self.lookup(name, version, label)
        specs = entry.servable.specs(signature) if entry.servable else {}
        arrays, layout = parse_request(document, specs)
        check_image_pixels(arrays, specs, self.limits.max_image_pixels)
        return entry, signature, arrays, layout

    def process_pool(self):
        """One helper process (spawned: it imports numpy and orjson, not TensorFlow) for large bodies."""
        if self._processes is None:
            import multiprocessing

            self._processes = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._processes

    async def prepare_large(self, body: bytes, name, version, label):
        """`prepare` for bodies over PROCESS_BYTES: the parse runs in the helper process, so the event loop
        (and the GIL) stay free for other requests while megabytes of JSON become arrays."""
        entry = self.lookup(name, version, label)
        signatures = entry.servable.inputs if entry.servable else {}
        loop = asyncio.get_running_loop()
        try:
            signature, arrays, layout = await loop.run_in_executor(
                self.process_pool(), parse_body, body, self.limits.max_json_depth, signatures)
        except BrokenProcessPool:
            self._processes = None
            return await loop.run_in_executor(self.pool, self.prepare, body, name, version, label)
        check_image_pixels(arrays, signatures[signature or "serving_default"], self.limits.max_image_pixels)
        return entry, signature, arrays, layout

    def lookup(self, name, version, label):
        if label is not None:
            return self.repository.get(name, version, label=label)
        return self.repository.get(name, version)

    async def predict(self, match, headers, receive, send):
        """`:predict` (and, by method, `:classify` / `:regress`): TF Serving's REST inference calls."""
        method = match.group(4)
        if method in ("classify", "regress"):
            return await self.infer(method, match, headers, receive, send)
        return await self.infer("predict", match, headers, receive, send, bad_method=None if method == "predict" else
                                f"method ':{method}' is not supported; use ':predict', ':classify' or ':regress'")

    async def _prepare(self, verb: str, body: bytes, name, version, label):
        """The body -> (entry, signature, arrays, what the encoder needs), parsed off the event loop when big."""
        loop = asyncio.get_running_loop()
        if verb == "predict":
            if len(body) > PROCESS_BYTES:
                return await self.prepare_large(body, name, version, label)
            if len(body) > OFFLOAD_BYTES:
                return await loop.run_in_executor(self.pool, self.prepare, body, name, version, label)
            return self.prepare(body, name, version, label)
        if len(body) > OFFLOAD_BYTES:
            return await loop.run_in_executor(self.pool, self.prepare_examples, body, verb, name, version, label)
        return self.prepare_examples(body, verb, name, version, label)

    async def _encode(self, verb: str, outputs: dict, layout) -> bytes:
        if verb != "predict":
            from toolkit.serving import examples as ex

            return dumps(ex.result_json(verb, ex.result_of(verb, outputs, layout)))
        if sum(getattr(v, "size", 1) for v in outputs.values()) > OFFLOAD_BYTES:
            return await asyncio.get_running_loop().run_in_executor(self.pool, encode_response, outputs, layout)
        return encode_response(outputs, layout)

    async def infer(self, verb: str, match, headers, receive, send, bad_method: str | None = None):
        """The request path every inference verb shares: read the body, prepare it, hand it to the dispatcher
        (taking the new version if a swap unloaded the old one in between), wait within `--rest-api-timeout-in-ms`,
        encode, count; every failure becomes `{"error": ...}` with TF Serving's status."""
        started = time.perf_counter()
        name, version, label, _method = match.groups()
        model = name if name in self.repository.names() else "-"
        timeout = self.limits.rest_timeout_ms / 1000.0 if self.limits.rest_timeout_ms else None
        try:
            if bad_method:
                raise RequestError(bad_method)
            self.check_content_type(headers)
            body = await self.read_body(headers, receive)
            for _attempt in range(3):
                entry, signature, arrays, layout = await self._prepare(verb, body, name, version, label)
                deadline = time.monotonic() + timeout if timeout else None  # the inference deadline
                try:
                    future = self.dispatcher.submit(entry, signature, arrays, deadline)
                    break
                except RuntimeError:  # unloaded between lookup and submit (a swap): take the new version
                    continue
            else:
                raise NotFoundError(f"Servable not found for request: {name} (being swapped, retry)")
            try:
                outputs = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
            except asyncio.TimeoutError:
                future.cancel()
                what = "prediction" if verb == "predict" else f"{verb} call"
                raise DeadlineExceeded(f"the {what} did not finish within {self.limits.rest_timeout_ms} ms "
                                       "(--rest-api-timeout-in-ms)") from None
            payload = await self._encode(verb, outputs, layout)
        except ClientGone:
            self.metrics.request("rest", model, verb, 499, time.perf_counter() - started)
            return
        except Exception as error:  # noqa: BLE001 - every failure becomes {"error": ...}
            code, message = error_status(error, self.roots)
            self.metrics.request("rest", model, verb, code, time.perf_counter() - started)
            return await send_json(send, code, dumps({"error": message}))
        self.metrics.request("rest", model, verb, 200, time.perf_counter() - started)
        await send_json(send, 200, payload)

    @staticmethod
    def check_content_type(headers: dict) -> None:
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind not in ACCEPTED_TYPES and not kind.endswith(b"+json"):
            raise HTTPError(415, f"Content-Type {kind.decode('latin-1')!r} is not accepted; send the JSON body "
                                 "as application/json")

    def prepare_examples(self, body: bytes, verb: str, name, version, label):
        """A classify/regress body -> (entry, signature, {"inputs": serialized tf.Examples}, rows)."""
        from toolkit.serving import examples as ex

        document = decode_body(body, self.limits.max_json_depth)
        signature, examples, context = ex.parse_examples_body(document)
        entry = self.lookup(name, version, label)
        if entry.servable is None:
            raise NotFoundError(f"Servable not found for request: {name}")
        signature = ex.check_signature(entry.servable, signature, verb)
        ex.check_examples_pixels(examples, context, self.limits.max_image_pixels)
        return entry, signature, {ex.INPUTS_KEY: ex.serialize(examples, context)}, len(examples)

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)


def create_app(repository: ModelRepository, metrics: Metrics | None = None, auth_token: str | None = None,
               max_body_bytes: int | None = None, *, limits: Limits | None = None,
               dispatcher: Dispatcher | None = None, host: str = "127.0.0.1") -> ServingApp:
    """The ASGI application serving `repository`.

    Args:
        repository: a started `ModelRepository`.
        metrics: the `Metrics` to record into and expose (default: the repository's, or a new one).
        auth_token: when set, `/v1/...` and metrics need `Authorization: Bearer <token>` (401 otherwise).
        max_body_bytes: larger request bodies get 413 (overrides `limits.max_body_bytes`).
        limits: the per-request `Limits` (defaults: see `toolkit.serving.limits.Limits`).
        dispatcher: where predictions are queued (default: a `Dispatcher` with default batching options).
        host: the bound address; with `limits.allowed_hosts` it decides which Host headers are answered.
    """
    metrics = metrics or repository.metrics or Metrics()
    if repository.metrics is None:
        repository.metrics = metrics
    limits = dataclasses.replace(limits or Limits(), **({"max_body_bytes": max_body_bytes} if max_body_bytes else {}))
    dispatcher = dispatcher or Dispatcher(repository)
    roots = model_roots(repository)
    api = FastAPI(title="toolkit serving", docs_url=None, redoc_url=None, openapi_url=None)
    api.state.repository, api.state.metrics = repository, metrics

    def error_response(error) -> JSONResponse:
        code, message = error_status(error, roots)
        return JSONResponse({"error": message}, status_code=code)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request, error):  # unknown routes, wrong methods: TF Serving's {"error": ...} shape
        return JSONResponse({"error": f"{error.detail}: {request.method} {request.url.path}"},
                            status_code=error.status_code)

    @api.get("/", response_class=HTMLResponse)
    async def page():
        from toolkit.serving.page import PAGE

        return HTMLResponse(PAGE)

    @api.get("/v1/models")
    async def list_models():
        try:
            models = []
            for name in repository.names():
                versions = repository.versions(name)
                entry = next((v for v in versions if v.state == "AVAILABLE"), None)
                models.append({"name": name, "version": entry.number if entry else None,
                               "versions": [{"version": v.number, "state": v.state, "error": redact_paths(v.error, roots)}
                                            for v in versions],
                               **(entry.servable.describe() if entry and entry.servable else {})})
            return {"models": models}
        except Exception as error:  # noqa: BLE001
            return error_response(error)

    def status(name, version=None, label=None):
        try:
            entries = repository.versions(name, version, label=label) if label else repository.versions(name, version)
            body = to_json(status_response(entries))
            for entry in body.get("model_version_status", []):
                status_field = entry.get("status") or {}
                if status_field.get("error_message"):
                    status_field["error_message"] = redact_paths(status_field["error_message"], roots)
            return body
        except Exception as error:  # noqa: BLE001 - mapped to {"error": ...}
            return error_response(error)

    def metadata(name, version=None, label=None):
        try:
            entry = repository.get(name, version, label=label) if label else repository.get(name, version)
            return metadata_json(entry)
        except Exception as error:  # noqa: BLE001
            return error_response(error)

    @api.get("/v1/models/{name}")
    async def model_status(name: str):
        return status(name)

    @api.get("/v1/models/{name}/versions/{version}")
    async def version_status(name: str, version: str):
        return status(name, version)

    @api.get("/v1/models/{name}/labels/{label}")
    async def label_status(name: str, label: str):
        return status(name, label=label)

    @api.get("/v1/models/{name}/metadata")
    async def model_metadata(name: str):
        return metadata(name)

    @api.get("/v1/models/{name}/versions/{version}/metadata")
    async def version_metadata(name: str, version: str):
        return metadata(name, version)

    @api.get("/v1/models/{name}/labels/{label}/metadata")
    async def label_metadata(name: str, label: str):
        return metadata(name, label=label)

    @api.get("/monitoring/prometheus/metrics")
    @api.get("/metrics")
    async def prometheus():
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    hosts = HostCheck(host, limits.allowed_hosts)
    return ServingApp(api, repository, dispatcher, metrics, limits, auth_token, hosts)
