"""MC dropout through the image classifier: predict on a Run and on an export, the exported `mc_dropout`
signature in a TensorFlow-only process, and `toolkit predict --mc-samples`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from apps import cli, image_classifier
from tests.apps.test_image_classifier import TINY, write_folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mc")
    folder = write_folder(str(root / "data"), per_class=8)
    return image_classifier.train(folder, run_dir=str(root / "runs"), **{**TINY, "epochs": 1}, dropout=0.5,
                                  mc_samples=6), folder


def test_predict_on_a_run_with_mc_dropout(run):
    run, folder = run
    image = os.path.join(folder, "dark", "0.png")
    live = image_classifier.predict(run, [image], mc_samples=50)[0]
    assert live["mc_samples"] == 50 and set(live["variance"]) == {"bright", "dark"}
    assert max(live["variance"].values()) > 0  # dropout 0.5 before the output layer: the passes differ
    plain = image_classifier.predict(run, [image])[0]
    assert abs(live["scores"]["dark"] - plain["scores"]["dark"]) < 0.2  # the mean stays near the plain output
    assert "mc_dropout" not in run.adapter.extra_signatures or run.adapter.metadata["mc_dropout_samples"] == 6


@pytest.mark.slow  # an export (parity checks, warm-up file) and a fresh TensorFlow process: ~1 min on 2 cores
def test_the_exported_signature_in_tensorflow_alone_and_predict_mc_samples(run, tmp_path, capsys):
    run, folder = run
    image = os.path.join(folder, "dark", "0.png")
    path = run.export(str(tmp_path / "sm" / "mc"))
    exported = image_classifier.predict(path, [image], mc_samples=6)[0]
    again = image_classifier.predict(path, [image], mc_samples=6)[0]
    assert exported["variance"] == again["variance"] and max(exported["variance"].values()) > 0  # seeded masks
    with pytest.raises(ValueError, match="runs T=6 passes"):
        image_classifier.predict(path, [image], mc_samples=7)
    # the signature in a process that imports TensorFlow only (no toolkit, no keras model code)
    script = ("import sys, json, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); "
              "f = m.signatures['mc_dropout']; out = f(images=tf.constant([open(sys.argv[2], 'rb').read()])); "
              "print(json.dumps({k: v.numpy().tolist() for k, v in out.items() if k != 'labels'}))")
    result = subprocess.run([sys.executable, "-c", script, path, image], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    assert np.asarray(outputs["mean"]).shape == (1, 2) and np.asarray(outputs["variance"]).shape == (1, 2)
    np.testing.assert_allclose(outputs["mean"][0], [exported["scores"]["bright"], exported["scores"]["dark"]],
                               rtol=1e-4, atol=1e-6)
    capsys.readouterr()
    assert cli.main(["predict", path, image, "--mc-samples", "6"]) == 0
    assert "variance=" in capsys.readouterr().out
    assert cli.main(["predict", path, image, "--mc-samples", "3"]) != 0
    assert "runs 6 passes (T is fixed at export" in capsys.readouterr().err


def test_negative_samples_are_refused():
    with pytest.raises(ValueError, match="mc_samples must be >= 0"):
        image_classifier.APP.make_config(mc_samples=-1)
