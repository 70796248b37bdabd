import json
import os

import numpy as np
import pytest

from apps import cli, image_classifier
from toolkit.data import DataError
from toolkit.export import encode_png, load

TINY = dict(epochs=3, batch_size=8, width=4, dense_units=16, augment="none", verbose=0, patience=-1)


def write_folder(root, per_class=12):
    """Two visually distinct classes: dark squares and bright squares, 12x12 grey PNGs."""
    rng = np.random.default_rng(1)
    for name, low in (("dark", 0), ("bright", 190)):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            image = rng.integers(low, low + 60, (12, 12, 1)).astype("uint8")
            with open(os.path.join(root, name, f"{i}.png"), "wb") as f:
                f.write(encode_png(image))
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(str(tmp_path_factory.mktemp("images") / "train"))


def test_train_evaluate_export_predict_through_the_api(folder, tmp_path):
    run = image_classifier.train(folder, run_dir=str(tmp_path / "runs"), validation_split=0.25, **TINY)
    assert set(run.metrics) >= {"accuracy", "per_class", "confusion_matrix"}
    assert run.metrics["evaluated_on"] == "validation"
    assert sum(map(sum, run.metrics["confusion_matrix"])) == 6
    assert run.info["batch_size"] == 8 and "batch_size_note" not in run.info  # given: kept (3 steps an epoch)
    for name in ("config.json", "history.csv", "metrics.json", "model.keras", "history.png", "confusion_matrix.png"):
        assert os.path.isfile(os.path.join(run.run_dir, name)), name
    path = run.export(str(tmp_path / "sm" / "tiny"))
    meta = load(path).metadata
    assert meta["labels"] == ["bright", "dark"] and meta["app"] == "image-classifier"
    assert meta["metrics"]["accuracy"] == run.metrics["accuracy"]
    # the exported model and the live run agree on raw inputs of every kind
    files = [os.path.join(folder, "dark", "0.png"), os.path.join(folder, "bright", "0.png")]
    with open(files[0], "rb") as f:
        raw = f.read()
    inputs = [files[0], raw, np.full((30, 30, 1), 220, "uint8")]
    exported, live = image_classifier.predict(path, inputs), image_classifier.predict(run, inputs)
    assert [p["label"] for p in exported] == [p["label"] for p in live]
    np.testing.assert_allclose([p["score"] for p in exported], [p["score"] for p in live], atol=1e-4)
    with pytest.raises(DataError, match="missing.png"):
        image_classifier.predict(path, [str(tmp_path / "missing.png")])
    assert image_classifier.evaluate(path, folder)["accuracy"] == pytest.approx(
        image_classifier.evaluate(run, folder)["accuracy"])


def test_fine_tune_phases_from_a_previous_run(folder, tmp_path):
    first = image_classifier.train(folder, run_dir=str(tmp_path / "runs"), **TINY)
    second = image_classifier.train(
        folder, run_dir=str(tmp_path / "runs"), backbone=os.path.join(first.run_dir, "model.keras"),
        training="fine-tune", fine_tune_layers=4, fine_tune_epochs=2, **TINY,
    )
    assert len(second.history["loss"]) == TINY["epochs"] + 2  # head phase + fine-tune phase


def test_cli_train_evaluate_predict_export(folder, tmp_path, capsys):
    runs, models = str(tmp_path / "runs"), str(tmp_path / "savedmodels" / "tiny")
    argv = ["image-classifier", "train", "--data", folder, "--export", models, "--run-dir", runs,
            "--epochs", "2", "--batch-size", "8", "--width", "4", "--augment", "none", "--verbose", "0"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "held-out metrics" in out and "accuracy" in out and f"exported: {models}/1" in out

    assert cli.main(["image-classifier", "evaluate", models, "--data", folder, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0.0 <= metrics["accuracy"] <= 1.0

    image = os.path.join(folder, "bright", "3.png")
    assert cli.main(["image-classifier", "predict", models, image, "--json"]) == 0
    (prediction,) = json.loads(capsys.readouterr().out)
    assert prediction["label"] in ("bright", "dark") and 0 <= prediction["score"] <= 1

    run_dir = os.path.join(runs, "image-classifier", os.listdir(os.path.join(runs, "image-classifier"))[0])
    assert cli.main(["image-classifier", "export", run_dir, "--output", models, "--target", "tpu"]) == 0
    assert "exported:" in capsys.readouterr().out and load(models).metadata["target"] == "tpu"


def test_cli_help_lists_config_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["image-classifier", "train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--backbone", "--fine-tune-layers", "--label-smoothing", "--lr-schedule", "--strategy"):
        assert flag in out


def test_clear_errors(tmp_path, capsys):
    with pytest.raises(DataError, match="10 images but 8 labels"):
        image_classifier.train((np.zeros((10, 8, 8)), np.arange(8) % 2), **TINY)
    with pytest.raises(TypeError, match="unknown option"):
        image_classifier.train((np.zeros((10, 8, 8)), np.arange(10) % 2), no_such_option=1)
    with pytest.raises(ValueError, match="training must be one of"):
        image_classifier.train((np.zeros((10, 8, 8)), np.arange(10) % 2), training="magic")
    assert cli.main(["image-classifier", "train", "--data", str(tmp_path), "--verbose", "0"]) == 2
    assert "no class sub-folders" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        image_classifier.predict(str(tmp_path), ["x.png"])


def _three_colours(per_class=10, size=16):
    """3 classes x `per_class` RGB images: noisy red, green and blue squares (trivially separable)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, (3 * per_class, size, size, 3)).astype("uint8")
    y = np.repeat(np.arange(3), per_class)
    for i, label in enumerate(y):
        x[i, ..., label] += 180
    return x, y, ["red", "green", "blue"]


def test_defaults_learn_three_classes_of_ten_images(tmp_path, capsys):
    """Issue 15 item 9: at batch 64, 30 images were 1 step an epoch and every image got one class."""
    x, y, names = _three_colours()
    run = image_classifier.train((x, y, names), run_dir=str(tmp_path / "runs"), verbose=0, tensorboard=False)
    assert run.info["batch_size"] == 4 and run.info["num_train"] == 27
    out = capsys.readouterr().err  # notes go to stderr: stdout is for --json
    assert "batch_size 4 instead of the default 64" in out
    # 3 validation images cannot pick the best epoch: early stopping is off, all 10 epochs run
    assert "early stopping off: 3 validation examples" in out and len(run.history["loss"]) == 10
    assert "batch_size_note" in json.load(open(os.path.join(run.run_dir, "info.json")))
    predicted = [p["label"] for p in image_classifier.predict(run, list(x))]
    assert len(set(predicted)) == 3
    assert np.mean(np.asarray(predicted) == np.asarray(names)[y]) >= 0.9



def test_backbone_side_and_an_experts_head_reach_the_model(tmp_path):
    from toolkit.models.transfer import get_backbone

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 60, (12, 8, 8, 1)), rng.uniform(190, 255, (12, 8, 8, 1))]).astype("float32")
    run = image_classifier.train((x, np.array([0] * 12 + [1] * 12), ["dark", "light"]), epochs=1, batch_size=8,
                                 width=4, dense_units=8, augment="none", verbose=0, tensorboard=False,
                                 backbone_side=16, head_experts=2, run_dir=str(tmp_path / "runs"))
    assert tuple(get_backbone(run.model).input_shape[1:3]) == (16, 16)  # resized inside the graph
    assert any(type(layer).__name__ == "MixtureOfExperts" for layer in run.model.layers)
