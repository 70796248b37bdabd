"""Resume after kill -9, NaN handling, run listing, two-worker MultiWorkerMirroredStrategy."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

from apps import cli, image_classifier
from toolkit.training.fault_tolerance import TrainingDivergedError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(batch_size=32, width=4, dense_units=8, dropout=0.0, augment="none", validation_split=0.0,
            verbose=0, tensorboard=False)


def data():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 80, (64, 8, 8, 1)), rng.uniform(170, 255, (64, 8, 8, 1))])
    return x.astype("float32"), np.array([0] * 64 + [1] * 64)


TRAIN_SCRIPT = textwrap.dedent("""
    import sys, time, json, numpy as np, keras
    import toolkit
    from apps import image_classifier
    class SlowEpochs(keras.callbacks.Callback):  # test-only: gives the parent time to kill mid-run
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(float(sys.argv[2]))
    original = image_classifier.APP.callbacks
    image_classifier.APP.callbacks = lambda ctx: original(ctx) + [SlowEpochs()]
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 80, (64, 8, 8, 1)), rng.uniform(170, 255, (64, 8, 8, 1))])
    y = np.array([0] * 64 + [1] * 64)
    run = image_classifier.train((x, y), epochs=6, batch_size=32, width=4, dense_units=8, dropout=0.0,
                                 augment="none", validation_split=0.0, verbose=0, tensorboard=False,
                                 run_dir=sys.argv[1], patience=-1)
    print("DONE", run.run_dir, len(run.history["loss"]))
""")


def _state(run_root):
    app_dir = os.path.join(run_root, "image-classifier")
    if not os.path.isdir(app_dir) or not os.listdir(app_dir):
        return None, None
    run_dir = os.path.join(app_dir, os.listdir(app_dir)[0])
    state_file = os.path.join(run_dir, "checkpoints", "phase1", "state.json")
    if not os.path.isfile(state_file):
        return run_dir, None
    try:
        with open(state_file) as f:
            return run_dir, json.load(f)
    except json.JSONDecodeError:
        return run_dir, None


def test_kill_9_mid_training_then_rerun_resumes_and_finishes(tmp_path):
    runs = str(tmp_path / "runs")
    first = subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, runs, "1.0"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    state = None
    while time.time() < deadline:
        _, state = _state(runs)
        if state and state["epoch"] >= 2:
            break
        assert first.poll() is None, first.communicate()[1][-2000:]
        time.sleep(0.1)
    assert state and state["epoch"] >= 2, "training never reached epoch 2"
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = _state(runs)[1]["epoch"]
    assert killed_at < 6

    second = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, runs, "0"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resume: phase 1 continues after epoch {killed_at}" in second.stdout
    done = next(l for l in second.stdout.splitlines() if l.startswith("DONE"))
    run_dir, epochs = done.split()[1], int(done.split()[2])
    assert epochs == 6  # same number of epochs as an uninterrupted run
    assert run_dir == _state(runs)[0]  # the same run directory was continued
    with open(os.path.join(run_dir, "status.json")) as f:
        status = json.load(f)
    assert status["status"] == "finished" and status["resumed"] is True
    with open(os.path.join(run_dir, "history.csv")) as f:
        assert len(f.read().splitlines()) == 1 + 6


class PoisonAtEpoch(keras.callbacks.Callback):
    """Test-only: makes the loss NaN from the given epoch on."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            kernel = self.model.get_layer("predictions").kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = image_classifier.APP.callbacks
    monkeypatch.setattr(image_classifier.APP, "callbacks", lambda ctx: original(ctx) + [PoisonAtEpoch(2)])
    with pytest.raises(TrainingDivergedError, match="loss became nan"):
        image_classifier.train(data(), epochs=5, run_dir=str(tmp_path), **TINY)
    run_dir = os.path.join(str(tmp_path), "image-classifier", os.listdir(tmp_path / "image-classifier")[0])
    with open(os.path.join(run_dir, "checkpoints", "phase1", "state.json")) as f:
        assert json.load(f)["epoch"] == 2  # epochs 1-2 were good; epoch 3 diverged and was not saved
    with open(os.path.join(run_dir, "status.json")) as f:
        assert json.load(f)["status"] == "failed"
    # the export refuses the unfinished run unless asked, then uses the last good weights
    with pytest.raises(ValueError, match="did not finish"):
        image_classifier.APP.load_run(run_dir)
    run = image_classifier.APP.load_run(run_dir, allow_unfinished=True)
    assert np.all(np.isfinite(run.model.get_layer("predictions").kernel.numpy()))


def test_runs_list_and_show(tmp_path, capsys):
    run = image_classifier.train(data(), epochs=1, run_dir=str(tmp_path), **{**TINY, "validation_split": 0.25})
    assert cli.main(["runs", "list", "--run-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and run.run_dir in out and "accuracy=" in out
    assert cli.main(["runs", "show", run.run_dir]) == 0
    out = capsys.readouterr().out
    assert "status.json" in out and "history.csv" in out and "model.keras" in out


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


WORKER_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    import toolkit
    from apps import image_classifier
    from apps.run_dirs import is_chief
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 80, (64, 8, 8, 1)), rng.uniform(170, 255, (64, 8, 8, 1))])
    y = np.array([0] * 64 + [1] * 64)
    run = image_classifier.train((x, y), strategy="multi-worker", epochs=2, batch_size=32, width=4,
                                 dense_units=8, dropout=0.0, augment="none", validation_split=0.0, verbose=0,
                                 tensorboard=False, run_dir=sys.argv[1])
    if is_chief():
        print("EXPORTED", run.export(sys.argv[2]))
    print("LOSS", run.history["loss"][-1])
""")


def test_two_local_workers_train_and_the_chief_exports(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, str(tmp_path / "runs"),
                                       str(tmp_path / "sm")], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=420)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(out)
    finally:
        for proc in procs:
            proc.kill()
    assert "EXPORTED" in outputs[0] and "EXPORTED" not in outputs[1]
    losses = [float(next(l for l in o.splitlines() if l.startswith("LOSS")).split()[1]) for o in outputs]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)  # replicas stay in sync
    assert os.path.isfile(tmp_path / "sm" / "1" / "saved_model.pb")


def test_tpu_strategy_trains_on_static_batches(tmp_path, monkeypatch):
    import tensorflow as tf

    from apps import base

    monkeypatch.setattr(base, "needs_static_batches", lambda strategy: True)  # no TPU here: pretend
    seen = []
    original = image_classifier.APP.fit

    def fit(model, ctx, callbacks):
        seen.append([s.shape.as_list() for s in tf.nest.flatten(ctx.data.train.element_spec)])
        return original(model, ctx, callbacks)

    monkeypatch.setattr(image_classifier.APP, "fit", fit)
    x, y = data()
    run = image_classifier.train((x[:100], y[:100]), epochs=1, run_dir=str(tmp_path), **TINY)
    assert seen[0][0][0] == 32 and seen[0][-1] == [32]  # every step: exactly batch_size examples
    assert len(run.history["loss"]) == 1
