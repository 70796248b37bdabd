"""Warm-up on load: the recorded requests of `assets.extra/tf_serving_warmup_requests` run before a version
serves; a failing one fails the load (END, with the record named) and the previous version keeps serving."""

import os
import shutil

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from toolkit.serving.warmup import WARMUP_FILE, read_warmup_requests


def _write(folder, records):
    with tf.io.TFRecordWriter(os.path.join(folder, WARMUP_FILE)) as writer:
        for record in records:
            writer.write(record if isinstance(record, bytes) else record.SerializeToString())


def _predict_log(signature, **inputs):
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.model_spec.signature_name = signature
    for key, value in inputs.items():
        log.predict_log.request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return log


def test_warmup_runs_on_load_and_a_failing_request_fails_the_load(exports, tools, tmp_path, pngs):
    from toolkit.serving import ModelRepository

    base = tools.make_base(tmp_path, exports)
    model_dir = os.path.join(base, "tiny")
    recorded = read_warmup_requests(exports["v1"])  # what the exporter wrote
    assert [r.model_spec.signature_name for r in recorded] == ["serving_default", "serving_default", "serving_dense",
                                                               "classify"]  # a Predict on the classify signature

    # version 2: our own warm-up file, with a stock TF Serving classify record (run through the classify
    # signature on its tf.Example) and a multi-inference one (skipped)
    shutil.copytree(exports["v2"], os.path.join(model_dir, "2"))
    classify = prediction_log_pb2.PredictionLog()
    classify.classify_log.request.model_spec.signature_name = "classify"
    example = classify.classify_log.request.input.example_list.examples.add()
    example.features.feature["images"].bytes_list.value.append(pngs[0])
    multi = prediction_log_pb2.PredictionLog()
    multi.multi_inference_log.request.tasks.add().model_spec.name = "tiny"
    _write(os.path.join(model_dir, "2"), [_predict_log("serving_default", images=[pngs[0], pngs[1]]), classify, multi])
    # version 3: a record with a wrong input name; version 4: a record that is not a PredictionLog
    # version 5: a classify record naming a predict signature
    wrong = prediction_log_pb2.PredictionLog()
    wrong.classify_log.request.input.example_list.examples.add()
    for number, record in ((3, _predict_log("serving_default", pixels=[pngs[0]])), (4, b"\xff\xff\xff\xff"),
                           (5, wrong)):
        shutil.copytree(exports["v1"], os.path.join(model_dir, str(number)))
        _write(os.path.join(model_dir, str(number)), [_predict_log("serving_dense", pixels=tf.zeros([1, 28, 28, 1])),
                                                      record])
    repository = ModelRepository(base, poll_interval_s=0, version_policy="all", batching="off",
                                 max_num_load_retries=0).start()
    try:
        states = {v.number: (v.state, v.warmup_requests) for v in repository.versions("tiny")}
        assert states[1] == ("AVAILABLE", 4) and states[2] == ("AVAILABLE", 2)
        broken = repository.versions("tiny", 3)[0]
        assert broken.state == "END" and broken.error_code == "UNKNOWN"
        assert ("tf_serving_warmup_requests record 2 (signature 'serving_default') failed: inputs are ['images']; "
                "unknown: ['pixels'], missing: ['images']") in broken.error
        assert "record 2 is not a PredictionLog" in repository.versions("tiny", 4)[0].error
        assert ("record 2 (signature 'serving_default') failed" in repository.versions("tiny", 5)[0].error
                and "classify" in repository.versions("tiny", 5)[0].error)
        assert repository.get("tiny").number == 2
    finally:
        repository.close()
