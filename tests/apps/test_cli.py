"""The `toolkit` command's own behaviour: quiet TensorFlow start-up by default, `--log-level` to bring it back."""

import os
import subprocess
import sys

import pytest

NOISE = ("oneDNN custom operations", "cuda drivers", "cuInit", "absl::InitializeLog")


def _toolkit(*args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "apps.cli", *args], capture_output=True, text=True, timeout=240,
                          env=env, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def test_tensorflow_start_up_noise_is_hidden_unless_asked_for():
    quiet = _toolkit("vae", "export", "no-such-run", "--output", "out")  # imports TensorFlow, then fails
    assert quiet.returncode == 2 and "'no-such-run' is not a run directory" in quiet.stderr
    assert not [line for line in quiet.stderr.splitlines() if any(n in line for n in NOISE)], quiet.stderr
    loud = _toolkit("--log-level", "info", "vae", "export", "no-such-run", "--output", "out")
    assert loud.returncode == 2 and any(n in loud.stderr for n in NOISE)
    bad = _toolkit("--log-level", "loud", "vae", "--help")
    assert bad.returncode == 2 and "--log-level" in bad.stderr and "'loud'" in bad.stderr


def test_help_of_every_task_and_verb_never_imports_tensorflow():
    from apps.cli import TASKS

    script = (
        "import sys\nfrom apps.cli import main\nfor argv in sys.argv[1:]:\n    try:\n"
        "        main(argv.split())\n    except SystemExit as e:\n        assert e.code == 0, (argv, e.code)\n"
        "print('IMPORTED', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    commands = [f"{task} {verb} --help" for task in TASKS for verb in ("train", "evaluate", "export", "predict", "lr-find")]
    result = subprocess.run([sys.executable, "-c", script, "--help", *[f"{t} --help" for t in TASKS], *commands],
                            capture_output=True, text=True, timeout=120,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert result.returncode == 0, result.stderr
    assert "IMPORTED []" in result.stdout
    assert "--latent-dim" in result.stdout and "text-classifier/transformer  yes" in result.stdout
    assert "--epochs" not in result.stdout.split("usage: toolkit text-embedder train")[1].split("usage:")[0]


def test_predict_skips_an_unreadable_file_and_writes_where_asked(tmp_path, capsys):
    import json

    import numpy as np
    from PIL import Image

    from apps import cli, image_classifier

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 60, (24, 8, 8, 3)), rng.uniform(190, 255, (24, 8, 8, 3))]).astype("float32")
    run = image_classifier.train((x, np.array([0] * 24 + [1] * 24), ["dark", "light"]), epochs=2, batch_size=16,
                                 width=4, dense_units=8, augment="none", verbose=0, tensorboard=False,
                                 run_dir=str(tmp_path / "runs"), validation_split=0.0)
    Image.fromarray(np.full((8, 8, 3), 230, np.uint8)).save(tmp_path / "light.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    code = cli.main(["image-classifier", "predict", run.run_dir, str(tmp_path / "broken.png"),
                     str(tmp_path / "light.png"), "--json", "--top-k", "2", "--output", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0 and f"skipped {tmp_path / 'broken.png'}" in captured.err
    [prediction] = json.loads(captured.out)
    assert prediction["input"] == str(tmp_path / "light.png")
    assert set(prediction["scores"]) == {"dark", "light"}
    assert sum(prediction["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert [t["label"] for t in prediction["top"]] == sorted(prediction["scores"], key=prediction["scores"].get,
                                                            reverse=True)
    assert cli.main(["image-classifier", "predict", run.run_dir, str(tmp_path / "broken.png")]) == 2
    assert "none of the 1 inputs could be read" in capsys.readouterr().err


def test_errors_name_the_flag_on_the_command_line_and_the_argument_in_python(tmp_path, capsys):
    from apps import cli, text_classifier
    from apps.cli import cli_words
    from toolkit.data import DataError
    from toolkit.data.images import parse_image_size

    path = tmp_path / "tickets.csv"
    path.write_text("body,queue\nprinter broken,it\n")
    assert cli.main(["text-classifier", "train", "--data", str(path), "--run-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "no column 'text'" in err and "--text-column / --label-column" in err and "text_column=" not in err
    with pytest.raises(DataError, match="text_column= / label_column="):
        text_classifier.train(str(path), run_dir=str(tmp_path / "runs"))
    assert cli_words("sizes differ; pass image_size=(H, W) to resize them") == "sizes differ; pass --image-size HxW to resize them"
    assert parse_image_size((64, 48)) == (64, 48) and parse_image_size("64x48") == (64, 48)
    with pytest.raises(ValueError, match=r"HxW \(e.g. 96x96\) or \(H, W\)"):
        parse_image_size((64,))


def test_offline_imagenet_weights_and_a_missing_tpu_are_one_line_errors(tmp_path, capsys, monkeypatch):
    from keras.src.utils import file_utils

    from apps import cli

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None -- [Errno -3] no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    import numpy as np
    from PIL import Image

    folder = tmp_path / "photos"
    for index, name in enumerate(("a", "b")):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((32, 32, 3), 90 * index + i, np.uint8)).save(folder / name / f"{i}.png")
    code = cli.main(["image-classifier", "train", "--data", str(folder), "--backbone", "MobileNetV2", "--weights",
                     "imagenet", "--run-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "'imagenet' weights need a network connection" in err and "--weights PATH" in err
    code = cli.main(["image-classifier", "train", "--data", str(folder), "--strategy", "tpu",
                     "--run-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "strategy 'tpu': no TPU found" in err and "Traceback" not in err
