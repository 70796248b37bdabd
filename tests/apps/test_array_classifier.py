"""The array-classifier app: rank dispatch, option checks, data errors naming the file / key (API and CLI), and a
short training run on easy sine waves that must beat chance by a clear margin. Export, evaluate and predict in new
processes are the conformance cells (tests/conformance/test_array_classifier.py)."""

import json
import os

import numpy as np
import pytest

from apps import array_classifier, cli
from apps.base import RunContext
from toolkit.data import DataError
from toolkit.data.arrays import bright_cubes, sine_waves

APP = array_classifier.APP
QUIET = {"verbose": 0, "tensorboard": False}


def test_the_rank_of_one_sample_picks_the_model():
    config = APP.make_config(filters="4", validation_split=0.25)
    x, y, names = sine_waves(4, length=16)
    sequences = APP.load_data((x, y, names), config)
    model = APP.build_model(RunContext(config=config, data=sequences))
    assert (sequences.model, model.name, model.input_shape) == ("conv1d", "conv1d_classifier", (None, 16, 2))
    v, vy, vnames = bright_cubes(4, side=6)
    volumes = APP.load_data((v, vy, vnames), config)
    model = APP.build_model(RunContext(config=config, data=volumes))
    assert (volumes.model, model.name, model.input_shape) == ("conv3d", "conv3d_classifier", (None, 6, 6, 6, 1))
    standardize = model.get_layer("standardize")  # the training split's channel statistics, frozen
    train_x = np.concatenate([b[0].numpy() for b in volumes.train])
    assert not standardize.trainable and np.allclose(standardize.moving_mean.numpy(), [train_x.mean()], atol=1e-5)
    assert np.allclose(standardize.moving_variance.numpy(), [train_x.var()], atol=1e-5)
    with pytest.raises(DataError, match=r"model='conv3d' needs samples of shape \(D, H, W, C\); the data has samples "
                                        r"of shape \(16, 2\) \(conv1d\)"):
        APP.load_data((x, y, names), APP.make_config(model="conv3d"))


def test_option_checks():
    with pytest.raises(ValueError, match=r"filters must be a comma list of positive integers. Received: filters='8,x'"):
        APP.make_config(filters="8,x")
    with pytest.raises(ValueError, match=r"kernel_size must be >= 0"):
        APP.make_config(kernel_size=-1)
    with pytest.raises(ValueError, match=r"model must be one of \('auto', 'conv1d', 'conv3d'\)"):
        APP.make_config(model="lstm")
    assert APP.kinds() == ["array-classifier/conv1d", "array-classifier/conv3d"]


def test_cli_names_the_missing_key_without_a_traceback(tmp_path, capsys):
    x, _, _ = sine_waves(3, length=8)
    np.savez(tmp_path / "signals.npz", x=x, labels=np.zeros(6))
    code = cli.main(["array-classifier", "train", "--data", str(tmp_path / "signals.npz"), "--run-dir",
                     str(tmp_path / "runs"), "--no-tensorboard", "--verbose", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "signals.npz' has no array 'y' (found keys ['x', 'labels'])" in err, err
    assert "Traceback" not in err


def test_cli_help_explains_the_data_format(capsys):
    with pytest.raises(SystemExit):
        cli.main(["array-classifier", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "a .npz file with arrays x" in out and "class sub-folders of .npy files" in out
    assert "(T, C) or (T,) (one channel) a Conv1D classifier, (D, H, W, C) a Conv3D one" in out


def test_training_on_easy_sine_waves_beats_chance(tmp_path):
    x, y, names = sine_waves(40, frequencies=(2.0, 6.0), length=32, seed=1)
    held_x, held_y, _ = sine_waves(20, frequencies=(2.0, 6.0), length=32, seed=2)
    run = array_classifier.train((x, y, names), test_data=(held_x, held_y, names), epochs=6, filters="8,16",
                                 batch_size=16, learning_rate=3e-3, validation_split=0.2, run_dir=str(tmp_path),
                                 **QUIET)
    assert run.metrics["evaluated_on"] == "test" and run.metrics["per_class"]["6hz"]["support"] == 20
    assert run.metrics["accuracy"] >= 0.85, run.metrics["accuracy"]  # chance: 0.5
    assert run.config.model == "conv1d" and run.info["sample_shape"] == [32, 2]
    rows = array_classifier.predict(run, [held_x[0], held_x[-1]])
    assert [r["input"] for r in rows] == ["input0", "input1"] and rows[0]["label"] in names
    assert set(rows[0]["scores"]) == set(names) and abs(sum(rows[0]["scores"].values()) - 1) < 1e-4
    with pytest.raises(DataError, match=r"input0: sample shape \(16, 2\), the model takes \(32, 2\)"):
        array_classifier.predict(run, [held_x[0][:16]])
    reloaded = APP.load_run(run.run_dir)
    assert reloaded.config.model == "conv1d"  # `auto` resolved from the run's info
    assert APP.evaluate(reloaded, (held_x, held_y, names))["accuracy"] == run.metrics["accuracy"]


def test_quantized_export_is_guarded_on_held_out_arrays(tmp_path):
    """A run trained from a .npz path, re-opened from its directory: tflite-int8 calibrates on the recorded
    training arrays and is scored on the held-out split through LiteRT; conv3d's tflite is refused up front."""
    from toolkit.export import read_metadata
    from toolkit.export.formats import check_export_options

    x, y, names = sine_waves(24, frequencies=(2.0, 6.0), length=32, seed=3)
    np.savez(tmp_path / "signals.npz", x=x, y=y, class_names=np.array(names))
    run = array_classifier.train(str(tmp_path / "signals.npz"), epochs=3, filters="8", batch_size=8,
                                 validation_split=0.25, run_dir=str(tmp_path / "runs"), **QUIET)
    path = APP.load_run(run.run_dir).export(str(tmp_path / "export"), formats=("saved_model", "tflite-int8"),
                                            max_quantization_drop=100.0)
    report = read_metadata(path)["quantization"]
    entry = report["formats"]["tflite-int8"]
    assert report["metric"] == "accuracy" and report["calibration_examples"] == 36, report
    assert abs(report["float"] - run.metrics["accuracy"]) < 1e-6 and 0.0 <= entry["metric"] <= 1.0, report
    assert os.path.isfile(os.path.join(path, "model-int8.tflite")) and entry["published"]
    with pytest.raises(ValueError, match=r"array-classifier/conv3d cannot export tflite-int8 for target cpu: TFLite "
                                         r"has no 3D pooling kernel"):
        check_export_options("array-classifier/conv3d", "cpu", "saved_model,tflite-int8")


def test_an_interrupted_run_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    import keras

    class Interrupt(keras.callbacks.Callback):  # test-only: a crash after epoch 2's checkpoint
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("crash")

    x, y, names = sine_waves(8, length=16)
    options = dict(epochs=4, filters="4", batch_size=8, patience=-1, run_dir=str(tmp_path), **QUIET)
    original = APP.callbacks
    monkeypatch.setattr(APP, "callbacks", lambda ctx: original(ctx) + [Interrupt()])
    with pytest.raises(RuntimeError, match="crash"):
        array_classifier.train((x, y, names), **options)
    monkeypatch.setattr(APP, "callbacks", original)
    run = array_classifier.train((x, y, names), **options)
    with open(os.path.join(run.run_dir, "status.json")) as f:
        status = json.load(f)
    assert status["status"] == "finished" and status["resumed"] is True
    assert len(run.history["loss"]) == 4 and os.listdir(str(tmp_path / "array-classifier")) == [
        os.path.basename(run.run_dir)]
