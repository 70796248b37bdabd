import logging
import os

import keras
import numpy as np
import pytest

from toolkit.inspect.statistics import (
    BLOCKED, DEAD, HEALTHY, NOT_APPLICABLE, ChannelStatistics, LayerStatisticsMonitor, build_debug_model,
    classify_channels, layer_statistics, parse_debug_output,
)
from toolkit.models.transfer import build_image_classifier


def _conv_model(activation=None):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, activation=activation, name="conv")(inputs)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, name="dense")(x)
    return keras.Model(inputs, outputs)


def test_statistics_match_numpy_and_streaming_equals_one_batch(rng):
    model = _conv_model()
    x = rng.normal(size=(37, 8, 8, 2)).astype("float32")
    x[:, :2] = 0.0  # some exact zeros in the input -> zeros in relu
    raw, names = build_debug_model(model, ["conv", "relu", "dense"], reduce=False)
    activations = raw.predict(x, verbose=0)
    streamed = layer_statistics(model, x, layers=["conv", "relu", "dense"], batch_size=5)
    whole = layer_statistics(model, x, layers=["conv", "relu", "dense"], batch_size=len(x))
    assert names == ["conv", "relu", "dense"]
    for name, act in zip(names, activations):
        flat = act.reshape(-1, act.shape[-1]).astype("float64")
        for report in (streamed, whole):
            s = report[name]
            np.testing.assert_allclose(s.min, flat.min(0), rtol=1e-6)
            np.testing.assert_allclose(s.max, flat.max(0), rtol=1e-6)
            np.testing.assert_allclose(s.mean, flat.mean(0), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(s.std, flat.std(0), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(s.zero_fraction, (flat == 0).mean(0))
            assert s.count[0] == flat.shape[0]
    assert streamed["relu"].zero_fraction.min() > 0.1
    for a, b in zip(streamed.layers, whole.layers):
        for field in ("min", "max", "mean", "std", "zero_fraction"):
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", [None, "relu"])
def test_zeroed_filter_is_dead_and_negative_filter_is_blocked(rng, activation):
    model = _conv_model(activation)
    conv = model.get_layer("conv")
    kernel, bias = conv.get_weights()
    kernel[..., 1] = 0.0
    bias[1] = 0.0  # filter 1: zero everywhere -> dead
    kernel[..., 2] = 0.0
    bias[2] = -1.5  # filter 2: -1.5 everywhere, ReLU always gives 0 -> blocked
    bias[[0, 3]] = 0.0
    conv.set_weights([kernel, bias])
    x = rng.normal(size=(16, 8, 8, 2)).astype("float32")
    report = layer_statistics(model, x, batch_size=4)
    stats = report["conv"]
    assert stats.status == [HEALTHY, DEAD, BLOCKED, HEALTHY]
    assert report.counts()["conv"] == {DEAD: 1, BLOCKED: 1, HEALTHY: 2, NOT_APPLICABLE: 0}
    assert (stats.activation, stats.tapped) == ("relu", "pre-activation")
    assert report["dense"].status == [NOT_APPLICABLE] * 3  # a linear output: no ReLU follows
    np.testing.assert_allclose(stats.max[2], -1.5, rtol=1e-6)  # pre-activation, even with a fused ReLU
    assert ("conv", 1, DEAD) in report.problems() and ("conv", 2, BLOCKED) in report.problems()
    # After the ReLU both look the same: all zeros.
    relu = layer_statistics(model, x, layers=["relu"])["relu"]
    np.testing.assert_array_equal(relu.zero_fraction[[1, 2]], [1.0, 1.0])


def test_lecture_notes_example_output_classifies_as_the_notes_say():
    text = """layer conv2d_0_m[0] min=-0.0030 max=0.0030
layer conv2d_0_m[1] min=-2.4972 max=1.5494
layer conv2d_0_m[2] min=-2.4191 max=1.7075
layer conv2d_0_m[7] min=-1.8190 max=-1.4244"""
    rows = parse_debug_output(text)
    assert [(r[1], r[4]) for r in rows] == [(0, DEAD), (1, HEALTHY), (2, HEALTHY), (7, BLOCKED)]
    # Thresholds are settable: a stricter dead epsilon makes channel 0 healthy.
    assert classify_channels([-0.003], [0.003], dead_threshold=0.001) == [HEALTHY]
    with pytest.raises(ValueError, match="no 'layer NAME"):
        parse_debug_output("nothing here")


def test_nested_backbone_layers_are_tapped(rng):
    model = build_image_classifier((12, 12, 1), 3, width=2, dropout=0.0)
    x = rng.integers(0, 255, (6, 12, 12, 1)).astype("float32")
    report = layer_statistics(model, x)
    names = [s.name for s in report.layers]
    assert "backbone/stage1_a_conv" in names and "predictions" in names
    backbone = model.get_layer("backbone")
    normalised = model.get_layer("normalization")(x)
    # conv -> BN -> ReLU: measured at the BN output (inference mode), which is what the ReLU sees.
    bn = keras.Model(backbone.inputs, backbone.get_layer("stage2_b_bn").output)(normalised, training=False).numpy()
    np.testing.assert_allclose(report["stage2_b_conv"].max, bn.reshape(-1, bn.shape[-1]).max(0), rtol=1e-5)
    assert report["stage2_b_conv"].tap == "backbone/stage2_b_bn" and report["stage2_b_conv"].classified
    assert report["predictions"].activation == "softmax" and not report["predictions"].classified
    # The layer's own output (post-activation mode) is the conv's, before BN: the ReLU rules do not apply there.
    own = layer_statistics(model, x, layers=["stage2_b_conv"], preactivation=False)["stage2_b_conv"]
    direct = keras.Model(backbone.inputs, backbone.get_layer("stage2_b_conv").output)(normalised).numpy()
    np.testing.assert_allclose(own.max, direct.reshape(-1, direct.shape[-1]).max(0), rtol=1e-5)
    assert own.status == [NOT_APPLICABLE] * 4 and "stage2_b_bn" in own.note


def test_report_outputs_and_serialization(tmp_path, rng):
    model = _conv_model("relu")
    x = rng.normal(size=(4, 8, 8, 2)).astype("float32")
    report = layer_statistics(model, x)
    assert "conv" in report.table() and "layer conv[0] min=" in report.table(per_channel=True)
    assert os.path.getsize(report.plot(str(tmp_path / "h.png"))) > 1000
    data = report.to_dict()
    assert data["layers"][0]["status"] == report["conv"].status
    assert os.path.isfile(report.save_json(str(tmp_path / "s.json")))
    debug, _ = build_debug_model(model)
    path = str(tmp_path / "debug.keras")
    debug.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(debug(x), loaded(x)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    layer = ChannelStatistics(zero_tol=0.5)
    assert ChannelStatistics.from_config(layer.get_config()).zero_tol == 0.5
    with pytest.raises(ValueError, match="no layer 'nope'"):
        layer_statistics(model, x, layers=["nope"])


class _KillFilter(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            conv = self.model.get_layer("conv")
            kernel, bias = conv.get_weights()
            kernel[..., 3], bias[3] = 0.0, 0.0
            conv.set_weights([kernel, bias])


def test_monitor_records_every_n_epochs_and_warns_when_filters_die(tmp_path, rng, caplog):
    model = _conv_model()
    model.compile("sgd", "mse")
    x = rng.normal(size=(16, 8, 8, 2)).astype("float32")
    y = rng.normal(size=(16, 3)).astype("float32")
    monitor = LayerStatisticsMonitor(x, layers=["conv"], every=1, log_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING):
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[_KillFilter(), monitor])
    assert [r["epoch"] for r in monitor.records] == [0, 1, 2]
    assert monitor.records[0]["counts"]["conv"][DEAD] == 0
    assert monitor.records[1]["new_problems"] == [["conv", 3, DEAD]]
    assert monitor.records[2]["new_problems"] == []
    assert "filters died" in caplog.text and "conv [3:dead]" in caplog.text
    assert os.path.isfile(tmp_path / "layer_statistics.json")
    assert os.path.isfile(tmp_path / "layer_statistics_epoch001.png")
    assert LayerStatisticsMonitor.from_config(monitor.get_config()).every == 1
