"""`toolkit <task> tune`: keras-tuner over the task's hooks, validation-only scoring, resume, best.json -> train."""

import json

import numpy as np
import pytest

from apps import cli, image_classifier
from apps.tune import search_space, tune

SMALL = dict(epochs=1, width=4, dense_units=8, augment="none", verbose=0, validation_split=0.25)


def _arrays():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 60, (24, 8, 8, 3)), rng.uniform(190, 255, (24, 8, 8, 3))]).astype("float32")
    return x, np.array([0] * 24 + [1] * 24), ["dark", "light"]


def test_the_space_follows_the_notes_and_leaves_given_options_out():
    hp = search_space(image_classifier.APP.config_cls, exclude={"width"})
    assert set(hp.values) == {"learning_rate", "batch_size", "dropout", "dense_units"}
    lr = next(p for p in hp.space if p.name == "learning_rate")
    assert (lr.min_value, lr.max_value, lr.sampling) == (1e-5, 1e-2, "log")
    with pytest.raises(ValueError, match=r"cannot tune \['filters'\]"):
        search_space(image_classifier.APP.config_cls, fields=["filters"])


def test_search_scores_on_validation_resumes_and_best_json_trains(tmp_path, capsys):
    out = tmp_path / "tune"
    result = tune(image_classifier.APP, _arrays(), output_dir=str(out), trials=2, fields=["learning_rate", "dropout"],
                  **SMALL)
    assert len(result["trials"]) == 2 and result["best_val_loss"] == min(t["val_loss"] for t in result["trials"])
    assert all(1e-5 <= t["learning_rate"] <= 1e-2 and "val_accuracy" in t for t in result["trials"])
    assert (out / "results.csv").read_text().count("\n") == 3 and (out / "tune.png").stat().st_size > 1000
    again = tune(image_classifier.APP, _arrays(), output_dir=str(out), trials=3, fields=["learning_rate", "dropout"],
                 **SMALL)  # resumes: the two finished trials are kept, one more runs
    assert len(again["trials"]) == 3
    assert {t["trial"] for t in result["trials"]} <= {t["trial"] for t in again["trials"]}
    best = json.loads((out / "best.json").read_text())
    assert best["learning_rate"] == again["trials"][0]["learning_rate"] and best["width"] == 4  # given: fixed
    np.savez(tmp_path / "data.npz", x=_arrays()[0], y=_arrays()[1])
    code = cli.main(["image-classifier", "train", "--data", str(tmp_path / "data.npz"), "--config", str(out / "best.json"),
                     "--run-dir", str(tmp_path / "runs"), "--no-tensorboard", "--epochs", "1"])
    assert code == 0
    [config_file] = list((tmp_path / "runs").rglob("config.json"))
    trained = json.loads(config_file.read_text())
    assert trained["learning_rate"] == best["learning_rate"] and trained["epochs"] == 1  # the flag wins


def test_bad_requests_are_refused_before_any_trial(tmp_path):
    with pytest.raises(ValueError, match="validation split only"):
        tune(image_classifier.APP, _arrays(), output_dir=str(tmp_path), validation_split=0.0)
    with pytest.raises(ValueError, match="unknown algorithm 'grid'"):
        tune(image_classifier.APP, _arrays(), output_dir=str(tmp_path), algorithm="grid")
    from apps import text_embedder

    with pytest.raises(ValueError, match="text-embedder trains no weights"):
        tune(text_embedder.APP, ["a b"], output_dir=str(tmp_path))
