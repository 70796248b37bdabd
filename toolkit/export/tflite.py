"""TFLite conversion of the dense compute function (float, dynamic-range, float16, full-integer int8), with a
parity check in the LiteRT interpreter."""

from __future__ import annotations

import contextlib
import os
import tempfile

import numpy as np
import tensorflow as tf

from toolkit.export.adapter import to_numpy_dict
from toolkit.export.errors import ExportError
from toolkit.export.parity import compare_outputs
from toolkit.export.samples import parity_inputs

TFLITE_MODES = ("float", "dynamic", "fp16", "int8")


def export_tflite(compute_fn, adapter, model, directory: str, tolerance: float, batch: int | None = None):
    """Writes `directory/model.tflite`; returns `(file name, max abs diff against the live model)`.

    With `batch` (the tpu target's static batch) the parity sample has exactly `batch` rows: a static-batch
    graph cannot be resized to fewer (XNNPack fails to reshape it).

    TFLite has no in-graph image or string decoding without Flex ops, so the file covers the dense
    signature: callers decode and resize as `assets.extra/toolkit.json` describes.
    """
    with tflite_source(compute_fn, model, directory) as source:
        content = convert_tflite(source)
    path = os.path.join(directory, "model.tflite")
    with open(path, "wb") as f:
        f.write(content)
    _, dense = parity_inputs(adapter, batch)
    expected = to_numpy_dict(adapter.compute(model, dense))
    got = run_tflite(content, {k: v.numpy() for k, v in dense.items()})
    return "model.tflite", compare_outputs(expected, got, tolerance, "tflite")


@contextlib.contextmanager
def tflite_source(compute_fn, model, directory: str):
    """A scratch SavedModel of `compute_fn` beside `directory` (removed on exit), the converters' input.

    Converting a concrete function that captures Keras 3 variables yields garbage weights here (measured: NaN
    outputs); converting from a SavedModel of the same function is exact. One source serves every mode.
    """
    import keras

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(directory))) as scratch:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", compute_fn)
        archive.write_out(scratch, verbose=False)
        yield scratch


def convert_tflite(source: str, mode: str = "float", representative=None, int8_io: bool = False) -> bytes:
    """Converts the SavedModel `source` to TFLite bytes.

    Args:
        source: a SavedModel folder (`tflite_source`).
        mode: `"float"`; `"dynamic"` (int8 weights, float activations); `"fp16"` (float16 weights); `"int8"`
            (int8 weights and activations, calibrated on `representative`; ops without an int8 kernel, such as
            NMS, stay float unless `int8_io`).
        representative: int8: a callable returning an iterable of input lists (one example each, batch 1).
        int8_io: int8: int8 input and float outputs as int8 too, and only int8 kernels (integer-only
            accelerators); the scale and zero point of each tensor go into the file.
    """
    if mode not in TFLITE_MODES:
        raise ValueError(f"mode must be one of {TFLITE_MODES}. Received: mode={mode!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(source)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode != "float":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if representative is None:
            raise ExportError("int8 quantization needs a representative (calibration) dataset")
        converter.representative_dataset = representative
        if int8_io:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        else:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except Exception as error:  # converter errors are long; the first line names the op
        raise ExportError(f"TFLite {mode} conversion failed: {str(error).splitlines()[0]}") from error


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
