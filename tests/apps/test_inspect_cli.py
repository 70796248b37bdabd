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
