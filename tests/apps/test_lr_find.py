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


class _Quadratic:
    """A stand-in app (the hooks `auto_lr_range` calls): linear regression, SGD, 32 batches an epoch."""

    name = "quadratic"

    def __init__(self, fail=False):
        self.fail = fail
        from apps.config import BaseConfig

        self.config_cls = BaseConfig

    def build_model(self, ctx):
        keras.utils.set_random_seed(0)  # the ramp's divergence point depends on the initial weights
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])

    def prepare(self, model, ctx):
        pass

    def fit(self, model, ctx, callbacks):
        if self.fail:
            raise AssertionError("the range test ran again")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(1024, 4)).astype("float32")
        model.compile(optimizer=keras.optimizers.SGD(ctx.config.learning_rate), loss="mse")
        model.fit(x, x @ np.array([1.0, -2.0, 0.5, 3.0], "float32"), batch_size=32, callbacks=callbacks, verbose=0)


def _ctx(tmp_path, **options):
    import tensorflow as tf

    from apps.base import RunContext
    from apps.config import BaseConfig, make_config

    config = make_config(BaseConfig, lr_schedule="cyclical", lr_range="auto", **options)
    return RunContext(config=config, run_dir=str(tmp_path), strategy=tf.distribute.get_strategy())


def test_auto_range_is_saved_reused_on_resume_and_warns_when_it_never_diverges(tmp_path):
    from apps.lr_find import auto_lr_range
    from toolkit.training.lr_finder import cyclical_bounds

    lines = []
    config = auto_lr_range(_Quadratic(), _ctx(tmp_path), print_fn=lines.append)
    record = json.loads((tmp_path / "lr_range.json").read_text())
    low, high = record["cyclical_range"]
    assert (low, high) == pytest.approx(cyclical_bounds(record["steepest"], record["minimum"]))
    assert config.lr_range == f"{low!r},{high!r}" and record["diverged"] and (tmp_path / "lr_range.png").is_file()
    assert "steepest descent at" in lines[0] and f"{low:.3g} .. {high:.3g}" in lines[0]
    # a resumed run reads the file back: the range test does not run again (this app's fit would fail)
    lines.clear()
    again = auto_lr_range(_Quadratic(fail=True), _ctx(tmp_path), print_fn=lines.append)
    assert again.lr_range == config.lr_range and "reusing the range test" in lines[0]
    # a ramp that stops far below divergence: a clear warning, printed and kept in the json
    lines.clear()
    auto_lr_range(_Quadratic(), _ctx(tmp_path / "low"), max_lr=1e-4, print_fn=lines.append)
    assert any("warning" in line and "never diverged up to max_lr=0.0001" in line for line in lines)
    assert "never diverged" in json.loads((tmp_path / "low" / "lr_range.json").read_text())["warning"]


def test_train_with_auto_range_feeds_the_found_bounds_to_the_schedule(tmp_path, capsys):
    """Through the app: the range test runs on the training data first, its bounds are the cyclical schedule's
    (here inside the discriminative optimiser of --lr-multipliers), and config.json records them."""
    from toolkit.training import CyclicalLearningRate
    from toolkit.training.discriminative import DiscriminativeOptimizer

    data = _images(tmp_path / "data", n=40)
    run = image_classifier.train(str(data), run_dir=str(tmp_path / "runs"), epochs=1, batch_size=4, width=4,
                                 dense_units=8, augment="none", verbose=0, patience=-1, lr_schedule="cyclical",
                                 lr_range="auto", lr_multipliers="0.5,1.0", optimizer="sgd", nesterov=True)
    out = capsys.readouterr().err  # training notes go to stderr
    record = json.loads(open(f"{run.run_dir}/lr_range.json").read())
    low, high = record["cyclical_range"]
    assert "--lr-range auto: range test over" in out and f"-> cyclical rate {low:.3g} .. {high:.3g}" in out
    optimizer = run.model.optimizer
    assert isinstance(optimizer, DiscriminativeOptimizer) and set(optimizer.multipliers.values()) == {0.5}
    schedule = optimizer.inner_optimizer._learning_rate
    assert isinstance(schedule, CyclicalLearningRate)
    assert (schedule.min_lr, schedule.max_lr) == pytest.approx((low, high))
    assert float(schedule(0)) == pytest.approx(low)
    saved = json.loads(open(f"{run.run_dir}/config.json").read())
    assert saved["lr_range"] == "auto" and saved["resolved"]["lr_range"] == pytest.approx([low, high])


def test_bad_range_values_are_refused():
    with pytest.raises(ValueError, match="pass --lr-schedule cyclical"):
        image_classifier.APP.make_config(lr_range="auto")
    with pytest.raises(ValueError, match="0 < LOW < HIGH. Received: lr_range='0.1'"):
        image_classifier.APP.make_config(lr_schedule="cyclical", lr_range="0.1")
    with pytest.raises(ValueError, match="lr_multipliers must be a comma list"):
        image_classifier.APP.make_config(lr_multipliers="0.1,0")
