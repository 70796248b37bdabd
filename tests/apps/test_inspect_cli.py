import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from apps import cli
from toolkit.models.transfer import build_image_classifier


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    keras.utils.set_random_seed(0)
    model = build_image_classifier((12, 12, 1), 3, width=2, dropout=0.0)
    path = str(root / "model.keras")
    model.save(path)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (20, 12, 12, 1)).astype("uint8")
    y = np.arange(20) % 3
    data = str(root / "data.npz")
    np.savez(data, x=x, y=y)
    return root, path, data


def test_inspect_stats_command_writes_table_json_and_heatmap(model_and_data, capsys):
    root, path, data = model_and_data
    out = str(root / "stats")
    assert cli.main(["inspect", "stats", str(root), "--data", data, "-o", out, "--batch-size", "8"]) == 0
    printed = capsys.readouterr().out
    assert "backbone/stage1_a_conv" in printed and "healthy" in printed
    with open(os.path.join(out, "layer_statistics.json")) as f:
        stats = json.load(f)
    assert stats["layers"][0]["name"] == "backbone/stage1_a_conv" and len(stats["layers"][0]["min"]) == 2
    assert os.path.getsize(os.path.join(out, "layer_statistics.png")) > 1000


def test_inspect_stats_reads_npy(model_and_data, capsys):
    root, path, data = model_and_data
    npy = str(root / "x.npy")
    np.save(npy, np.load(data)["x"])
    out = str(root / "stats_npy")
    assert cli.main(["inspect", "stats", path, "--data", npy, "-o", out, "--limit", "13", "--batch-size", "4"]) == 0
    printed = capsys.readouterr().out
    assert "backbone/stage1_a_conv" in printed and "predictions" in printed
    with open(os.path.join(out, "layer_statistics.json")) as f:
        stats = json.load(f)
    assert stats["layers"][0]["tap"] == "backbone/stage1_a_bn"  # conv -> BN -> ReLU: what the ReLU sees
    predictions = stats["layers"][-1]
    assert predictions["activation"] == "softmax" and set(predictions["status"]) == {"n/a"}
    # The same 13 images from the .npz give the same statistics.
    assert cli.main(["inspect", "stats", path, "--data", data, "-o", out + "z", "--limit", "13"]) == 0
    with open(os.path.join(out + "z", "layer_statistics.json")) as f:
        np.testing.assert_allclose(json.load(f)["layers"][0]["max"], stats["layers"][0]["max"], rtol=1e-5)
    assert cli.main(["inspect", "fgsm", path, "--data", npy, "-o", out]) == 2
    assert "needs labelled data" in capsys.readouterr().err


def _hand_built(root):
    """conv (1x1, 8 channels) -> ReLU -> GAP -> Dense(4, relu) -> Dense(3, softmax); on inputs in [0.5, 1.5]
    conv channel 2 is -1 everywhere (blocked), 5-7 are 0 (dead); hidden unit 1 is -2 (blocked), 3 is 0 (dead);
    every logit is negative."""
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.ReLU()(keras.layers.Conv2D(8, 1, name="conv")(inputs))
    x = keras.layers.Dense(4, activation="relu", name="hidden")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probs")(x))
    kernel, bias = np.ones((1, 1, 1, 8), "float32"), np.full(8, 0.1, "float32")
    kernel[..., [2, 5, 6, 7]], bias[2], bias[[5, 6, 7]] = 0.0, -1.0, 0.0
    model.get_layer("conv").set_weights([kernel, bias])
    kernel, bias = np.full((8, 4), 0.5, "float32"), np.zeros(4, "float32")
    kernel[:, [1, 3]], bias[1] = 0.0, -2.0
    model.get_layer("hidden").set_weights([kernel, bias])
    model.get_layer("probs").set_weights([np.full((4, 3), -0.1, "float32"), np.full(3, -3.0, "float32")])
    path, data = str(root / "hand.keras"), str(root / "hand.npy")
    model.save(path)
    np.save(data, np.random.default_rng(0).uniform(0.5, 1.5, (12, 6, 6, 1)).astype("float32"))
    return path, data


def test_inspect_stats_names_dead_and_blocked_channels_and_says_na_for_softmax(tmp_path, capsys):
    path, data = _hand_built(tmp_path)
    out = str(tmp_path / "out")
    assert cli.main(["inspect", "stats", path, "--data", data, "-o", out, "--heatmap-channels", "6"]) == 0
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.strip()}
    assert rows["conv"][1:6] == ["relu", "8", "3", "1", "4"] and rows["hidden"][1:6] == ["relu", "4", "1", "1", "2"]
    assert rows["probs"][1:6] == ["softmax", "3", "n/a", "n/a", "n/a"]
    assert "    dead: 5, 6, 7; blocked: 2\n" in printed and "    dead: 3; blocked: 1\n" in printed
    assert "blocked" not in " ".join(rows["probs"])
    json_path = os.path.join(out, "layer_statistics.json")
    assert f"note: heatmap shows the first 6 of up to 8 channels of 1 layer (conv); the JSON report has every " \
           f"channel: {json_path}" in printed
    with open(json_path) as f:
        stats = json.load(f)
    conv, hidden, probs = stats["layers"]
    assert (conv["dead"], conv["blocked"], hidden["dead"], hidden["blocked"]) == ([5, 6, 7], [2], [3], [1])
    assert probs["status"] == ["n/a"] * 3 and probs["counts"]["n/a"] == 3 and probs["blocked"] == []
    assert stats["problems"] == ["conv[2] blocked", "conv[5] dead", "conv[6] dead", "conv[7] dead",
                                 "hidden[1] blocked", "hidden[3] dead"]
    assert cli.main(["inspect", "stats", path, "--data", data, "-o", out, "--per-channel"]) == 0
    printed = capsys.readouterr().out
    assert "layer conv[2] min=-1.0000 max=-1.0000" in printed and printed.count(" n/a\n") == 3
    assert "note: heatmap" not in printed


@pytest.mark.parametrize("argv, png", [
    (["occlusion", "--patch", "4", "--stride", "4", "--index", "3"], "occlusion.png"),
    (["gradcam", "--class", "1"], "gradcam.png"),
    (["filters"], "filters.png"),
    (["maximize", "--layer", "backbone/stage1_a_conv", "--channel", "0", "--steps", "3", "--top-k", "4"],
     "top_images.png"),
    (["reconstruct", "--layer", "backbone/stage1_a_conv", "--steps", "3"], "reconstruction.png"),
    (["fgsm", "--epsilons", "0,8", "--method", "both", "--steps", "2"], "robustness.png"),
])
def test_inspect_visualisation_commands(model_and_data, argv, png, capsys):
    root, path, data = model_and_data
    out = str(root / argv[0])
    needs_data = argv[0] != "filters"
    extra = ["--data", data] if needs_data else []
    assert cli.main(["inspect", argv[0], path, "-o", out, *extra, *argv[1:]]) == 0
    assert os.path.getsize(os.path.join(out, png)) > 1000
    if argv[0] == "fgsm":
        with open(os.path.join(out, "robustness.json")) as f:
            assert json.load(f)["epsilons"] == [0.0, 8.0]


def test_inspect_errors_are_clear(model_and_data, capsys):
    root, path, data = model_and_data
    assert cli.main(["inspect", "stats", str(root / "nope.keras"), "--data", data]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["inspect", "stats", path, "--data", data, "--layers", "nope", "-o", str(root / "e")]) == 2
    assert "no layer 'nope'" in capsys.readouterr().err
    assert cli.main(["inspect", "maximize", path, "-o", str(root / "e")]) == 2
    assert "--class K, or --layer" in capsys.readouterr().err


def test_style_transfer_command(tmp_path, capsys):
    rng = np.random.default_rng(0)
    content, style = str(tmp_path / "c.png"), str(tmp_path / "s.png")
    Image.fromarray(rng.integers(0, 255, (30, 20, 3)).astype("uint8")).save(content)
    stripes = np.zeros((24, 24, 3), "uint8")
    stripes[::4] = 255
    Image.fromarray(stripes).save(style)
    out = str(tmp_path / "g.png")
    assert cli.main(["style-transfer", content, style, "-o", out, "--size", "24", "--steps", "2"]) == 0
    assert Image.open(out).size == (16, 24)
    assert "style loss" in capsys.readouterr().out


def test_image_classifier_monitor_layers_option(tmp_path):
    from apps import image_classifier

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (48, 8, 8, 1)).astype("uint8")
    y = np.arange(48) % 2
    run = image_classifier.train((x, y), epochs=2, batch_size=16, width=2, dense_units=8, augment="none",
                                 monitor_layers="all", monitor_every=2, run_dir=str(tmp_path), verbose=0)
    log = os.path.join(run.run_dir, "layer_statistics", "layer_statistics.json")
    with open(log) as f:
        records = json.load(f)
    assert [r["epoch"] for r in records] == [0, 2]
    assert "backbone/stage1_a_conv" in records[-1]["counts"]
    assert os.path.isfile(os.path.join(run.run_dir, "layer_statistics", "layer_statistics_epoch002.png"))
