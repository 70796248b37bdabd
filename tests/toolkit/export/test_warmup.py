"""Exports write `assets.extra/tf_serving_warmup_requests` (TFRecord of PredictionLog), so TF Serving and
`toolkit serve` warm them: the requests are the export's parity samples and answer like the live model."""

import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from toolkit.export import export, image_classification_adapter
from toolkit.export.warmup import WARMUP_FILE
from toolkit.models.transfer import build_image_classifier


def _records(path):
    file = os.path.join(path, WARMUP_FILE)
    return [prediction_log_pb2.PredictionLog.FromString(r) for r in tf.data.TFRecordDataset(file).as_numpy_iterator()]


def _run(path, log):
    request = log.predict_log.request
    signature = tf.saved_model.load(path).signatures[request.model_spec.signature_name]
    return signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})


def test_image_export_writes_raw_and_dense_warmup_requests(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_image_classifier((10, 10, 1), 2, width=4, dense_units=8, dropout=0.0)
    samples = np.random.default_rng(0).integers(0, 255, (3, 10, 10, 1)).astype("uint8")
    adapter = image_classification_adapter(model, ["a", "b"], sample_images=samples)
    path = export(model, str(tmp_path / "m"), adapter=adapter)
    logs = _records(path)
    shapes = [(log.predict_log.request.model_spec.signature_name,
               {k: tf.make_ndarray(v).shape for k, v in log.predict_log.request.inputs.items()}) for log in logs]
    assert shapes == [("serving_default", {"images": (1,)}), ("serving_default", {"images": (3,)}),
                      ("serving_dense", {"pixels": (3, 10, 10, 1)}), ("classify", {"inputs": (3,)})]
    assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    # each recorded request is valid for the exported signature and answers like the live model
    dense = _run(path, logs[2])
    np.testing.assert_allclose(dense["scores"], model(samples.astype("float32")).numpy(), atol=1e-4)
    assert _run(path, logs[1])["scores"].shape == (3, 2) and _run(path, logs[0])["labels"].shape == (1,)


def test_tpu_export_warmup_requests_have_the_static_batch(tmp_path):
    model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
    path = export(model, str(tmp_path / "t"), target="tpu", batch_size=4)
    logs = _records(path)
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == ["serving_default", "serving_dense"]
    assert {tf.make_ndarray(log.predict_log.request.inputs["x"]).shape for log in logs} == {(4, 3)}
    assert _run(path, logs[0])["outputs"].shape == (4, 2)
