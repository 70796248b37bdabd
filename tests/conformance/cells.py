"""The conformance matrix: every app x model family x verb x target x format, each step in a NEW process, as a
user would run it: train in one shell, evaluate / export / predict / serve in others. The cells of one model
family share one `Family` (train once, export once per target); data in `data.py`, processes in `processes.py`.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from tests import harness
from tests.conformance.data import (  # noqa: F401  (the app test files build their families from these)
    bert_preset, detection_data, image_files, image_folder, images_under, polarity_rows, scenes, segmentation_data,
    text_csv,
)
from tests.conformance.processes import (  # noqa: F401
    FORMATS, QUIET, SAVED_MODEL_CLI, TARGETS, Served, b64_instance, check_saved_model_cli, json_out, read_bytes,
    tf_only_load, toolkit,
)


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
                       *QUIET, *([] if self.task == "text-embedder" else ["--epochs", "1"]))  # nothing trains
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

        return {f: r for f in FORMATS if (r := unsupported_reason(self.kind, target, f))}

    def refusal(self, target):
        """`export --formats <all>` for a target with a refused pair: exit 2, the pair and reason, nothing written."""
        return self._step(("refusal", target), lambda: self._refusal(target)).get()

    def _refusal(self, target):
        run_dir = self.run_dir()
        output = os.path.join(self.root, "refused", target)
        done = toolkit(self.task, "export", run_dir, "--output", output, "--target", target,
                       "--formats", ",".join(FORMATS), expect=None)
        return done, output

    def export(self, target) -> dict:
        """Exports every format this target supports in one call; returns {"path", "formats", "metadata"}."""
        return self._step(("export", target), lambda: self._export(target)).get(f"{self.kind} export[{target}]")

    def export_formats(self, target) -> dict:
        """A second export of `target` with every format (tflite, onnx) the table allows, beside the serve base."""
        return self._step(("formats", target), lambda: self._export(target, FORMATS, os.path.join(
            self.root, "formats", target))).get(f"{self.kind} export formats[{target}]")

    def _export(self, target, formats=None, output=None):
        run_dir = self.run_dir()
        formats = [f for f in (formats or self.formats) if f not in self.refused(target)]
        done = toolkit(self.task, "export", run_dir, "--output", output or self.export_dir(target), "--target",
                       target, "--formats", ",".join(formats))
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
    first = next(f for f in FORMATS if f in refused)  # the first refused format in --formats order
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
EXTRA_FAST = {"train", "export-cpu", "tf-only-cpu"}
# Targets whose cells are slow for every family (CI budget): on a CPU-only machine the gpu export is the cpu
# graph without a batch-size change, so the fast set keeps cpu and the very different tpu (static batch, XLA).
SLOW_TARGETS = ("gpu",)


class Registry:
    """Lazily built Families of one test file, plus its one TF-only process and one server."""

    def __init__(self, request, tmp_path_factory, serve_base, specs, text, formats=FORMATS):
        self.request, self.tmp, self.serve_base, self.specs, self.text = request, tmp_path_factory, serve_base, specs, text
        self.formats = formats
        self.families: dict = {}
        self.tf_rows: dict = {}
        self.server = None

    def __getitem__(self, name) -> Family:
        if name not in self.families:
            model, build = self.specs[name]
            args = build(self.request.getfixturevalue)
            self.families[name] = Family(args.pop("task"), model, self.tmp.mktemp(name), serve_base=self.serve_base,
                                         formats=self.formats, **args)
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
                  extra=(), fast_formats: bool = False) -> None:
    """Defines the conformance cells of one app file in its namespace `ns` (a test module's globals()).

    Args:
        specs: {family name: (model or None, build(getfixturevalue) -> Family kwargs incl. "task")}.
        expected_outputs: output names `serving_default` must return.
        metric: the headline metric `evaluate --json` reports (compared run dir vs export).
        compare: outputs compared between the TF-only call, REST and gRPC (and `predict`'s rows).
        text: text inputs (strings; tensorflow_text in the TF-only process) instead of image files.
        extra: families whose cells outside `EXTRA_FAST` are marked slow.
        fast_formats: the fast exports write tflite and onnx too (one app does, for the CI budget: a conversion
            costs 10-30 s); otherwise they write the SavedModel and `test_export_formats` (slow) converts.
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
                if any(unsupported_reason(kind, target, f) for f in FORMATS):  # each refusal costs a process:
                    out.append(pytest.param(name, target, id=f"{name}-{target}", marks=[pytest.mark.slow]))
        return out

    @pytest.fixture(scope="module")
    def matrix(request, tmp_path_factory, serve_base):
        registry = Registry(request, tmp_path_factory, serve_base, specs, text,
                            formats=FORMATS if fast_formats else ("saved_model",))
        yield registry
        registry.close()

    @pytest.mark.parametrize("name,target", params(lambda t: "train"))
    def test_train(matrix, name, target):
        check_train(matrix[name])

    @pytest.mark.parametrize("name,target", params(lambda t: f"export-{t}", TARGETS))
    def test_export(matrix, name, target):
        check_export(matrix[name], target)

    @pytest.mark.parametrize("name,target", [] if fast_formats else [
        pytest.param(*p.values, id=p.id, marks=[pytest.mark.slow]) for p in params(lambda t: f"formats-{t}", TARGETS)])
    def test_export_formats(matrix, name, target):
        family = matrix[name]
        result = family.export_formats(target)
        for fmt in result["formats"]:
            if fmt != "saved_model":
                assert os.path.isfile(os.path.join(result["path"], f"model.{fmt}")), os.listdir(result["path"])
                assert result["metadata"]["parity_max_abs_diff"][fmt] <= 1e-4, result["metadata"]["parity_max_abs_diff"]

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

    for fn in (matrix, test_train, test_export, test_export_formats, test_export_refuses_unsupported_pair, test_evaluate_run_dir_and_export,
               test_predict_run_dir, test_predict_export, test_tf_only_load, test_saved_model_cli, test_serve_rest,
               test_serve_grpc):
        ns[fn.__name__] = fn
