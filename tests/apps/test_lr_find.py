"""`toolkit <task> lr-find`: the range test through the task's own hooks, the CLI, and its refusals."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from apps import cli, image_classifier, text_embedder
from apps.lr_find import lr_find
from toolkit.training.lr_finder import LRRangeTest


def test_the_callback_ramps_geometrically_and_stops_when_the_loss_diverges():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 4)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5, 3.0], "float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-7), loss="mse")
    finder = LRRangeTest(1e-5, 100.0, steps=64)
    first_batch = float(np.mean((y[:32] - model(x[:32]).numpy()[:, 0]) ** 2))
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[finder], verbose=0, shuffle=False)
    assert finder.lrs[0] == pytest.approx(1e-5) and finder.lrs[1] == pytest.approx(1e-5 * 1e7 ** (1 / 63))
    assert len(finder.lrs) < 64  # SGD on this quadratic blows up past lr ~ 2: stopped early
    result = finder.result()
    assert result["diverged"] and 1e-3 < result["steepest"] < result["minimum"] < finder.lrs[-1]
    # the batch losses are recovered from Keras' running mean: the first one is the initial MSE of batch 1
    assert result["losses"][0] == pytest.approx(first_batch, rel=1e-4)


def test_a_schedule_is_refused():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)),
                  loss="mse")
    with pytest.raises(ValueError, match="constant learning rate"):
        model.fit(np.zeros((8, 1)), np.zeros((8, 1)), callbacks=[LRRangeTest()], verbose=0)


def _images(root, n=48):
    rng = np.random.default_rng(1)
    for label, (low, high) in {"dark": (0, 90), "light": (160, 255)}.items():
        (root / label).mkdir(parents=True)
        for i in range(n // 2):
            Image.fromarray(rng.integers(low, high, (12, 12, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    return root


def test_cli_writes_the_plot_and_suggests_a_rate(tmp_path, capsys):
    data = _images(tmp_path / "data")
    code = cli.main(["image-classifier", "lr-find", "--data", str(data), "--output", str(tmp_path / "out"),
                     "--batch-size", "4", "--width", "4", "--dense-units", "8", "--augment", "none", "--max-lr", "100",
                     "--verbose", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "suggested learning rate (steepest descent):" in out
    record = json.loads((tmp_path / "out" / "lr_find.json").read_text())
    assert record["lrs"][0] == pytest.approx(1e-7) and len(record["lrs"]) >= 5
    assert record["steepest"] <= record["minimum"] and (tmp_path / "out" / "lr_find.png").stat().st_size > 1000


def test_tasks_without_a_learning_rate_and_the_bert_recipe_are_refused(tmp_path):
    with pytest.raises(ValueError, match="text-embedder trains no weights"):
        lr_find(text_embedder.APP, ["a b", "c d"], output_dir=str(tmp_path))
    from apps import text_classifier

    with pytest.raises(ValueError, match="the BERT recipe sets its own"):
        lr_find(text_classifier.APP, [("a", "b")], output_dir=str(tmp_path), model="bert")
    with pytest.raises(ValueError, match="need 0 < min_lr < max_lr"):
        lr_find(image_classifier.APP, str(tmp_path), output_dir=str(tmp_path), min_lr=1.0, max_lr=0.5)
