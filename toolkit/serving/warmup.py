"""Warm-up on load, as TF Serving does it: the requests in `assets.extra/tf_serving_warmup_requests`.

That file is a TFRecord of `tensorflow.serving.PredictionLog` messages (our exports write one, see
`toolkit.export.warmup`). Each `predict_log.request` is run once against the new version before it takes
traffic; a request that fails fails the load (TF Serving does the same), so a version whose recorded
requests no longer work never serves. Predict, classify and regress records run (classify / regress through
the named signature on the record's serialized tf.Examples, as `:classify` does); like TF Serving, at most 1000
records are read; multi-inference and session-run records are skipped with a warning.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000  # TF Serving's kMaxNumRecords


class WarmupError(ValueError):
    """A warm-up record could not be read or its request failed; names the record and the reason."""


RUN_KINDS = ("predict_log", "classify_log", "regress_log")


def read_warmup_requests(version_dir: str, limit: int = MAX_RECORDS) -> list:
    """The `PredictRequest`s, `ClassificationRequest`s and `RegressionRequest`s recorded in a version's warm-up
    file, in file order (`[]` when there is none).

    Raises:
        WarmupError: unreadable file, a record that is not a PredictionLog, or more than `limit` records.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    file = os.path.join(version_dir, WARMUP_FILE)
    if not os.path.isfile(file):
        return []
    requests, skipped = [], {}
    try:
        for index, record in enumerate(tf.data.TFRecordDataset(file).as_numpy_iterator()):
            if index >= limit:
                raise WarmupError(f"{WARMUP_FILE}: more than {limit} warm-up records (TF Serving's limit)")
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record)
            except Exception as error:  # noqa: BLE001 - protobuf DecodeError
                raise WarmupError(f"{WARMUP_FILE}: record {index + 1} is not a PredictionLog ({error})") from None
            kind = log.WhichOneof("log_type")
            if kind not in RUN_KINDS:
                skipped[kind] = skipped.get(kind, 0) + 1
                continue
            requests.append(getattr(log, kind).request)
    except tf.errors.OpError as error:
        raise WarmupError(f"{WARMUP_FILE}: cannot read the TFRecord file ({error.message})") from None
    if skipped:
        logger.warning("%s: skipped warm-up records this server does not run: %s", file, skipped)
    return requests


def run_warmup(servable, version_dir: str, limit: int = MAX_RECORDS) -> int:
    """Runs every recorded predict request once on `servable`; returns how many ran.

    Raises:
        WarmupError: naming the record (1-based), its signature and why it failed.
    """
    from toolkit.serving.protos import tensor_to_array

    requests = read_warmup_requests(version_dir, limit)
    for index, request in enumerate(requests, start=1):
        signature = request.model_spec.signature_name or "serving_default"
        where = f"{WARMUP_FILE} record {index} (signature '{signature}')"
        try:
            if request.DESCRIPTOR.name == "PredictRequest":
                specs = servable.specs(signature)
                unknown, missing = sorted(set(request.inputs) - set(specs)), sorted(set(specs) - set(request.inputs))
                if unknown or missing:
                    raise ValueError(f"inputs are {sorted(specs)}; unknown: {unknown}, missing: {missing}")
                arrays = {k: tensor_to_array(request.inputs[k], specs[k], f"input '{k}'") for k in specs}
            else:  # ClassificationRequest / RegressionRequest: serialized tf.Examples into that kind of signature
                from toolkit.serving import examples as ex

                verb = "classify" if request.DESCRIPTOR.name == "ClassificationRequest" else "regress"
                signature = ex.check_signature(servable, signature, verb)
                arrays = {ex.INPUTS_KEY: ex.serialized_from_input(request.input)}
            servable.run(signature, arrays)
        except Exception as error:  # noqa: BLE001 - any failure fails the load, with the record named
            from toolkit.serving.servable import describe_error

            raise WarmupError(f"{where} failed: {describe_error(error)}") from None
    return len(requests)
