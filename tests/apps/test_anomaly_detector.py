"""The anomaly detector end to end: fit on normal images, threshold at a target FPR, ROC/PR-AUC, export, predict."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from apps import anomaly_detector, cli
from apps.anomaly_detector import anomaly_metrics
from toolkit.data import DataError, samples
from toolkit.export import encode_png, load

TINY = dict(epochs=2, batch_size=32, architecture="dense", latent_dim=4, hidden=32, verbose=0, patience=-1,
            learning_rate=3e-3, validation_split=0.25, target_fpr=0.1)


def _toy():
    """Real digits (normal) and the same digits inverted (anomalous): separable by reconstruction."""
    x, y, _ = samples.digits()
    normal = x[y < 5][:400]
    inverted = 255 - x[y >= 5][:60]
    images = np.concatenate([normal, inverted]).astype("float32")
    labels = np.concatenate([np.zeros(len(normal), "int64"), np.ones(len(inverted), "int64")])
    return images, labels, ["digit", "inverted"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("anomaly")
    run = anomaly_detector.train(_toy(), normal_classes="digit", run_dir=str(root), **TINY)
    return run, root


def test_threshold_fpr_and_separable_auc(trained):
    run, _ = trained
    m = run.metrics
    assert m["evaluated_on"] == "validation" and m["num_anomalous"] == 60 and m["num_normal"] == 100
    assert m["roc_auc"] > 0.97 and m["pr_auc"] > 0.9, m
    # the threshold is the model's, picked on the 100 validation normals: FPR <= 10% and within 1/100 of it
    assert m["threshold"] == pytest.approx(float(run.model.threshold.numpy()))
    assert 0.09 <= m["validation_fpr"] <= 0.1 and m["calibration_images"] == 100
    assert m["false_positive_rate"] == pytest.approx(m["validation_fpr"])  # same images here
    assert m["true_positive_rate"] > 0.8 and m["score"] == "reconstruction_mse"
    assert run.info["normal_classes"] == ["digit"]
    for name in ("history", "scores"):
        with open(run.plots[name], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(run.run_dir, "metrics.json")) as f:
        assert json.load(f)["roc_auc"] == m["roc_auc"]


def test_export_returns_score_flag_threshold_from_image_bytes(trained, tmp_path):
    run, _ = trained
    path = run.export(str(tmp_path / "export"))
    meta = json.load(open(os.path.join(path, "assets.extra", "toolkit.json")))
    assert meta["anomaly"]["threshold"] == pytest.approx(run.metrics["threshold"])
    assert meta["anomaly"]["target_fpr"] == 0.1 and meta["labels"] == ["normal", "anomalous"]
    x, y, _ = _toy()
    pick = np.concatenate([x[:3], x[-3:]])
    served = tf.saved_model.load(path).signatures["serving_default"](
        images=tf.constant([encode_png(im) for im in pick]))
    np.testing.assert_allclose(served["score"], run.model.score(pick), rtol=1e-5, atol=1e-7)
    flags = (run.model.score(pick).numpy() > run.metrics["threshold"]).astype("int32")
    np.testing.assert_array_equal(served["is_anomaly"], flags)
    assert [v.decode() for v in served["labels"].numpy()] == [["normal", "anomalous"][f] for f in flags]
    np.testing.assert_allclose(served["threshold"], [run.metrics["threshold"]] * 6)
    # evaluating the export on the same held-out data gives the run's AUC
    metrics = anomaly_detector.evaluate(path, _toy())
    assert metrics["num_anomalous"] == 60 and 0.9 < metrics["roc_auc"] <= 1.0
    rows = anomaly_detector.predict(load(path), [x[-1]])
    assert rows[0]["label"] == "anomalous" and rows[0]["is_anomaly"] == 1 and rows[0]["score"] > rows[0]["threshold"]


def test_vae_scores_by_neg_elbo(tmp_path):
    x, y, names = _toy()
    run = anomaly_detector.train((x, y, names), normal_classes="digit", model="vae", elbo_samples=2,
                                 run_dir=str(tmp_path), **{**TINY, "epochs": 1})
    assert run.metrics["score"] == "neg_elbo" and np.isfinite(run.metrics["mean_score_normal"])  # nats (a density)
    assert run.model.autoencoder.likelihood == "gaussian"
    assert run.metrics["roc_auc"] > 0.8


def test_anomaly_metrics_by_hand_and_per_class():
    m = anomaly_metrics([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], flags=[0, 1, 1, 1], classes=["n", "n", "a", "b"])
    assert m["roc_auc"] == 0.75  # pairs (anomalous > normal): 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert m["pr_auc"] == pytest.approx((1.0 + 2 / 3) / 2)  # precision at each anomalous hit: 1/1, 2/3
    assert m["false_positive_rate"] == 0.5 and m["true_positive_rate"] == 1.0
    assert m["per_class_roc_auc"] == {"a": 0.5, "b": 1.0}
    only_normal = anomaly_metrics([0.1, 0.2], [0, 0])
    assert "roc_auc" not in only_normal and "need both normal and anomalous" in only_normal["note"]


def test_option_and_data_errors(tmp_path):
    with pytest.raises(ValueError, match="normal_classes or anomaly_classes, not both"):
        anomaly_detector.train(_toy(), normal_classes="digit", anomaly_classes="inverted", run_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"unknown class 'cat'; the data's classes are \['digit', 'inverted'\]"):
        anomaly_detector.train(_toy(), anomaly_classes="cat", run_dir=str(tmp_path), **TINY)
    with pytest.raises(DataError, match="leaves no normal class"):
        anomaly_detector.train(_toy(), anomaly_classes="digit,inverted", run_dir=str(tmp_path), **TINY)
    with pytest.raises(DataError, match="needs labelled data"):
        anomaly_detector.train(_toy()[0], normal_classes="digit", run_dir=str(tmp_path), **TINY)
    info = {"image_shape": [8, 8, 1], "normal_classes": None}
    with pytest.raises(DataError, match="name the folders normal/ and anomalous/"):
        anomaly_detector.APP.eval_dataset(_toy(), info)
    held = anomaly_detector.APP.eval_dataset((np.zeros((3, 8, 8, 1)), np.array([0, 1, 1]), ["Normal", "anomalous"]),
                                             info)
    assert held.anomalous.tolist() == [0, 1, 1]


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["anomaly-detector", "train", "--help"])
    text = capsys.readouterr().out
    for field in anomaly_detector.Config.__dataclass_fields__:
        assert "--" + field.replace("_", "-") in text, field
    assert "--target-fpr" in text and "false-positive rate" in text


def test_spec_choices_match_the_toolkit():
    from apps.specs import anomaly_detector as spec
    from toolkit.models import autoencoders

    assert spec.ARCHITECTURES == autoencoders.ARCHITECTURES and spec.CORRUPTIONS == autoencoders.CORRUPTIONS
    assert spec.SPARSITY_PENALTIES == autoencoders.SPARSITY_PENALTIES
    assert set(anomaly_detector._KINDS.values()) == set(autoencoders.KINDS)
    assert set(spec.MODELS) == set(anomaly_detector._KINDS) | {"vae"}
