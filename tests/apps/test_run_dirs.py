"""Run directories: resume only the same options and data content; never lose a trained model to evaluation."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from apps import image_classifier, run_dirs
from apps.vae import fit_label_counts
from toolkit.training.fault_tolerance import write_status

TINY = dict(batch_size=16, width=4, dense_units=8, dropout=0.0, augment="none", validation_split=0.0,
            verbose=0, tensorboard=False, epochs=1)


def _folder(root, classes=("a", "b"), n=4):
    for index, name in enumerate(classes):
        os.makedirs(root / name, exist_ok=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8, 3), 40 * index + i, np.uint8)).save(root / name / f"{i}.png")
    return str(root)


def test_data_description_follows_the_content(tmp_path):
    data = _folder(tmp_path / "data")
    before = run_dirs.describe_data(data)
    assert before == run_dirs.describe_data(data) and before.startswith(os.path.abspath(data))
    _folder(tmp_path / "data", classes=("c",))  # a class folder added after a kill
    assert run_dirs.describe_data(data) != before
    x = np.zeros((3, 2), "float32")
    assert run_dirs.describe_data((x, [0, 1, 1])) != run_dirs.describe_data((x + 1, [0, 1, 1]))


def test_resume_only_on_the_same_fingerprint_and_say_why_not(tmp_path):
    config = image_classifier.APP.make_config(run_dir=str(tmp_path / "runs"), **TINY)
    data = _folder(tmp_path / "data")
    parts = run_dirs.fingerprint_parts("image-classifier", config, data)
    key = run_dirs.fingerprint("image-classifier", config, data)
    old = tmp_path / "runs" / "image-classifier" / "20260101-000000-000000"
    old.mkdir(parents=True)
    write_status(str(old), "failed", stage="training", fingerprint=key, parts=parts, app="image-classifier")
    messages = []
    path, resumed = run_dirs.resolve_run_dir("image-classifier", config, messages.append, key=key, parts=parts)
    assert resumed and path == str(old)
    _folder(tmp_path / "data", classes=("c",))
    new_parts = run_dirs.fingerprint_parts("image-classifier", config, data)
    new_key = run_dirs.fingerprint("image-classifier", config, data)
    path, resumed = run_dirs.resolve_run_dir("image-classifier", config, messages.append, key=new_key,
                                             parts=new_parts)
    assert not resumed and path != str(old)
    assert "not continuing unfinished run" in messages[-1] and "its data changed" in messages[-1]
    write_status(str(old), "failed", stage="data", fingerprint=key, parts=parts, app="image-classifier")
    path, resumed = run_dirs.resolve_run_dir("image-classifier", config, messages.append, key=key, parts=parts)
    assert not resumed  # it failed while reading its data: nothing to continue


def test_a_failed_evaluation_keeps_the_model_and_marks_the_run_failed(tmp_path, monkeypatch):
    def broken_score(predictor, dataset, info):
        raise RuntimeError("metric exploded")

    monkeypatch.setattr(image_classifier.APP, "score", broken_score)
    with pytest.raises(RuntimeError, match="metric exploded"):
        image_classifier.train(_folder(tmp_path / "data"), run_dir=str(tmp_path / "runs"), resume="never",
                               **{**TINY, "validation_split": 0.25})
    run_dir = os.path.join(tmp_path, "runs", "image-classifier", os.listdir(tmp_path / "runs" / "image-classifier")[0])
    with open(os.path.join(run_dir, "status.json")) as f:
        status = json.load(f)
    assert status["status"] == "failed" and status["stage"] == "evaluation" and "metric exploded" in status["reason"]
    with pytest.raises(ValueError, match="did not finish"):
        image_classifier.APP.load_run(run_dir)
    run = image_classifier.APP.load_run(run_dir, allow_unfinished=True)
    assert run.model.output_shape == (None, 2)


def test_semi_supervised_counts_fit_the_smallest_class():
    labels = np.repeat([0, 1, 2], 30)
    assert fit_label_counts([10, 100], labels) == (
        [10, 30], "semi_supervised: the smallest class has 30 labelled training images; 100 labels/class shrunk to 30")
    assert fit_label_counts([10], labels) == ([10], "")
    assert fit_label_counts([5], np.array([], "int64"))[0] == []


def test_metrics_on_a_handful_of_examples_carry_a_warning(tmp_path, capsys):
    from apps import cli

    code = cli.main(["image-classifier", "train", "--data", _folder(tmp_path / "data", n=6), "--run-dir",
                     str(tmp_path / "runs"), "--validation-split", "0.25", "--epochs", "1", "--width", "4",
                     "--dense-units", "8", "--augment", "none", "--verbose", "0", "--no-tensorboard"])
    out = capsys.readouterr().out
    assert code == 0 and "warning: only 3 held-out example(s): these metrics are rough" in out
