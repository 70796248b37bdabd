"""A small REST client for the server (or stock TF Serving): status, metadata, predict, classify, regress.

Light on purpose: imports httpx only (no TensorFlow), so scripts and `toolkit predict URL ...` start fast.
"""

from __future__ import annotations

import base64
import os

import httpx


class ServingError(RuntimeError):
    """The server answered with an error: `.status` (HTTP code) and the server's message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


def b64(data) -> dict:
    """Bytes (or a file path) -> TF Serving's `{"b64": "..."}` JSON value."""
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as f:
            data = f.read()
    return {"b64": base64.b64encode(data).decode("ascii")}


class Client:
    """REST client for `toolkit serve` and TF Serving.

    Args:
        url: server address, e.g. `"http://127.0.0.1:8501"`.
        token: bearer token when the server was started with `--auth-token`.
        timeout: seconds per request.

    Examples:
    A throwaway server on a free loopback port, serving a one-layer model (image models take
    `instances=[b64("shoe.png")]`, or `client.classify("fashion", ["shoe.png"])`):

    >>> from toolkit.export import export
    >>> from toolkit.serving.repository import ModelRepository
    >>> from toolkit.serving.server import Server
    >>> model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
    >>> _ = export(model, "savedmodels/tiny")
    >>> server = Server(ModelRepository("savedmodels"), rest_port=0, grpc_port=None).start()
    >>> client = Client(server.url)
    >>> client.status("tiny")[0]["state"]
    'AVAILABLE'
    >>> predictions = client.predict("tiny", instances=[[1.0, 2.0, 3.0]])
    >>> np.allclose(predictions, model.predict(np.array([[1.0, 2.0, 3.0]]), verbose=0), atol=1e-5)
    True
    >>> client.close(); server.stop()
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def _path(name: str, version=None) -> str:
        return f"/v1/models/{name}" + (f"/versions/{version}" if version is not None else "")

    def _check(self, response: httpx.Response):
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:500]}
        if response.status_code >= 400:
            raise ServingError(response.status_code, body.get("error", str(body)) if isinstance(body, dict) else str(body))
        return body

    def models(self) -> list:
        """The served models (name, version, task, labels, signatures); a `toolkit serve` extension."""
        return self._check(self._http.get("/v1/models"))["models"]

    def status(self, name: str, version=None) -> list:
        """`model_version_status` entries: version, state (`AVAILABLE`, `END`, ...), status (error)."""
        return self._check(self._http.get(self._path(name, version)))["model_version_status"]

    def metadata(self, name: str, version=None) -> dict:
        """TF Serving's metadata body: `model_spec`, `metadata.signature_def` (and `metadata.toolkit`)."""
        return self._check(self._http.get(self._path(name, version) + "/metadata"))

    def predict(self, name: str, instances=None, inputs=None, signature_name: str | None = None, version=None):
        """POST `:predict`; returns `predictions` (row format) or `outputs` (columnar format).

        Args:
            name: model name.
            instances: row format, one element per example (`{"b64": ...}` for bytes: see `b64`).
            inputs: columnar format (a value, or a dict input name -> value); give one of the two.
            signature_name: default `serving_default`.
            version: a specific version (default: the latest).
        """
        if (instances is None) == (inputs is None):
            raise ValueError("give exactly one of instances (row format) or inputs (columnar format)")
        body = {"instances": instances} if instances is not None else {"inputs": inputs}
        if signature_name:
            body["signature_name"] = signature_name
        result = self._check(self._http.post(self._path(name, version) + ":predict", json=body))
        return result["predictions"] if instances is not None else result["outputs"]

    def _examples(self, verb: str, name: str, examples, signature_name, context, version) -> list:
        body = {"examples": list(examples)}
        if signature_name:
            body["signature_name"] = signature_name
        if context:
            body["context"] = context
        return self._check(self._http.post(self._path(name, version) + f":{verb}", json=body))["results"]

    def classify_examples(self, name: str, examples, signature_name: str | None = None, context: dict | None = None,
                          version=None) -> list:
        """POST `:classify` (TF Serving's Classify API): `examples` are `{feature: value | [values]}` dicts
        (`{"b64": ...}` for bytes, see `b64`), `context` features shared by all; returns one
        `[[label, score], ...]` list per example. Our classifier exports answer on `signature_name="classify"`."""
        return self._examples("classify", name, examples, signature_name, context, version)

    def regress(self, name: str, examples, signature_name: str | None = None, context: dict | None = None,
                version=None) -> list:
        """POST `:regress` (TF Serving's Regress API); returns one value per example."""
        return self._examples("regress", name, examples, signature_name, context, version)

    def classify(self, name: str, images, version=None) -> list:
        """Image bytes or file paths -> one dict of outputs per image (labels, scores, classes, ...)."""
        predictions = self.predict(name, instances=[b64(image) for image in images], version=version)
        return [p if isinstance(p, dict) else {"outputs": p} for p in predictions]
