"""`toolkit <task> export --formats tflite-int8 ...` and evaluate / predict on a .tflite / .onnx file, in-process."""

import json
import os

import numpy as np
import pytest

from tests.conformance.data import image_files, image_folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from apps import image_classifier

    root = tmp_path_factory.mktemp("edge")
    folder = image_folder(str(root / "images"), per_class=12)
    run = image_classifier.train(folder, epochs=3, batch_size=8, width=4, dense_units=8, augment="none", verbose=0,
                                 image_size="16x16", tensorboard=False, run_dir=str(root / "runs"),
                                 validation_split=0.25)
    return root, folder, run


def test_export_guard_refusal_and_edge_file_evaluate_predict(trained, capsys):
    from apps import cli

    root, folder, run = trained
    out = str(root / "exports")
    # a drop of at most -100 points cannot be met: the int8 file is refused, the SavedModel still publishes
    assert cli.main(["image-classifier", "export", run.run_dir, "--output", out, "--formats",
                     "saved_model,tflite-int8", "--max-quantization-drop", "-100", "--calibration-size", "10"]) == 0
    text = capsys.readouterr().out
    assert "quantization guard: accuracy" in text and "10 calibration examples" in text
    assert "tflite-int8" in text and "NOT published: accuracy dropped" in text and "> max_quantization_drop -100" in text
    first = os.path.join(out, "1")
    assert os.path.isfile(os.path.join(first, "saved_model.pb")) and not os.path.exists(os.path.join(first, "model-int8.tflite"))

    assert cli.main(["image-classifier", "export", run.run_dir, "--output", out, "--formats", "tflite-int8"]) == 0
    assert "model-int8.tflite" in capsys.readouterr().out
    second = os.path.join(out, "2")
    meta = json.load(open(os.path.join(second, "assets.extra", "toolkit.json")))
    assert meta["quantization"]["formats"]["tflite-int8"]["published"], meta["quantization"]

    results = {}
    for name in ("", "model-int8.tflite"):
        assert cli.main(["image-classifier", "evaluate", os.path.join(second, name), "--data", folder, "--json"]) == 0
        results[name] = json.loads(capsys.readouterr().out)
    assert abs(results["model-int8.tflite"]["accuracy"] - results[""]["accuracy"]) <= 0.1, results

    inputs = image_files(folder)[:3]
    rows = {}
    for name in ("", "model-int8.tflite"):
        assert cli.main(["image-classifier", "predict", os.path.join(second, name), *inputs, "--json"]) == 0
        rows[name] = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in rows["model-int8.tflite"]] == [r["input"] for r in rows[""]]
    for a, b in zip(rows[""], rows["model-int8.tflite"]):
        assert set(a["scores"]) == set(b["scores"])
        assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) <= 0.1


def test_quantized_export_of_an_in_memory_run_asks_for_data(tmp_path, capsys):
    from apps import cli, image_classifier

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    run = image_classifier.train((x, np.array([0, 1] * 8), ["a", "b"]), epochs=1, batch_size=8, width=4,
                                 dense_units=8, augment="none", verbose=0, tensorboard=False,
                                 run_dir=str(tmp_path / "runs"))
    code = cli.main(["image-classifier", "export", run.run_dir, "--output", str(tmp_path / "out"), "--formats",
                     "tflite-fp16"])
    assert code == 2 and "--data" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")
    assert cli.main(["image-classifier", "export", run.run_dir, "--output", str(tmp_path / "out"), "--target", "tpu",
                     "--formats", "tflite-int8"]) == 2
    assert "quantized files are for CPU / edge runtimes" in capsys.readouterr().err


def test_train_export_takes_the_guard_flags(trained, tmp_path, capsys):
    """`train --export` calibrates and guards like `export`: calibration size, max drop and int8 I/O reach it."""
    from apps import cli

    _, folder, _ = trained
    out = str(tmp_path / "exports")
    assert cli.main(["image-classifier", "train", "--data", folder, "--image-size", "8x8", "--width", "4",
                     "--dense-units", "8", "--epochs", "1", "--batch-size", "8", "--augment", "none",
                     "--validation-split", "0.25", "--run-dir", str(tmp_path / "runs"), "--export", out,
                     "--formats", "saved_model,tflite-int8,tflite-dynamic", "--calibration-size", "6", "--int8-io",
                     "--max-quantization-drop", "-100"]) == 0
    text = capsys.readouterr().out
    assert "6 calibration examples" in text and "max drop -100 points" in text, text
    assert text.count("NOT published: accuracy dropped") == 2, text
    meta = json.load(open(os.path.join(out, "1", "assets.extra", "toolkit.json")))
    assert meta["quantization"]["int8_io"] is True and meta["quantization"]["calibration_examples"] == 6
    assert not os.path.exists(os.path.join(out, "1", "model-int8.tflite"))
    # a bad calibration size fails before training, naming the flag
    assert cli.main(["image-classifier", "train", "--data", folder, "--export", out, "--formats", "tflite-int8",
                     "--calibration-size", "0", "--run-dir", str(tmp_path / "runs2")]) == 2
    assert "--calibration-size must be >= 1" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "runs2")
