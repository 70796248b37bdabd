"""Training runs tell their story: early stops, phase boundaries, sample predictions, PR curves, legends,
class names in inspect plots, why a run failed."""

import csv
import json
import os

import keras
import numpy as np
from PIL import Image

from apps import cli, image_classifier, image_segmenter, object_detector
from toolkit.data.mask_writer import overlay
from toolkit.data.samples import digit_scenes
from toolkit.data.scenes import digit_scenes as detection_scenes
from toolkit.metrics import plot_history
from toolkit.metrics import plots as metric_plots
from toolkit.metrics.detection import pr_curves
from toolkit.models.transfer import build_image_classifier
from toolkit.training.fault_tolerance import write_status

QUIET = dict(verbose=0, tensorboard=False, patience=-1, resume="never")


def _status(run_dir):
    with open(os.path.join(run_dir, "status.json")) as f:
        return json.load(f)


def test_max_minutes_says_it_stopped_and_the_detector_run_draws_samples_and_pr_curves(tmp_path, capsys):
    scenes = detection_scenes(4, image_size=32, objects=(1, 1), object_size=(10, 14), classes=[0, 1], seed=1)
    run = object_detector.train(scenes, test_data=scenes, model="yolo", run_dir=str(tmp_path / "runs"),
                                image_size="32x32", epochs=3, repeat=2, batch_size=4, validation_split=0.0,
                                augment="none", width=4, anchors=1, max_minutes=1e-6, **QUIET)
    message = run.metrics["stopped_early"]
    assert message.startswith("stopped after 1 of 3 epochs: --max-minutes 1e-06 reached"), message
    assert message in capsys.readouterr().out
    assert _status(run.run_dir)["note"] == message and _status(run.run_dir)["status"] == "finished"
    with open(os.path.join(run.run_dir, "metrics.json")) as f:
        assert json.load(f)["stopped_early"] == message
    assert cli.main(["runs", "list", "--run-dir", str(tmp_path / "runs")]) == 0
    assert "note: stopped after 1 of 3 epochs" in capsys.readouterr().out
    # sample predictions (held-out images with boxes) and the PR curves of the same scoring
    for name in ("pr_curves.png", "samples/detections_0.png", "samples/detections_3.png", "history.png"):
        assert os.path.getsize(os.path.join(run.run_dir, name)) > 100, name
    assert run.plots["pr_curves"].endswith("pr_curves.png") and "sample_0" in run.plots
    curves = run.metrics["pr_curve_50"]
    assert set(curves) <= {"0", "1"} and curves
    for curve in curves.values():
        assert len(curve["precision"]) == len(curve["recall"]) <= 50 and curve["instances"] >= 1
        assert curve["recall"] == sorted(curve["recall"])
    assert "pr_curve_50" not in object_detector.APP.summary(run.metrics)


def test_no_time_limit_no_note(tmp_path):
    limit = object_detector.TimeLimit(3600)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=2, verbose=0, callbacks=[limit])
    assert limit.message is None


def test_pr_curves_by_hand():
    gt = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([0, 1])), (np.array([[0, 0, 8, 8]]), np.array([0]))]
    det = [(np.array([[0, 0, 10, 10], [21, 21, 30, 30], [40, 40, 50, 50]]), np.array([0.9, 0.8, 0.7]),
            np.array([0, 1, 0])),
           (np.array([[30, 30, 38, 38], [0, 0, 8, 8]]), np.array([0.95, 0.3]), np.array([0, 0]))]
    curves = pr_curves(gt, det, ["a", "b", "c"])
    assert set(curves) == {"a", "b"}  # no ground truth for "c"
    # class a, by score: 0.95 miss, 0.9 hit, 0.7 miss, 0.3 hit
    assert curves["a"]["precision"] == [1.0, 0.0, 0.5, 0.3333, 0.5]
    assert curves["a"]["recall"] == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert curves["a"]["ap"] == 0.5 and curves["a"]["instances"] == 2
    assert curves["b"]["ap"] == 1.0


def test_two_phase_fine_tuning_marks_its_boundary(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.integers(0, 60, (8, 8, 8, 1)), rng.integers(190, 250, (8, 8, 8, 1))]).astype("uint8")
    y = np.repeat([0, 1], 8)
    run = image_classifier.train((x, y), run_dir=str(tmp_path / "runs"), epochs=2, batch_size=8, width=4,
                                 dense_units=8, dropout=0.0, augment="none", validation_split=0.25,
                                 training="fine-tune", fine_tune_layers=-1, fine_tune_epochs=1, **QUIET)
    assert run.history["phase"] == [1, 1, 2] and len(run.history["loss"]) == 3
    assert run.info["fine_tune_from_epoch"] == 3
    with open(os.path.join(run.run_dir, "info.json")) as f:
        assert json.load(f)["fine_tune_from_epoch"] == 3
    with open(os.path.join(run.run_dir, "history.csv")) as f:
        assert [row["phase"] for row in csv.DictReader(f)] == ["1", "1", "2"]
    assert os.path.getsize(os.path.join(run.run_dir, "history.png")) > 1000


def test_plot_history_draws_labelled_phase_lines(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(metric_plots, "save_figure", lambda fig, path: figures.append(fig) or path)
    history = {"loss": [3.0, 2.0, 1.0, 0.5], "val_loss": [3.1, 2.2, 1.5, 1.0], "phase": [1, 1, 2, 2]}
    plot_history(history, str(tmp_path / "a.png"), phase_boundaries={2: "fine-tune"})
    plot_history(history, str(tmp_path / "b.png"))  # boundaries read from history["phase"]
    plot_history({"loss": [1.0, 0.5]}, str(tmp_path / "c.png"))
    (a,), (b,), (c,) = (fig.axes for fig in figures)
    assert [t.get_text() for t in a.texts] == ["fine-tune"] and [t.get_text() for t in b.texts] == ["phase 2"]
    assert a.get_title() == "loss"  # "phase" is not plotted as a metric
    vertical = [line for line in a.lines if len(set(line.get_xdata())) == 1]
    assert len(vertical) == 1 and vertical[0].get_xdata()[0] == 2.5
    assert not c.texts


def test_segmenter_run_saves_sample_overlays_and_overlays_have_a_legend(tmp_path):
    scenes = digit_scenes(8, image_size=16, objects=(1, 1), object_size=(6, 10), classes=[0, 1], seed=3)
    names = ["background", "zero", "one"]
    run = image_segmenter.train((scenes.images, scenes.masks, names), run_dir=str(tmp_path / "runs"), epochs=1,
                                batch_size=4, filters="4", bottleneck=8, validation_split=0.25, augment="none",
                                **QUIET)
    sample = np.asarray(Image.open(os.path.join(run.run_dir, "samples", "overlay_0.png")))
    assert sample.shape[0] > 16 and sample.shape[1] >= 2 * 16 and "sample_0" in run.plots
    image_file = str(tmp_path / "scene.png")
    Image.fromarray(np.asarray(scenes.images[0], np.uint8)).save(image_file)
    [result] = image_segmenter.predict(run, [image_file], output_dir=str(tmp_path / "out"))
    assert np.asarray(Image.open(result["overlay"])).shape[0] > 16  # the legend strip under the image
    assert np.asarray(Image.open(result["mask"])).shape == (16, 16)  # the plain mask is unchanged
    # the library function: no names, no legend; with names, the image on top and a strip below
    image, mask = np.full((8, 8, 3), 100, np.uint8), np.zeros((8, 8), np.int64)
    mask[2:5, 2:5] = 2
    assert overlay(image, mask).shape == (8, 8, 3)
    with_names = overlay(image, mask, class_names=names)
    assert with_names.shape[0] > 8 and (with_names[:8, :8] == overlay(image, mask)).all()
    strip = with_names[8:]
    colour = overlay(np.zeros_like(image), mask, alpha=1.0)[3, 3]
    assert (strip == colour).all(-1).any()  # the class's swatch


def test_inspect_plots_use_the_run_class_names(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    build_image_classifier((8, 8, 1), 3, width=2, dropout=0.0).save(str(run_dir / "model.keras"))
    with open(run_dir / "info.json", "w") as f:
        json.dump({"class_names": ["cat", "dog", "bird"]}, f)
    data = str(tmp_path / "data.npz")
    np.savez(data, x=np.random.default_rng(0).integers(0, 255, (4, 8, 8, 1)).astype("uint8"), y=np.arange(4) % 3)
    out = str(tmp_path / "out")
    assert cli.main(["inspect", "gradcam", str(run_dir), "--data", data, "--class", "dog", "-o", out]) == 0
    assert "class 1 (dog)" in capsys.readouterr().out
    assert cli.main(["inspect", "occlusion", str(run_dir), "--data", data, "--class", "2", "--patch", "4",
                     "--stride", "4", "-o", out]) == 0
    assert "class 2 (bird)" in capsys.readouterr().out
    assert os.path.getsize(os.path.join(out, "occlusion.png")) > 1000
    assert cli.main(["inspect", "gradcam", str(run_dir), "--data", data, "--class", "horse", "-o", out]) != 0
    assert "horse" in capsys.readouterr().err


def test_runs_list_says_why_a_run_failed(tmp_path, capsys):
    root = tmp_path / "runs" / "image-classifier"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    write_status(str(root / "a"), "failed", stage="evaluation", reason="RuntimeError: metric exploded\ntraceback")
    write_status(str(root / "b"), "failed", stage="training", reason="ValueError: " + "x" * 200)
    assert cli.main(["runs", "list", "--run-dir", str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("failed") and lines[0].endswith("[evaluation] RuntimeError: metric exploded")
    assert "[training] ValueError: xxx" in lines[1] and lines[1].endswith("...") and len(lines[1]) < 200
