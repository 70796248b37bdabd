"""ONNX conversion (tf2onnx) of the dense compute function, parity-checked in onnxruntime."""

from __future__ import annotations

import os

from toolkit.export.adapter import to_numpy_dict, with_batch
from toolkit.export.errors import ExportError
from toolkit.export.parity import compare_outputs
from toolkit.export.samples import parity_inputs


def export_onnx(compute_fn, adapter, model, directory: str, tolerance: float, opset: int = 17,
                batch: int | None = None):
    """Writes `directory/model.onnx`; returns `(file name, max abs diff against the live model)`.

    With `batch` (the tpu target's static batch) the graph takes exactly `batch` rows, as `compute_fn` does.
    """
    import onnxruntime
    import tf2onnx

    specs = list(with_batch(adapter.dense_inputs, batch).values()) if batch else list(adapter.dense_inputs.values())
    path = os.path.join(directory, "model.onnx")
    try:
        tf2onnx.convert.from_function(compute_fn, input_signature=specs, opset=opset, output_path=path)
    except Exception as error:
        raise ExportError(f"ONNX conversion failed: {str(error).splitlines()[0]}") from error
    _, dense = parity_inputs(adapter, batch)
    expected = to_numpy_dict(adapter.compute(model, dense))
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {i.name: dense[n].numpy() for i, n in zip(session.get_inputs(), adapter.dense_inputs)}
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(names, feeds)))
    return "model.onnx", compare_outputs(expected, got, tolerance, "onnx")
