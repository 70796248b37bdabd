"""Dead / blocked / n/a labels, channel indices and the heatmap, checked on models whose channels are set by hand."""

import json

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

from toolkit.inspect.statistics import (
    BLOCKED, DEAD, HEALTHY, NOT_APPLICABLE, build_debug_model, checks_for, layer_statistics,
)

CONV_DEAD, CONV_BLOCKED = [5, 6, 7], [2]
HIDDEN_DEAD, HIDDEN_BLOCKED = [3], [1]


def hand_built_model(fused_conv: bool = False):
    """1x1 conv (8 channels) -> ReLU -> GAP -> Dense(4, relu) -> Dense(3, softmax), weights set so that on inputs
    in [0.5, 1.5]: conv channel 2 is -1 everywhere (blocked), channels 5-7 are 0 (dead), the rest are x + c
    (healthy); hidden unit 1 is -2 (blocked), unit 3 is 0 (dead); every softmax logit is negative."""
    inputs = keras.Input((6, 6, 1))
    if fused_conv:
        x = keras.layers.Conv2D(8, 1, activation="relu", name="conv")(inputs)
    else:
        x = keras.layers.ReLU(name="relu")(keras.layers.Conv2D(8, 1, name="conv")(inputs))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(4, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs)
    kernel, bias = np.ones((1, 1, 1, 8), "float32"), np.arange(8, dtype="float32") * 0.1
    kernel[..., CONV_BLOCKED + CONV_DEAD], bias[CONV_BLOCKED], bias[CONV_DEAD] = 0.0, -1.0, 0.0
    model.get_layer("conv").set_weights([kernel, bias])
    kernel, bias = np.full((8, 4), 0.5, "float32"), np.zeros(4, "float32")
    kernel[:, HIDDEN_BLOCKED + HIDDEN_DEAD], bias[HIDDEN_BLOCKED] = 0.0, -2.0
    model.get_layer("hidden").set_weights([kernel, bias])
    model.get_layer("probs").set_weights([np.full((4, 3), -0.1, "float32"), np.full(3, -3.0, "float32")])
    return model


def hand_built_inputs(n=10):
    return np.random.default_rng(0).uniform(0.5, 1.5, (n, 6, 6, 1)).astype("float32")


@pytest.mark.parametrize("fused_conv", [False, True])
def test_constructed_dead_and_blocked_channels_are_found_and_softmax_is_not_applicable(fused_conv):
    report = layer_statistics(hand_built_model(fused_conv), hand_built_inputs(), batch_size=4)
    assert [s.name for s in report.layers] == ["conv", "hidden", "probs"]
    conv, hidden, probs = report.layers
    assert conv.channels(DEAD) == CONV_DEAD and conv.channels(BLOCKED) == CONV_BLOCKED
    assert conv.status.count(HEALTHY) == 4
    np.testing.assert_allclose(conv.max[CONV_BLOCKED + CONV_DEAD], [-1.0, 0, 0, 0], atol=1e-6)
    assert hidden.channels(DEAD) == HIDDEN_DEAD and hidden.channels(BLOCKED) == HIDDEN_BLOCKED
    np.testing.assert_allclose(hidden.max[1], -2.0, rtol=1e-6)  # fused ReLU: tapped before it
    # Every logit is negative (the old rules said "blocked"), but no ReLU follows: not applicable.
    assert probs.max.max() < 0 and probs.status == [NOT_APPLICABLE] * 3 and probs.activation == "softmax"
    assert report.counts()["probs"] == {DEAD: 0, BLOCKED: 0, HEALTHY: 0, NOT_APPLICABLE: 3}
    assert report.problems() == [("conv", 2, BLOCKED), ("conv", 5, DEAD), ("conv", 6, DEAD), ("conv", 7, DEAD),
                                 ("hidden", 1, BLOCKED), ("hidden", 3, DEAD)]
    assert (conv.activation, conv.tapped, hidden.tapped) == ("relu", "pre-activation", "pre-activation")


def test_table_lists_indices_compactly_and_json_in_full(tmp_path):
    report = layer_statistics(hand_built_model(), hand_built_inputs())
    table = report.table()
    rows = {line.split()[0]: line for line in table.splitlines() if line and line.split()[0] in ("conv", "probs")}
    assert rows["conv"].split()[1:6] == ["relu", "8", "3", "1", "4"]
    assert rows["probs"].split()[1:6] == ["softmax", "3", "n/a", "n/a", "n/a"]
    assert "blocked" not in rows["probs"]
    assert "    dead: 5, 6, 7; blocked: 2" in table and "    dead: 3; blocked: 1" in table
    assert "    dead: 5, 6 (+1 more); blocked: 2" in report.table(max_indices=2)
    assert "n/a: no ReLU-family activation follows" in table
    assert "layer probs[0] min=" in report.table(per_channel=True).splitlines()[-3]
    with open(report.save_json(str(tmp_path / "s.json"))) as f:
        data = json.load(f)
    conv, hidden, probs = data["layers"]
    assert (conv[DEAD], conv[BLOCKED], hidden[DEAD], hidden[BLOCKED]) == (CONV_DEAD, CONV_BLOCKED, [3], [1])
    assert probs["status"] == ["n/a"] * 3 and probs[DEAD] == probs[BLOCKED] == [] and probs["checks"] == []
    assert (conv["activation"], conv["tapped"], conv["tap"], conv["checks"]) == ("relu", "pre-activation", "conv",
                                                                                 ["dead", "blocked"])
    assert data["problems"][:2] == ["conv[2] blocked", "conv[5] dead"] and len(data["problems"]) == 6


def test_post_activation_keeps_dead_but_not_blocked():
    report = layer_statistics(hand_built_model(fused_conv=True), hand_built_inputs(), preactivation=False)
    conv = report["conv"]
    assert conv.tapped == "post-activation" and conv.checks == (DEAD,)
    # After the ReLU the blocked channel is all zeros, like the dead ones.
    assert conv.channels(DEAD) == sorted(CONV_BLOCKED + CONV_DEAD) and conv.channels(BLOCKED) == []
    assert "blocked n/a" in report.table()
    assert report["probs"].status == [NOT_APPLICABLE] * 3


def _bn_model(activation):
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(3, 1, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.Activation(activation, name="act")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(keras.layers.Flatten()(x)))
    model.get_layer("conv").set_weights([np.ones((1, 1, 1, 3), "float32")])  # conv output = x > 0
    # BN: (x - 0) / 1 * gamma + beta; channel 1 shifted below 0 (blocked at the ReLU), channel 2 kept positive.
    model.get_layer("bn").set_weights([np.ones(3, "float32"), np.array([0.0, -5.0, 0.0], "float32"),
                                       np.zeros(3, "float32"), np.ones(3, "float32")])
    return model


def test_conv_bn_relu_is_classified_at_the_relu_input():
    x = np.random.default_rng(0).uniform(0.5, 1.5, (6, 4, 4, 1)).astype("float32")
    report = layer_statistics(_bn_model("relu"), x, layers="conv,out")
    conv = report["conv"]
    assert conv.tap == "drop" and conv.status == [HEALTHY, BLOCKED, HEALTHY] and "bn" in conv.note
    np.testing.assert_allclose(conv.max[1], 1.5 / np.sqrt(1 + 1e-3) - 5, rtol=1e-3)
    assert report["out"].status == [NOT_APPLICABLE] * 2 and report["out"].activation == "linear"
    # Before the BN the conv output is positive everywhere: it says nothing about the ReLU.
    own = layer_statistics(_bn_model("relu"), x, layers="conv", preactivation=False)["conv"]
    assert own.min.min() > 0 and own.status == [NOT_APPLICABLE] * 3
    assert "1 of them n/a as tapped: BatchNormalization" in layer_statistics(
        _bn_model("relu"), x, layers="conv", preactivation=False).table()


@pytest.mark.parametrize("activation, status", [
    ("sigmoid", [NOT_APPLICABLE] * 3), ("tanh", [NOT_APPLICABLE] * 3), ("softmax", [NOT_APPLICABLE] * 3),
    ("elu", [HEALTHY] * 3), ("relu6", [HEALTHY, BLOCKED, HEALTHY]),
])
def test_only_relu_family_activations_get_classes(activation, status):
    x = np.random.default_rng(0).uniform(0.5, 1.5, (6, 4, 4, 1)).astype("float32")
    conv = layer_statistics(_bn_model(activation), x, layers="conv")["conv"]
    assert conv.activation == activation and conv.status == status


def test_activation_layers_and_leaky_relu():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(3, name="d1")(inputs)
    x = keras.layers.LeakyReLU(name="leaky")(x)
    x = keras.layers.Dense(3, activation="leaky_relu", name="d2")(x)
    model = keras.Model(inputs, keras.layers.Activation("sigmoid", name="sig")(x))
    model.get_layer("d1").set_weights([np.zeros((3, 3), "float32"), np.array([1.0, -1.0, 0.0], "float32")])
    report = layer_statistics(model, np.ones((4, 3), "float32"), layers="d1,leaky,d2,sig")
    d1, leaky, d2, sig = report.layers
    # Leaky ReLU passes values below 0: a negative channel is not blocked, a zero one is dead.
    assert (d1.activation, d1.checks, d1.status) == ("leaky_relu", (DEAD,), [HEALTHY, HEALTHY, DEAD])
    assert (leaky.tapped, leaky.status[2]) == ("post-activation", DEAD)
    assert d2.activation == "leaky_relu" and d2.tapped == "pre-activation"
    assert sig.status == [NOT_APPLICABLE] * 3
    assert checks_for("relu") == (DEAD, BLOCKED) and checks_for("linear") == ()


def test_debug_model_reused_and_rebuilt_keeps_the_taps():
    model = hand_built_model()
    debug = build_debug_model(model)
    assert debug[1].taps[2]["activation"] == "softmax"
    build_debug_model(model)  # a second debug model adds consumers outside the model's graph
    again = layer_statistics(model, hand_built_inputs(), debug_model=debug)
    assert again["conv"].channels(BLOCKED) == CONV_BLOCKED and again["probs"].status == [NOT_APPLICABLE] * 3
    # A plain list of names (a hand-made pair): the taps are worked out again.
    plain = layer_statistics(model, hand_built_inputs(), debug_model=(debug[0], list(debug[1])))
    assert plain["conv"].channels(BLOCKED) == CONV_BLOCKED and plain["probs"].status == [NOT_APPLICABLE] * 3


def _wide_report(channels):
    inputs = keras.Input((2, 2, 1))
    x = keras.layers.ReLU()(keras.layers.Conv2D(channels, 1, name="wide")(inputs))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 1, name="narrow", activation="relu")(x))
    kernel, bias = np.ones((1, 1, 1, channels), "float32"), np.zeros(channels, "float32")
    kernel[..., 200], bias[200] = 0.0, -1.0  # channel 200: blocked
    model.get_layer("wide").set_weights([kernel, bias])
    model.get_layer("narrow").set_weights([np.ones((1, 1, channels, 4), "float32"), np.zeros(4, "float32")])
    return layer_statistics(model, np.ones((2, 2, 2, 1), "float32"))


def _plotted(report, monkeypatch, tmp_path, **options):
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    report.plot(str(tmp_path / "h.png"), **options)
    ax = figures[0].axes[0]
    return ax.get_title(), np.ma.filled(ax.images[0].get_array(), np.nan)


def test_heatmap_shows_every_channel_in_wrapped_rows(monkeypatch, tmp_path):
    report = _wide_report(300)
    title, grid = _plotted(report, monkeypatch, tmp_path)
    assert report.heatmap_note() is None and title == "per-channel status"
    assert grid.shape == (3 + 1, 128)  # 300 channels in 3 rows of 128, then the 4-channel layer
    codes = grid[:3].ravel()
    assert codes[200] == 1 and np.all(codes[:300][np.arange(300) != 200] == 2) and np.isnan(codes[300:]).all()
    np.testing.assert_array_equal(grid[3, :4], [2, 2, 2, 2])


def test_heatmap_beyond_the_cap_says_so(monkeypatch, tmp_path):
    report = _wide_report(300)
    title, grid = _plotted(report, monkeypatch, tmp_path, max_channels=256)
    note = report.heatmap_note(256)
    assert note == "heatmap shows the first 256 of up to 300 channels of 1 layer (wide); the JSON report has " \
                   "every channel"
    assert note in title and grid.shape == (2 + 1, 128)
    assert len(report.to_dict()["layers"][0]["status"]) == 300
