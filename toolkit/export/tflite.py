"""TFLite conversion of the dense compute function, with a parity check in the LiteRT interpreter."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from toolkit.export.adapter import to_numpy_dict
from toolkit.export.errors import ExportError
from toolkit.export.parity import compare_outputs
from toolkit.export.samples import parity_inputs


def export_tflite(compute_fn, adapter, model, directory: str, tolerance: float, batch: int | None = None):
    """Writes `directory/model.tflite`; returns `(file name, max abs diff against the live model)`.

    With `batch` (the tpu target's static batch) the parity sample has exactly `batch` rows: a static-batch
    graph cannot be resized to fewer (XNNPack fails to reshape it).

    TFLite has no in-graph image or string decoding without Flex ops, so the file covers the dense
    signature: callers decode and resize as `assets.extra/toolkit.json` describes.
    """
    # Converting a concrete function that captures Keras 3 variables yields garbage weights here
    # (measured: NaN outputs); converting from a SavedModel of the same function is exact.
    import tempfile

    import keras

    with tempfile.TemporaryDirectory(dir=os.path.dirname(directory)) as scratch:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", compute_fn)
        archive.write_out(scratch, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            content = converter.convert()
        except Exception as error:  # converter errors are long; the first line names the op
            raise ExportError(f"TFLite conversion failed: {str(error).splitlines()[0]}") from error
    path = os.path.join(directory, "model.tflite")
    with open(path, "wb") as f:
        f.write(content)
    _, dense = parity_inputs(adapter, batch)
    expected = to_numpy_dict(adapter.compute(model, dense))
    got = run_tflite(content, {k: v.numpy() for k, v in dense.items()})
    return "model.tflite", compare_outputs(expected, got, tolerance, "tflite")


def run_tflite(content: bytes, inputs: dict) -> dict:
    """Runs a TFLite model's default signature with the LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    signature = interpreter.get_signature_list()["serving_default"]
    names = list(signature["inputs"])
    if len(names) == len(inputs) == 1:
        inputs = {names[0]: next(iter(inputs.values()))}
    # Resize before the signature runner exists: it pins the interpreter's buffers.
    for position, (name, value) in enumerate(inputs.items()):
        detail = interpreter.get_input_details()[position]
        if list(detail["shape"]) != list(value.shape):
            interpreter.resize_tensor_input(detail["index"], value.shape)
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner()
    return {k: np.asarray(v) for k, v in runner(**inputs).items()}
