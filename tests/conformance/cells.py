"""Shared pieces of the conformance matrix: tiny real datasets, the `toolkit` CLI in a child process, one
TF-only loader process, and one `toolkit serve` process per test file.

Every step runs in a NEW process, as a user would run it: train in one shell, evaluate / export / predict /
serve in others. The cells of one model family share one `Family` (train once, export once per target).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import random
import re
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


# --- tiny data that is not ours ---------------------------------------------------------------------------------

def image_folder(root: str, classes=(0, 1), per_class: int = 6) -> str:
    """scikit-learn's real handwritten digits as a class-per-folder tree mixing RGB PNG and JPEG of
    different sizes (16, 20, 28 px): what a user's photo folder looks like."""
    from PIL import Image

    from toolkit.data import samples

    x, y, _ = samples.digits()
    names = {0: "zero", 1: "one", 2: "two", 3: "three"}
    for c in classes:
        folder = os.path.join(root, names[c])
        os.makedirs(folder, exist_ok=True)
        for i, pixels in enumerate(x[y == c][:per_class]):
            side = (16, 20, 28)[i % 3]
            image = Image.fromarray(pixels[..., 0]).resize((side, side), Image.BILINEAR).convert("RGB")
            if i % 2:
                image.save(os.path.join(folder, f"{c}_{i}.jpg"), quality=95)
            else:
                image.save(os.path.join(folder, f"{c}_{i}.png"))
    return root


def image_files(root: str) -> list:
    """One PNG and one JPEG from an `image_folder` tree (different classes where possible)."""
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith((".png", ".jpg")))
    png = next(f for f in files if f.endswith(".png"))
    jpg = next((f for f in reversed(files) if f.endswith(".jpg")), files[-1])
    return [png, jpg]


def scenes(count: int = 4, image_size: int = 32, seed: int = 1):
    """Detection / segmentation scenes of real digits pasted on a canvas (toolkit.data.scenes)."""
    from toolkit.data.scenes import digit_scenes

    return digit_scenes(count, image_size=image_size, objects=(1, 2), object_size=(10, 16), classes=[0, 1],
                        seed=seed)


def detection_data(root: str, format: str, seed: int = 1) -> str:
    """A COCO JSON file / YOLO folder / VOC folder of 4 digit scenes; returns the path to pass as --data."""
    from toolkit.data.annotations import from_scenes, write_detections

    return write_detections(from_scenes(scenes(seed=seed)), root, format)


def segmentation_data(root: str, seed: int = 3) -> str:
    from toolkit.data.mask_writer import write_segmentation_folder

    return write_segmentation_folder(scenes(image_size=24, seed=seed), root)


def polarity_rows(count: int = 40, seed: int = 0) -> list:
    """`count` real movie-review sentences (Pang & Lee polarity, from gensim's test data), balanced, shuffled."""
    from toolkit.data.text_samples import polarity

    texts, labels = polarity()
    rows = [(t, lab) for t, lab in zip(texts, labels)]
    pos = [r for r in rows if r[1] == "pos"][: count // 2]
    neg = [r for r in rows if r[1] == "neg"][: count // 2]
    picked = pos + neg
    random.Random(seed).shuffle(picked)
    return picked


def text_csv(path: str, rows: list, text_column: str = "review", label_column: str = "sentiment") -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([text_column, label_column])
        writer.writerows(rows)
    return path


def bert_preset(root: str, texts) -> str:
    """A tiny random BERT saved as a native keras-hub preset folder (offline), vocabulary from `texts`."""
    import keras

    from toolkit.models import bert

    words = sorted({w for t in texts for w in re.findall(r"[a-z]+|[^a-z\s]", t.lower())})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words[:400]
    keras.utils.set_random_seed(0)
    backbone, tokenizer = bert.tiny_bert(vocab, num_layers=1, hidden_dim=16, num_heads=2, max_sequence_length=32)
    path = os.path.join(root, "tiny_bert")
    backbone.save_to_preset(path)
    tokenizer.save_to_preset(path)
    return path


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


class Outcome:
    """A cached step result: the value, or the failure to re-raise in every cell that needs it."""

    def __init__(self, fn):
        self.value, self.error = None, None
        try:
            self.value = fn()
        except BaseException as error:  # noqa: BLE001 - re-raised by get()
            if isinstance(error, KeyboardInterrupt):
                raise
            self.error = error

    def get(self, what: str = ""):
        if self.error is not None:
            if what:
                raise AssertionError(f"needs {what}, which failed: {self.error}") from self.error
            raise self.error
        return self.value


class Family:
    """One app x model family: trained once through the CLI, then exported once per target.

    Args:
        task: CLI task name (`image-classifier`, ...).
        model: the family (`--model`), or None for single-family apps; the export kind is `task/model`.
        root: a temp folder for this family (run dir, exports).
        train_args: `--data ...` and tiny options for `train`.
        eval_data: labelled data for `evaluate`.
        inputs: raw inputs for `predict` (file paths or strings).
        serve_base: where exports go (`serve_base/<name>/<version>/`) so one server serves the file's exports.
    """

    def __init__(self, task, model, root, train_args, eval_data, inputs, serve_base, formats=FORMATS):
        self.task, self.model, self.root = task, model, str(root)
        self.kind = f"{task}/{model}" if model else task
        self.slug = re.sub(r"[^a-z0-9]+", "-", self.kind.lower()).strip("-")
        self.train_args, self.eval_data, self.inputs = list(train_args), eval_data, list(inputs)
        self.serve_base, self.formats = str(serve_base), tuple(formats)
        self._steps: dict = {}

    def _step(self, key, fn):
        if key not in self._steps:
            self._steps[key] = Outcome(fn)
        return self._steps[key]

    # train -------------------------------------------------------------------------------------------------
    def run_dir(self) -> str:
        return self._step("train", self._train).get(f"{self.kind} train")

    def _train(self) -> str:
        model = ["--model", self.model] if self.model else []
        done = toolkit(self.task, "train", *self.train_args, *model, "--run-dir", os.path.join(self.root, "runs"),
                       *QUIET, "--epochs", "1")
        match = re.search(r"^run directory: (.+)$", done.stdout, re.M)
        assert match, f"no run directory in the train output:\n{harness.tail(done.stdout)}"
        path = match.group(1).strip()
        assert os.path.isfile(os.path.join(path, "model.keras")), os.listdir(path)
        return path

    # export ------------------------------------------------------------------------------------------------
    def export_name(self, target) -> str:
        return f"{self.slug}-{target}"

    def export_dir(self, target) -> str:
        return os.path.join(self.serve_base, self.export_name(target))

    def refused(self, target) -> dict:
        """The formats `toolkit.export.formats.UNSUPPORTED` refuses for this kind and target: {fmt: reason}."""
        from toolkit.export.formats import unsupported_reason

        return {f: r for f in self.formats if (r := unsupported_reason(self.kind, target, f))}

    def refusal(self, target):
        """`export --formats <all>` for a target with a refused pair: exit 2, the pair and reason, nothing written."""
        return self._step(("refusal", target), lambda: self._refusal(target)).get()

    def _refusal(self, target):
        run_dir = self.run_dir()
        output = os.path.join(self.root, "refused", target)
        done = toolkit(self.task, "export", run_dir, "--output", output, "--target", target,
                       "--formats", ",".join(self.formats), expect=None)
        return done, output

    def export(self, target) -> dict:
        """Exports every format this target supports in one call; returns {"path", "formats", "metadata"}."""
        return self._step(("export", target), lambda: self._export(target)).get(f"{self.kind} export[{target}]")

    def _export(self, target):
        run_dir = self.run_dir()
        formats = [f for f in self.formats if f not in self.refused(target)]
        done = toolkit(self.task, "export", run_dir, "--output", self.export_dir(target), "--target", target,
                       "--formats", ",".join(formats))
        match = re.search(r"^exported: (.+)$", done.stdout, re.M)
        assert match, harness.tail(done.stdout)
        path = match.group(1).strip()
        with open(os.path.join(path, "assets.extra", "toolkit.json")) as f:
            metadata = json.load(f)
        return {"path": path, "formats": formats, "metadata": metadata}

    # evaluate / predict ------------------------------------------------------------------------------------
    def evaluate(self, source: str) -> dict:
        """`evaluate RUN_DIR|EXPORT --data ... --json` in a new process ("run" or a target)."""
        return self._step(("evaluate", source), lambda: self._evaluate(source)).get(f"{self.kind} evaluate[{source}]")

    def _evaluate(self, source):
        path = self.run_dir() if source == "run" else os.path.dirname(self.export(source)["path"])
        return json_out(toolkit(self.task, "evaluate", path, "--data", self.eval_data, "--json"))

    def predict(self, source: str) -> list:
        return self._step(("predict", source), lambda: self._predict(source)).get(f"{self.kind} predict[{source}]")

    def _predict(self, source):
        path = self.run_dir() if source == "run" else os.path.dirname(self.export(source)["path"])
        cwd = os.path.join(self.root, f"predict-{source}")
        os.makedirs(cwd, exist_ok=True)
        rows = json_out(toolkit(self.task, "predict", path, *self.inputs, "--json", cwd=cwd))
        assert isinstance(rows, list) and len(rows) == len(self.inputs), rows
        return rows


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
    """`toolkit serve --model-base-path BASE --port P --grpc-port G` in a child process."""

    def __init__(self, base: str, names: list, timeout: float = 240):
        self.base, self.names = base, list(names)
        self.port, self.grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list = []
        self.process = subprocess.Popen(
            [*TOOLKIT, "serve", "--model-base-path", base, "--port", str(self.port), "--grpc-port",
             str(self.grpc_port), "--poll-interval", "0", "--log-level", "warning"],
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


# --- shared checks ---------------------------------------------------------------------------------------------

def check_train(family) -> None:
    run_dir = family.run_dir()
    assert os.path.isfile(os.path.join(run_dir, "model.keras")), os.listdir(run_dir)


def check_export(family, target) -> dict:
    """The export of `target` wrote every supported format and describes itself."""
    result = family.export(target)
    path = result["path"]
    assert os.path.basename(path).isdigit(), path
    assert os.path.isfile(os.path.join(path, "saved_model.pb")), os.listdir(path)
    if "tflite" in result["formats"]:
        assert os.path.isfile(os.path.join(path, "model.tflite")), os.listdir(path)
    if "onnx" in result["formats"]:
        assert os.path.isfile(os.path.join(path, "model.onnx")), os.listdir(path)
    assert result["metadata"].get("target") == target, result["metadata"].get("target")
    return result


def check_refusal(family, target) -> None:
    """A (kind, target, format) pair in UNSUPPORTED: the CLI refuses it up front, with the pair and the reason,
    exit status 2, nothing written."""
    refused = family.refused(target)
    assert refused, f"{family.kind} has no refused pair for {target}"
    done, output = family.refusal(target)
    message = done.stderr
    assert done.returncode == 2, f"exit {done.returncode}\n{harness.tail(done.stdout)}\n{harness.tail(message)}"
    first = next(f for f in family.formats if f in refused)  # the first refused format in --formats order
    for needle in (family.kind, first, target, refused[first]):
        assert needle in message, f"{needle!r} not in the refusal message:\n{harness.tail(message)}"
    assert "Traceback" not in message, harness.tail(message)
    assert not os.path.exists(output) or not os.listdir(output), f"the refused export wrote {os.listdir(output)}"


def _is_path(value) -> bool:
    return isinstance(value, str) and value.endswith((".png", ".jpg", ".npy", ".json"))


def assert_same(a, b, atol: float = 2e-3, where: str = "") -> None:
    """Deep comparison of two predictions (JSON): strings and ints equal, floats within atol; file paths skipped."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], atol, f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, atol, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert abs(float(a) - float(b)) <= atol, f"{where}: {a} vs {b}"
    elif _is_path(a) and _is_path(b):
        return
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def check_tf_only(row: dict, expected_outputs, batch: int, target: str) -> None:
    """A TF-only load of one export: serving_default takes raw inputs and returns the named outputs."""
    assert "serving_default" in row["signatures"], row["signatures"]
    names = set(row["outputs"])
    assert set(expected_outputs) <= names, f"outputs {sorted(names)}, expected {sorted(expected_outputs)}"
    want = 8 if target == "tpu" else batch  # tpu: static batch (export --batch-size default 8)
    for name, spec in row["outputs"].items():
        if spec["shape"]:
            assert spec["shape"][0] == want, f"{name}: shape {spec['shape']} (batch {want})"
    if target == "tpu":
        assert row["input_shape"][:1] == [8], row["input_shape"]
    else:
        assert row["input_shape"][:1] == [None], row["input_shape"]


# --- the matrix, defined once for every app test file -----------------------------------------------------------

# Cells an extra (slow-marked) family still runs in the default, fast set.
EXTRA_FAST = {"train", "export-cpu", "predict-export", "tf-only-cpu"}
# Targets whose cells are slow for every family (CI budget): on a CPU-only machine the gpu export is the cpu
# graph without a batch-size change, so the fast set keeps cpu and the very different tpu (static batch, XLA).
SLOW_TARGETS = ("gpu",)


class Registry:
    """Lazily built Families of one test file, plus its one TF-only process and one server."""

    def __init__(self, request, tmp_path_factory, serve_base, specs, text):
        self.request, self.tmp, self.serve_base, self.specs, self.text = request, tmp_path_factory, serve_base, specs, text
        self.families: dict = {}
        self.tf_rows: dict = {}
        self.server = None

    def __getitem__(self, name) -> Family:
        if name not in self.families:
            model, build = self.specs[name]
            args = build(self.request.getfixturevalue)
            self.families[name] = Family(args.pop("task"), model, self.tmp.mktemp(name), serve_base=self.serve_base,
                                         **args)
        return self.families[name]

    def exported(self) -> dict:
        """{(name, target): version folder} of the exports that succeeded so far."""
        out = {}
        for name, family in self.families.items():
            for key, step in family._steps.items():
                if isinstance(key, tuple) and key[0] == "export" and step.error is None:
                    out[(name, key[1])] = step.value["path"]
        return out

    def tf_only(self, name, target) -> dict:
        """The TF-only row of one export; loads every not-yet-loaded successful export in one process."""
        self[name].export(target)
        if (name, target) not in self.tf_rows:
            todo = {k: p for k, p in self.exported().items() if k not in self.tf_rows}
            inputs = self[name].inputs
            rows = tf_only_load({f"{n}|{t}": p for (n, t), p in todo.items()}, inputs, self.text)
            self.tf_rows.update({tuple(k.split("|")): v for k, v in rows.items()})
        return self.tf_rows[(name, target)]

    def serve(self) -> "Served":
        if self.server is None:
            names = [self[n].export_name(t) for (n, t) in self.exported()]
            self.server = Served(self.serve_base, names)
        return self.server

    def close(self):
        if self.server is not None:
            self.server.stop()


def define_matrix(ns: dict, specs: dict, expected_outputs, metric: str, compare=("labels",), text: bool = False,
                  extra=()) -> None:
    """Defines the conformance cells of one app file in its namespace `ns` (a test module's globals()).

    Args:
        specs: {family name: (model or None, build(getfixturevalue) -> Family kwargs incl. "task")}.
        expected_outputs: output names `serving_default` must return.
        metric: the headline metric `evaluate --json` reports (compared run dir vs export).
        compare: outputs compared between the TF-only call, REST and gRPC (and `predict`'s rows).
        text: text inputs (strings; tensorflow_text in the TF-only process) instead of image files.
        extra: families whose cells outside `EXTRA_FAST` are marked slow.
    """
    import pytest

    def params(cell_of, targets=(None,)):
        out = []
        for name in specs:
            for target in targets:
                cell = cell_of(target)
                slow = (name in extra and cell not in EXTRA_FAST) or target in SLOW_TARGETS
                marks = [pytest.mark.slow] if slow else []
                out.append(pytest.param(name, target, id=f"{name}-{target}" if target else name, marks=marks))
        return out

    def refusal_params():
        from toolkit.export.formats import unsupported_reason

        out = []
        for name, (model, build) in specs.items():
            kind = f"{ns['TASK']}/{model}" if model else ns["TASK"]
            for target in TARGETS:
                if any(unsupported_reason(kind, target, f) for f in FORMATS):
                    marks = [pytest.mark.slow] if name in extra or target in SLOW_TARGETS else []
                    out.append(pytest.param(name, target, id=f"{name}-{target}", marks=marks))
        return out

    @pytest.fixture(scope="module")
    def matrix(request, tmp_path_factory, serve_base):
        registry = Registry(request, tmp_path_factory, serve_base, specs, text)
        yield registry
        registry.close()

    @pytest.mark.parametrize("name,target", params(lambda t: "train"))
    def test_train(matrix, name, target):
        check_train(matrix[name])

    @pytest.mark.parametrize("name,target", params(lambda t: f"export-{t}", TARGETS))
    def test_export(matrix, name, target):
        check_export(matrix[name], target)

    @pytest.mark.parametrize("name,target", refusal_params())
    def test_export_refuses_unsupported_pair(matrix, name, target):
        check_refusal(matrix[name], target)

    @pytest.mark.parametrize("name,target", params(lambda t: "evaluate"))
    def test_evaluate_run_dir_and_export(matrix, name, target):
        family = matrix[name]
        from_run, from_export = family.evaluate("run"), family.evaluate("cpu")
        assert metric in from_run and metric in from_export, (from_run, from_export)
        assert abs(from_run[metric] - from_export[metric]) <= 1e-3, (from_run, from_export)

    @pytest.mark.parametrize("name,target", params(lambda t: "predict-run"))
    def test_predict_run_dir(matrix, name, target):
        rows = matrix[name].predict("run")
        assert len(rows) == len(matrix[name].inputs)

    @pytest.mark.parametrize("name,target", params(lambda t: "predict-export"))
    def test_predict_export(matrix, name, target):
        family = matrix[name]
        rows = family.predict("cpu")
        assert len(rows) == len(family.inputs), rows
        from_run = family._steps.get(("predict", "run"))  # ran earlier in this file (when selected)
        if from_run is not None and from_run.error is None:  # the same classes from the run dir and the export
            assert_same(from_run.value, rows, where=f"{name}: predict run dir vs export")

    @pytest.mark.parametrize("name,target", params(lambda t: f"tf-only-{t}", TARGETS))
    def test_tf_only_load(matrix, name, target):
        row = matrix.tf_only(name, target)
        check_tf_only(row, expected_outputs, len(matrix[name].inputs), target)

    @pytest.mark.parametrize("name,target", params(lambda t: f"saved-model-cli-{t}", TARGETS))
    def test_saved_model_cli(matrix, name, target):
        check_saved_model_cli(matrix.tf_only(name, target))

    def _served(matrix, name, target):
        family = matrix[name]
        family.export(target)
        server = matrix.serve()
        model = family.export_name(target)
        assert model in server.status, f"{model} not served: {sorted(server.status)}\n{server.log()}"
        states = [v.get("state") for v in server.status[model].get("model_version_status", [])]
        assert "AVAILABLE" in states, f"{model}: {server.status[model]}\n{server.log()}"
        return family, server, model, matrix.tf_only(name, target)

    @pytest.mark.parametrize("name,target", params(lambda t: f"serve-{t}", TARGETS))
    def test_serve_rest(matrix, name, target):
        family, server, model, reference = _served(matrix, name, target)
        instances = list(family.inputs) if text else [b64_instance(p) for p in family.inputs]
        code, body = server.rest_predict(model, instances)
        assert code == 200, f"HTTP {code}: {body}\n{server.log()}"
        predictions = body["predictions"]
        assert len(predictions) == len(family.inputs), body
        for key in compare:
            assert [p[key] for p in predictions] == reference["values"][key], (key, predictions, reference["values"])

    @pytest.mark.parametrize("name,target", params(lambda t: f"serve-{t}", TARGETS))
    def test_serve_grpc(matrix, name, target):
        family, server, model, reference = _served(matrix, name, target)
        values = [v.encode() for v in family.inputs] if text else [read_bytes(p) for p in family.inputs]
        if target == "tpu":
            values = (values * 8)[:8]
        outputs = server.grpc_predict(model, reference["input"], values)
        assert set(expected_outputs) <= set(outputs), sorted(outputs)
        n = len(family.inputs)
        for key in compare:
            got = outputs[key][:n].tolist()
            got = [g.decode() if isinstance(g, bytes) else g for g in np.ravel(got).tolist()] if outputs[key].dtype.kind in "SO" else got
            assert got == reference["values"][key], (key, got, reference["values"][key])

    for fn in (matrix, test_train, test_export, test_export_refuses_unsupported_pair, test_evaluate_run_dir_and_export,
               test_predict_run_dir, test_predict_export, test_tf_only_load, test_saved_model_cli, test_serve_rest,
               test_serve_grpc):
        ns[fn.__name__] = fn


def images_under(path: str, count: int = 2) -> list:
    """The first `count` PNG/JPEG files under a data folder (or a COCO JSON file's folder)."""
    root = path if os.path.isdir(path) else os.path.dirname(path)
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                   if f.lower().endswith((".png", ".jpg", ".jpeg")) and "mask" not in d)
    assert files, f"no images under {root}"
    return files[:count]
