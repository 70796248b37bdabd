"""The processes of the conformance matrix: the `toolkit` CLI in a child process, one process that imports only
TensorFlow (and tensorflow_text) to load exports, and one `toolkit serve` per test file."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import numpy as np

from tests import harness

REPO = harness.REPO
_VENV_TOOLKIT = os.path.join(REPO, ".venv", "bin", "toolkit")
TOOLKIT = [_VENV_TOOLKIT] if os.path.exists(_VENV_TOOLKIT) else [harness.PYTHON, "-m", "apps.cli"]
_VENV_SMC = os.path.join(REPO, ".venv", "bin", "saved_model_cli")
SAVED_MODEL_CLI = _VENV_SMC if os.path.exists(_VENV_SMC) else None
TARGETS = ("cpu", "gpu", "tpu")
FORMATS = ("saved_model", "tflite", "onnx")
QUIET = ["--no-tensorboard", "--verbose", "0"]


# --- the CLI in a child process ---------------------------------------------------------------------------------

def toolkit(*args, timeout: float = 600, expect: int | None = 0, what: str | None = None, cwd: str | None = None):
    """`toolkit ARGS` in a new process. `cwd`: where it runs (predict writes drawn PNGs into ./predictions/),
    never the repo (default: a new temp folder)."""
    import tempfile

    return harness.run_subprocess([*TOOLKIT, *args], timeout=timeout, expect_returncode=expect,
                                  cwd=cwd or tempfile.mkdtemp(prefix="toolkit_cwd_"),
                                  what=what or "toolkit " + " ".join(str(a) for a in args)[:300])


def json_out(done) -> object:
    """The JSON document a `--json` command printed (the last top-level one on stdout)."""
    text = done.stdout
    start = min((i for i in (text.find("["), text.find("{")) if i >= 0), default=-1)
    assert start >= 0, f"no JSON on stdout:\n{harness.tail(text)}"
    return json.loads(text[start:])


# --- one process that imports only TensorFlow (and tensorflow_text) ---------------------------------------------

_TF_ONLY = r"""
import contextlib, io, json, runpy, sys
import tensorflow as tf
jobs = json.loads(sys.argv[1])
if any(j["text"] for j in jobs):
    import tensorflow_text  # noqa: F401  (in-graph tokenizer ops)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("toolkit", "apps", "keras_hub", "keras_nlp"))
assert not bad, f"the TF-only process imported {bad}"
results = {}
for job in jobs:
    row = {}
    # saved_model_cli, the .venv/bin/saved_model_cli entry point, run on the export in this process
    smc = job.get("saved_model_cli")
    if smc:
        sys.argv = ["saved_model_cli", "show", "--all", "--dir", job["path"]]
        out = io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out):
            try:
                runpy.run_path(smc, run_name="__main__")
            except SystemExit as e:
                code = e.code or 0
        row["saved_model_cli"] = {"code": code, "stdout": out.getvalue()[-20000:]}
    loaded = tf.saved_model.load(job["path"])
    fn = loaded.signatures["serving_default"]
    (name, spec), = fn.structured_input_signature[1].items()
    values = [open(v, "rb").read() for v in job["inputs"]] if not job["text"] else [v.encode() for v in job["inputs"]]
    batch = spec.shape[0] if spec.shape.rank else None
    n = len(values)
    if batch is not None and batch != n:  # a static-batch (tpu) signature: pad with the first input
        values = (values * batch)[:batch]
    out = fn(**{name: tf.constant(values, dtype=tf.string)})
    row.update({"signatures": sorted(loaded.signatures.keys()), "input": name, "input_shape": spec.shape.as_list(),
                "outputs": {k: {"shape": v.shape.as_list(), "dtype": v.dtype.name} for k, v in out.items()},
                "values": {k: (v.numpy()[:n].tolist() if v.dtype != tf.string else
                               [x.decode() if isinstance(x, bytes) else x for x in v.numpy()[:n].ravel().tolist()])
                           for k, v in out.items() if v.shape.rank is not None and v.shape.num_elements() < 5000}})
    results[job["key"]] = row
print("RESULT " + json.dumps(results))
"""


def tf_only_load(exports: dict, inputs, text: bool, timeout: float = 300) -> dict:
    """Loads every export in `exports` ({key: version folder}) in ONE process that imports only tensorflow
    (+ tensorflow_text for text), runs `saved_model_cli show --all` on each, calls `serving_default` on raw
    `inputs` (file paths -> encoded bytes, or strings); returns {key: {signatures, input, outputs, values,
    saved_model_cli}}."""
    jobs = [{"key": k, "path": p, "inputs": list(inputs), "text": text, "saved_model_cli": SAVED_MODEL_CLI}
            for k, p in exports.items()]
    done = harness.run_python(_TF_ONLY, json.dumps(jobs), timeout=timeout, what=f"TF-only load of {list(exports)}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[7:])


def check_saved_model_cli(row: dict) -> None:
    smc = row.get("saved_model_cli")
    assert smc is not None, "saved_model_cli not installed in .venv"
    assert smc["code"] == 0, smc["stdout"][-3000:]
    assert "signature_def['serving_default']" in smc["stdout"], smc["stdout"][-3000:]


def saved_model_cli(path: str) -> str:
    """The real `.venv/bin/saved_model_cli show --all --dir PATH` in its own process."""
    done = harness.run_subprocess([SAVED_MODEL_CLI or "saved_model_cli", "show", "--all", "--dir", path],
                                  timeout=300)
    assert "signature_def['serving_default']" in done.stdout, harness.tail(done.stdout)
    return done.stdout


# --- one `toolkit serve` per test file --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`toolkit serve --model-base-path BASE --port P --grpc-port G` in a child process (`poll_interval` 0: the
    versions found at start only; > 0: the folder is polled, new versions load while it serves)."""

    def __init__(self, base: str, names: list, timeout: float = 240, poll_interval: float = 0.0):
        self.base, self.names = base, list(names)
        self.port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list = []
        self.process = subprocess.Popen(
            [*TOOLKIT, "serve", "--model-base-path", base, "--port", str(self.port), "--grpc-port",
             str(self.grpc_port), "--poll-interval", str(poll_interval), "--log-level", "warning"],
            cwd=base, env=harness.child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(self.process.stdout.readline, "")),
                                       daemon=True)
        self.reader.start()
        self.status = {name: self._wait(name, timeout) for name in self.names}

    def log(self) -> str:
        return harness.tail("".join(self.lines), 60)

    def _wait(self, name, timeout):
        """Polls GET /v1/models/NAME until a version is AVAILABLE (or END: it failed to load)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"toolkit serve exited {self.process.returncode}:\n{self.log()}"
            try:
                last = self.get(f"/v1/models/{name}")
                states = [v.get("state") for v in last.get("model_version_status", [])]
                if "AVAILABLE" in states or (states and all(s == "END" for s in states)):
                    return last
            except (urllib.error.URLError, ConnectionError, OSError, ValueError) as error:
                last = repr(error)
            time.sleep(0.25)
        return {"error": f"not ready after {timeout} s: {last}"}

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def rest_predict(self, name, instances):
        request = urllib.request.Request(f"{self.url}/v1/models/{name}:predict",
                                         data=json.dumps({"instances": instances}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def grpc_predict(self, name, input_name, values, signature="serving_default"):
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = name
            request.model_spec.signature_name = signature
            request.inputs[input_name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
            return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.reader.join(5)


def b64_instance(path: str) -> dict:
    with open(path, "rb") as f:
        return {"b64": base64.b64encode(f.read()).decode()}


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def as_list(value):
    return np.asarray(value).tolist()
