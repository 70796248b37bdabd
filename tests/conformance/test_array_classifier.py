"""Conformance: array-classifier on tiny synthetic arrays written at test time, each step in a new process through the
CLI: conv1d (sine waves of 2 and 6 cycles, 2 channels: a .npz to train on, a class folder of .npy files to evaluate,
.npy files to predict) and conv3d (a bright cube in the front or back half of a 6^3 volume, a .npy class folder).

The export's raw signature takes float arrays (`arrays`), which the encoded-bytes cells of `cells.define_matrix` do
not model, so this file defines its cells on the same `cells.Family` steps. The default set (the suite's time budget) is
conv1d train (scoring the held-out .npy folder in the training process), export-cpu from the run directory,
evaluate of the export (= the training process's metrics), predict of the export (= a TF-only load's outputs), and
conv3d train + export in one process; evaluate / predict of the run directory, tpu / gpu exports, tflite / onnx files,
conv3d's refused tflite and REST serving are slow-marked.
"""

import json
import os
import re

import numpy as np
import pytest

from tests import harness
from tests.conformance import cells
from toolkit.data.arrays import bright_cubes, sine_waves

TASK = "array-classifier"
OUTPUTS = ("scores", "classes", "labels")
TINY = ["--epochs", "2", "--batch-size", "8", "--validation-split", "0.25"]


def _npy_folder(root, x, y, names) -> str:
    for i, (sample, label) in enumerate(zip(x, y)):
        os.makedirs(os.path.join(root, names[label]), exist_ok=True)
        np.save(os.path.join(root, names[label], f"{i:03d}.npy"), sample)
    return str(root)


@pytest.fixture(scope="module")
def sequences(data_root, tmp_path_factory, serve_base):
    root = data_root / "arrays_1d"
    root.mkdir(exist_ok=True)
    x, y, names = sine_waves(16, frequencies=(2.0, 6.0), length=32, seed=1)
    np.savez(root / "signals.npz", x=x, y=y, class_names=np.array(names))
    held_x, held_y, _ = sine_waves(4, frequencies=(2.0, 6.0), length=32, seed=2)
    held = _npy_folder(root / "held", held_x, held_y, names)
    inputs = []
    for i in (0, len(held_x) - 1):  # one sample of each class
        inputs.append(str(root / f"input{i}.npy"))
        np.save(inputs[-1], held_x[i])
    return cells.Family(TASK, "conv1d", tmp_path_factory.mktemp("array_1d"),
                        ["--data", str(root / "signals.npz"), "--test-data", held, "--filters", "4,8", *TINY], held,
                        inputs, serve_base)


@pytest.fixture(scope="module")
def volumes(data_root):
    x, y, names = bright_cubes(6, side=6, cube=2, seed=1)
    return _npy_folder(data_root / "arrays_3d", x, y, names)


def _tf_only(path: str, inputs: list) -> dict:
    """serving_default(arrays) in a process that imports only tensorflow and numpy."""
    code = (
        "import json, sys\n"
        "import numpy as np, tensorflow as tf\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('toolkit', 'apps', 'keras_hub'))\n"
        "assert not bad, bad\n"
        "loaded = tf.saved_model.load(sys.argv[1])\n"
        "fn = loaded.signatures['serving_default']\n"
        "x = np.stack([np.load(p) for p in json.loads(sys.argv[2])]).astype('float32')\n"
        "out = fn(arrays=tf.constant(x))\n"
        "print('RESULT ' + json.dumps({'signatures': sorted(loaded.signatures), "
        "'inputs': sorted(fn.structured_input_signature[1]), 'outputs': sorted(out), "
        "'labels': [v.decode() for v in out['labels'].numpy()], 'classes': out['classes'].numpy().tolist(), "
        "'scores': out['scores'].numpy().tolist()}))\n")
    done = harness.run_python(code, path, json.dumps(inputs), what="TF-only load of the array-classifier export")
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])


# --- conv1d: the default cells ---------------------------------------------------------------------------------

def test_train(sequences):
    cells.check_train(sequences)
    with open(os.path.join(sequences.run_dir(), "metrics.json")) as f:
        metrics = json.load(f)
    assert {"accuracy", "macro_f1", "confusion_matrix"} <= set(metrics) and metrics["evaluated_on"] == "test"
    with open(os.path.join(sequences.run_dir(), "info.json")) as f:
        info = json.load(f)
    assert (info["model"], info["sample_shape"], info["class_names"]) == ("conv1d", [32, 2], ["2hz", "6hz"])
    with open(os.path.join(sequences.run_dir(), "config.json")) as f:
        assert json.load(f)["filters"] == "4,8"  # the options travel with the run


@pytest.mark.parametrize("target", ["cpu", pytest.param("gpu", marks=pytest.mark.slow),
                                    pytest.param("tpu", marks=pytest.mark.slow)])
def test_export(sequences, target):
    result = cells.check_export(sequences, target)
    assert result["metadata"]["task"] == "array_classification", result["metadata"].get("task")
    assert result["metadata"]["labels"] == ["2hz", "6hz"]


def _held_out_metrics(family) -> dict:
    with open(os.path.join(family.run_dir(), "metrics.json")) as f:
        return json.load(f)


def test_evaluate_export_matches_the_training_process(sequences):
    """The training process scored the held-out .npy folder (--test-data) with the live model; `evaluate` of the
    export in a new process must agree."""
    from_run, from_export = _held_out_metrics(sequences), sequences.evaluate("cpu")
    assert sum(row["support"] for row in from_export["per_class"].values()) == 8  # the .npy folder, by class name
    assert abs(from_run["accuracy"] - from_export["accuracy"]) <= 1e-6, (from_run, from_export)
    assert from_run["confusion_matrix"] == from_export["confusion_matrix"]


@pytest.mark.slow
def test_evaluate_run_dir(sequences):
    assert abs(sequences.evaluate("run")["accuracy"] - _held_out_metrics(sequences)["accuracy"]) <= 1e-6


def test_predict_export_and_tf_only_load(sequences):
    rows = sequences.predict("cpu")
    assert [os.path.basename(r["input"]) for r in rows] == ["input0.npy", "input7.npy"]
    result = _tf_only(sequences.export("cpu")["path"], sequences.inputs)
    assert result["inputs"] == ["arrays"] and set(OUTPUTS) <= set(result["outputs"]), result
    assert "serving_dense" in result["signatures"]
    assert [r["label"] for r in rows] == result["labels"] and [r["class"] for r in rows] == result["classes"]
    for row, scores in zip(rows, result["scores"]):
        assert np.allclose(list(row["scores"].values()), scores, atol=1e-5), (row, scores)


@pytest.mark.slow
def test_predict_run_dir(sequences):
    cells.assert_same(sequences.predict("run"), sequences.predict("cpu"), where="predict run dir vs export")


@pytest.mark.slow
def test_export_formats(sequences):
    """tflite, onnx and the quantized files of the conv1d model, each parity-checked / scored by the guard."""
    result = sequences.export_formats("cpu")
    for fmt in ("tflite", "onnx"):
        assert os.path.isfile(os.path.join(result["path"], f"model.{fmt}"))
        assert result["metadata"]["parity_max_abs_diff"][fmt] <= 1e-4, result["metadata"]["parity_max_abs_diff"]


@pytest.mark.slow
def test_serve_rest(sequences):
    sequences.export("cpu")
    server = cells.Served(sequences.serve_base, [sequences.export_name("cpu")])
    try:
        instances = [np.load(p).tolist() for p in sequences.inputs]
        code, body = server.rest_predict(sequences.export_name("cpu"), instances)
        assert code == 200, f"HTTP {code}: {body}\n{server.log()}"
        expected = _tf_only(sequences.export("cpu")["path"], sequences.inputs)["labels"]
        assert [p["labels"] for p in body["predictions"]] == expected, body
    finally:
        server.stop()


# --- conv3d: the cheapest cell by default -----------------------------------------------------------------------

def test_train_and_export_conv3d(volumes, tmp_path):
    """Volumes from a .npy class folder: train and export (cpu) in one new process."""
    done = cells.toolkit(TASK, "train", "--data", volumes, "--filters", "4", *TINY, "--run-dir", str(tmp_path / "runs"),
                         "--export", str(tmp_path / "export"), *cells.QUIET)
    run_dir = re.search(r"^run directory: (.+)$", done.stdout, re.M).group(1).strip()
    with open(os.path.join(run_dir, "info.json")) as f:
        info = json.load(f)
    assert (info["model"], info["sample_shape"], info["class_names"]) == ("conv3d", [6, 6, 6, 1], ["back", "front"])
    path = re.search(r"^exported: (.+)$", done.stdout, re.M).group(1).strip()
    assert os.path.isfile(os.path.join(path, "saved_model.pb")), os.listdir(path)
    with open(os.path.join(path, "assets.extra", "toolkit.json")) as f:
        metadata = json.load(f)
    assert metadata["task"] == "array_classification" and metadata["labels"] == ["back", "front"]


@pytest.fixture(scope="module")
def volume_family(volumes, tmp_path_factory, serve_base):
    return cells.Family(TASK, "conv3d", tmp_path_factory.mktemp("array_3d"),
                        ["--data", volumes, "--filters", "4", *TINY], volumes, [], serve_base)


@pytest.mark.slow
def test_export_formats_conv3d(volume_family):
    result = volume_family.export_formats("cpu")  # onnx; tflite is refused (no MaxPool3D kernel)
    assert "tflite" not in result["formats"] and os.path.isfile(os.path.join(result["path"], "model.onnx"))
    assert result["metadata"]["parity_max_abs_diff"]["onnx"] <= 1e-4, result["metadata"]["parity_max_abs_diff"]


@pytest.mark.slow
def test_export_refuses_tflite_conv3d(volume_family):
    cells.check_refusal(volume_family, "cpu")
