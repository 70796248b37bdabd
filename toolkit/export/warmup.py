"""TF Serving warm-up requests for an export: `assets.extra/tf_serving_warmup_requests`.

TF Serving (and `toolkit serve`) runs the requests in that file once when it loads a version, before the
version takes traffic, so the first real requests do not pay for graph initialisation and new kernel shapes.
The file is a TFRecord of `tensorflow.serving.PredictionLog` messages, each a `predict_log.request`; we write
a few, built from the export's own parity samples (the inputs the export was just checked on): the raw
`serving_default` signature with one row and with every sample row, the dense `serving_dense` signature,
and each extra signature with its sample. A tpu export's requests have exactly its static batch size.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

from toolkit.export.samples import pad_to_batch, parity_inputs

logger = logging.getLogger(__name__)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # a larger sample request is left out (the file ships with the model)


def warmup_requests(adapter, batch_size: int | None = None) -> list:
    """`[(signature name, {input: array}), ...]` to warm an export of `adapter` (static `batch_size` for tpu)."""
    raw, dense = parity_inputs(adapter, batch_size)
    raw = {k: np.asarray(v) for k, v in raw.items()}
    requests = []
    if batch_size is None and len(next(iter(raw.values()))) > 1:
        requests.append(("serving_default", {k: v[:1] for k, v in raw.items()}))
    requests.append(("serving_default", raw))
    requests.append(("serving_dense", {k: np.asarray(v) for k, v in dense.items()}))
    for name, extra in sorted(adapter.extra_signatures.items()):
        if extra.sample is None:
            continue
        inputs = {k: tf.constant(v, dtype=extra.inputs[k].dtype) for k, v in extra.sample.items()}
        if batch_size:
            inputs = {k: pad_to_batch(v, batch_size) if v.shape.rank else v for k, v in inputs.items()}
        requests.append((name, {k: v.numpy() for k, v in inputs.items()}))
    return requests


def prediction_logs(requests) -> list:
    """`[(signature, inputs), ...]` -> `tensorflow.serving.PredictionLog`s holding those predict requests."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for signature, inputs in requests:
        log = prediction_log_pb2.PredictionLog()
        log.predict_log.request.model_spec.signature_name = signature
        for key, value in inputs.items():
            log.predict_log.request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        logs.append(log)
    return logs


def write_warmup_requests(version_dir: str, adapter, batch_size: int | None = None) -> str | None:
    """Writes `version_dir/assets.extra/tf_serving_warmup_requests`; returns its path (None, with a warning,
    when the PredictionLog proto is missing: it comes with tensorflow-serving-api, the `serving` extra).

    Args:
        version_dir: the (staging) SavedModel folder.
        adapter: the export's `ServingAdapter` (its parity samples become the requests).
        batch_size: the static batch of a tpu export, None for dynamic-batch exports.

    Examples:
    >>> import keras
    >>> from toolkit.export.adapter import dense_adapter
    >>> from tensorflow_serving.apis import prediction_log_pb2
    >>> model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
    >>> path = write_warmup_requests("m/1", dense_adapter(model))
    >>> logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in tf.data.TFRecordDataset(path).as_numpy_iterator()]
    >>> [(log.predict_log.request.model_spec.signature_name, tf.make_ndarray(log.predict_log.request.inputs["x"]).shape)
    ...  for log in logs]
    [('serving_default', (1, 3)), ('serving_default', (2, 3)), ('serving_dense', (2, 3))]
    """
    try:
        import tensorflow_serving.apis.prediction_log_pb2  # noqa: F401
    except ImportError:
        logger.warning("no %s written: install tensorflow-serving-api (pip install 'keras-applied-toolkit[serving]')",
                       WARMUP_FILE)
        return None
    path = os.path.join(version_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    written = 0
    with tf.io.TFRecordWriter(path) as writer:
        for log in prediction_logs(warmup_requests(adapter, batch_size)):
            record = log.SerializeToString()
            if len(record) > MAX_REQUEST_BYTES:
                logger.info("warm-up request for %r left out: %d bytes", log.predict_log.request.model_spec.signature_name,
                            len(record))
                continue
            writer.write(record)
            written += 1
    logger.debug("wrote %d warm-up requests to %s", written, path)
    return path
