"""`toolkit serve` as a real process (ready line, SIGTERM -> graceful stop) and `toolkit predict URL|DIR`."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from apps import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    from toolkit.export import encode_png, export, image_classification_adapter, load
    from toolkit.models.transfer import build_image_classifier

    keras.utils.set_random_seed(3)
    model = build_image_classifier((28, 28, 1), 3, width=4)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 40.0, bias])
    base = tmp_path_factory.mktemp("cli") / "models"
    images = np.random.default_rng(3).integers(0, 255, (2, 28, 28, 1))
    path = export(model, str(base / "digits"), adapter=image_classification_adapter(model, ["x", "y", "z"], images))
    files = []
    for i, image in enumerate(images):
        files.append(str(base.parent / f"img{i}.png"))
        with open(files[-1], "wb") as f:
            f.write(encode_png(image))
    expected = load(path)({"images": [open(f, "rb").read() for f in files]})
    return {"base": str(base), "path": path, "files": files, "expected": expected}


def test_help_explains_the_commands(capsys):
    for command, needles in [("serve", ["--model-base-path", "--batching", "--auth-token", ":predict", "127.0.0.1",
                                        "PredictionService", "--poll-interval", "b64"]),
                             ("predict", ["URL_OR_DIR", "--model-name", ".npy", "savedmodels/NAME"])]:
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        assert all(n in text for n in needles), [n for n in needles if n not in text]


def test_predict_from_a_folder(exported, capsys):
    assert cli.main(["predict", os.path.dirname(exported["path"]), *exported["files"], "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["labels"] for r in rows] == [label.decode() for label in exported["expected"]["labels"]]
    np.testing.assert_allclose([r["scores"] for r in rows], exported["expected"]["scores"], atol=1e-6)


def test_serve_process_predict_url_and_graceful_stop(exported, capsys):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.cli", "serve", "--model-base-path", exported["base"], "--rest-port", "0",
         "--grpc-port", "0", "--poll-interval", "0", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(line.startswith("serving ") for line in lines):
            assert process.poll() is None, "".join(lines)
            time.sleep(0.1)
        ready = next(line for line in lines if line.startswith("serving "))
        assert ready.startswith("serving digits: REST on http://127.0.0.1:")
        url = ready.split("REST on ")[1].split(",")[0].strip()

        assert cli.main(["predict", url, *exported["files"]]) == 0  # the one served model is picked
        out = capsys.readouterr().out.strip().splitlines()
        for line, file, label, scores in zip(out, exported["files"], exported["expected"]["labels"],
                                             exported["expected"]["scores"]):
            assert line == f"{file}: {label.decode()}  score={scores.max():.4f}"
        assert cli.main(["predict", url + "/v1/models/digits/versions/1", exported["files"][0], "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["classes"] == int(exported["expected"]["classes"][0])
        assert cli.main(["predict", url + "/v1/models/nope", exported["files"][0]]) == 2
        assert "HTTP 404" in capsys.readouterr().err
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        reader.join(5)
    assert code == 0, "".join(lines)
    assert any(line.strip() == "server stopped" for line in lines), "".join(lines)
