import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from toolkit.training import distribution
from toolkit.training.distribution import get_strategy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_named_strategies_on_this_machine(monkeypatch):
    assert isinstance(get_strategy("auto"), tf.distribute.OneDeviceStrategy)
    assert isinstance(get_strategy("one-device"), tf.distribute.OneDeviceStrategy)
    with pytest.raises(ValueError, match="strategy='bogus'"):
        get_strategy("bogus")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(RuntimeError, match="TF_CONFIG"):
        get_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(RuntimeError, match="not valid JSON"):
        get_strategy("multi-worker")


def test_tpu_strategy_without_a_tpu_says_so(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(RuntimeError, match="no TPU found"):
        get_strategy("tpu")


MIRRORED_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, tensorflow as tf
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    import toolkit
    from apps import image_classifier
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 80, (64, 8, 8, 1)), rng.uniform(170, 255, (64, 8, 8, 1))])
    y = np.array([0] * 64 + [1] * 64)
    losses = {}
    for strategy in ("one-device", "mirrored"):
        run = image_classifier.train((x, y), strategy=strategy, epochs=3, batch_size=32, width=4, dense_units=8,
                                     dropout=0.0, augment="none", validation_split=0.0, verbose=0,
                                     run_dir=sys.argv[1], resume="never", tensorboard=False)
        losses[strategy] = run.history["loss"][-1]
        n = len(tf.config.list_logical_devices("CPU"))
    print("LOSSES", losses["one-device"], losses["mirrored"], n)
""")


def test_mirrored_over_two_logical_cpus_matches_one_device(tmp_path):
    out = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("LOSSES"))
    one, mirrored, devices = line.split()[1:]
    assert int(devices) == 2
    # same data, same global batch: only per-replica BatchNorm statistics differ
    assert float(mirrored) == pytest.approx(float(one), rel=0.1, abs=0.02)


def test_static_batches_for_tpu_strategies():
    dataset = tf.data.Dataset.from_tensor_slices((np.arange(10.0), np.arange(10))).batch(3)
    fixed = distribution.static_batches(dataset, 4)
    assert [s.shape.as_list() for s in tf.nest.flatten(fixed.element_spec)] == [[4], [4]]
    assert [x.numpy().tolist() for x, _ in fixed] == [[0, 1, 2, 3], [4, 5, 6, 7]]  # remainder dropped
    same = distribution.static_batches(tf.data.Dataset.range(10).batch(4), 4)  # already at the size: short batch goes
    assert [x.numpy().tolist() for x in same] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert not distribution.needs_static_batches(tf.distribute.get_strategy())
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        distribution.static_batches(dataset, 0)


CUSTOM_STEP_SCRIPT = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from toolkit.models.vae import build_autoencoder
    x = np.random.default_rng(0).uniform(size=(64, 8, 8, 1)).astype("float32")
    updates = {}
    for name, strategy in (("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = build_autoencoder((8, 8, 1), latent_dim=2, architecture="dense", hidden=16,
                                      likelihood="gaussian", binarize=False)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
            model(x[:1])
        before = [w.numpy() for w in model.trainable_weights]
        model.fit(x, epochs=1, batch_size=64, verbose=0, shuffle=False)
        updates[name] = np.concatenate([(w.numpy() - b).ravel() for w, b in zip(model.trainable_weights, before)])
    print("RATIO", np.linalg.norm(updates["mirrored"]) / np.linalg.norm(updates["one"]),
          np.abs(updates["mirrored"] - updates["one"]).max())
""")


def test_custom_train_step_takes_the_same_step_on_two_replicas():
    out = subprocess.run([sys.executable, "-c", CUSTOM_STEP_SCRIPT], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ratio, worst = map(float, next(l for l in out.stdout.splitlines() if l.startswith("RATIO")).split()[1:])
    assert ratio == pytest.approx(1.0, abs=1e-3) and worst < 1e-3  # unscaled, the step would be 2x
