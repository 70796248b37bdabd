"""Quantized edge files with a measured accuracy guard: TFLite dynamic-range / float16 / int8, ONNX int8.

Each quantized file is written into the export's staging folder, scored on held-out data through its own
runtime (`EdgePredictor`: LiteRT, onnxruntime) with the caller's metric next to the float model, and removed
again when the metric dropped by more than `max_drop` points: a file that lost its accuracy is never published,
while the float formats of the same export still are. The figures go into `assets.extra/toolkit.json`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Callable

import numpy as np
import tensorflow as tf

from toolkit.export.adapter import to_numpy_dict
from toolkit.export.edge import EdgePredictor
from toolkit.export.errors import ExportError
from toolkit.export.formats import FILE_NAMES, QUANTIZED_FORMATS
from toolkit.export.samples import parity_inputs

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class QuantizationOptions:
    """How quantized formats are calibrated and guarded.

    Args:
        evaluate: `fn(predictor) -> metrics dict`: held-out metrics through the predictor interface
            (`predictor(dense inputs, signature="serving_dense")`); an app passes its own `App.score`.
        representative: calibration inputs for int8: a list of dicts name -> array `[n, ...]` (rows are fed
            one at a time), a few hundred rows of the training data.
        metric: the key of `evaluate`'s result the guard compares (`accuracy`, `mAP@.5`, `mean_iou`).
        higher_is_better: False for losses (nats).
        max_drop: the largest allowed drop, in points (metric x `points_per_unit`).
        points_per_unit: 100 for metrics in [0, 1] (1 point = 0.01), 1 for nats.
        int8_io: tflite-int8 with int8 input / output tensors (integer-only accelerators); default float I/O.
        reference: the float model's metrics on the same data (default: computed through the live model).
    """

    evaluate: Callable | None = None
    representative: list | None = None
    metric: str = "accuracy"
    higher_is_better: bool = True
    max_drop: float = 1.0
    points_per_unit: float = 100.0
    int8_io: bool = False
    reference: dict | None = None

    def drop(self, reference: float, quantized: float) -> float:
        """Points lost from `reference` to `quantized` (negative: the quantized file scored better).

        Examples:
        >>> QuantizationOptions().drop(0.90, 0.885)
        1.5
        >>> QuantizationOptions(higher_is_better=False, points_per_unit=1.0).drop(80.0, 80.5)
        0.5
        """
        sign = 1.0 if self.higher_is_better else -1.0
        return round(sign * (reference - quantized) * self.points_per_unit, 6)


class LiveDensePredictor:
    """The live model's dense path through the predictor interface (the guard's float reference)."""

    signatures = ("serving_default", "serving_dense")

    def __init__(self, model, adapter):
        self.model, self.adapter, self.labels = model, adapter, adapter.labels
        self.metadata: dict = {}
        self._compute = tf.function(lambda d: adapter.compute(model, d), reduce_retracing=True)

    def __call__(self, inputs, signature="serving_dense"):
        tensors = {k: tf.convert_to_tensor(v, tf.float32) for k, v in inputs.items()}
        return to_numpy_dict(self.adapter.run_dense(self.model, tensors, compute_fn=self._compute))


def representative_rows(options: QuantizationOptions, dense_names: list):
    """The int8 converter's `representative_dataset`: one example (batch 1) per step, inputs in signature order."""
    samples = options.representative or []

    def generate():
        for sample in samples:
            arrays = [np.asarray(sample[name], "float32") for name in dense_names]
            for row in range(len(arrays[0])):
                yield [a[row : row + 1] for a in arrays]

    return generate


def count_rows(options: QuantizationOptions) -> int:
    return sum(len(next(iter(s.values()))) for s in options.representative or [])


def export_quantized(formats, compute_fn, adapter, model, staging: str, options: QuantizationOptions | None,
                     files: dict) -> dict:
    """Writes, scores and guards every quantized format in `formats`; returns the `quantization` metadata.

    Published files are added to `files` (format -> file name); refused ones are deleted from `staging`.
    """
    wanted = [f for f in formats if f in QUANTIZED_FORMATS]
    if not wanted:
        return {}
    if options is None or options.evaluate is None:
        raise ExportError(f"quantized formats {wanted} need held-out data for the accuracy guard: pass "
                          "quantization=QuantizationOptions(evaluate=...) (the apps pass their held-out split)")
    dense_names = list(adapter.dense_inputs)
    if "tflite-int8" in wanted or "onnx-int8" in wanted:
        if count_rows(options) == 0:
            raise ExportError("int8 quantization needs calibration data: pass representative rows of the training data")
    reference = options.reference or options.evaluate(LiveDensePredictor(model, adapter))
    if options.metric not in reference:
        raise ExportError(f"the guard's metric {options.metric!r} is not among the held-out metrics {sorted(reference)}")
    report = {"metric": options.metric, "higher_is_better": options.higher_is_better, "max_drop": options.max_drop,
              "float": float(reference[options.metric]), "calibration_examples": count_rows(options),
              "int8_io": options.int8_io, "formats": {}}
    contents = _convert(wanted, compute_fn, adapter, model, staging, options, dense_names)
    _, dense = parity_inputs(adapter)
    expected = to_numpy_dict(adapter.compute(model, dense))
    for fmt in wanted:
        name, float_size = contents[fmt]
        path = os.path.join(staging, name)
        predictor = EdgePredictor(path, metadata={"labels": adapter.labels, "label_source": adapter.label_source,
                                                  "task": adapter.task})
        got = predictor.run_dense({k: v.numpy() for k, v in dense.items()})
        diff = max((float(np.max(np.abs(np.asarray(got[k], "float64") - np.asarray(v, "float64"))))
                    for k, v in expected.items() if k in got and np.asarray(v).dtype.kind == "f" and np.size(v)),
                   default=0.0)
        metrics = options.evaluate(predictor)
        value = float(metrics[options.metric])
        drop = options.drop(report["float"], value)
        size = os.path.getsize(path)
        entry = {"file": name, "metric": value, "drop": drop, "size_bytes": size, "float_size_bytes": float_size,
                 "size_ratio": round(float_size / size, 3), "max_abs_diff": diff,
                 "published": drop <= options.max_drop}
        if not entry["published"]:
            entry["reason"] = (f"{options.metric} dropped {drop:.2f} points ({report['float']:.4f} -> {value:.4f}) "
                               f"> max_quantization_drop {options.max_drop:g}")
            os.remove(path)
            logger.warning("%s not published: %s", name, entry["reason"])
        else:
            files[fmt] = name
        report["formats"][fmt] = entry
    return report


def _convert(wanted, compute_fn, adapter, model, staging, options, dense_names) -> dict:
    """{format: (file name, size of the float file of the same runtime)}; the files are in `staging`."""
    from toolkit.export.tflite import convert_tflite, tflite_source

    out = {}
    tflite = [f for f in wanted if f.startswith("tflite-")]
    if tflite:
        with tflite_source(compute_fn, model, staging) as source:
            float_size = len(convert_tflite(source))
            for fmt in tflite:
                mode = fmt.split("-", 1)[1]
                if mode == "int8" and adapter.task == "object_detection":
                    content = convert_int8_network_only(source, representative_rows(options, dense_names),
                                                        model.name, int8_io=options.int8_io)
                else:
                    content = convert_tflite(source, mode, representative_rows(options, dense_names),
                                             int8_io=options.int8_io)
                with open(os.path.join(staging, FILE_NAMES[fmt]), "wb") as f:
                    f.write(content)
                out[fmt] = (FILE_NAMES[fmt], float_size)
    if "onnx-int8" in wanted:
        out["onnx-int8"] = _onnx_int8(compute_fn, adapter, staging, options, dense_names, model.name)
    return out


def network_op(name: str, model_name: str) -> bool:
    """Whether a TFLite tensor / op name belongs to the Keras model `model_name` (its layers' name scope,
    `yolo/...` or `yolo_1/...`; fused ops join several names with `;`) rather than to the post-processing.

    Examples:
    >>> network_op("yolo_1/backbone_1/s1_bn_1/batchnorm/add_1;yolo_1/backbone_1/s1_conv_1/convolution", "yolo")
    True
    >>> network_op("non_max_suppression_padded/Const_2", "yolo"), network_op("yolov2_1/conv", "yolo")
    (False, False)
    """
    pattern = re.compile(rf"{re.escape(model_name)}(_[0-9]+)?/")
    return any(pattern.match(part) for part in name.split(";"))


def convert_int8_network_only(source: str, representative, model_name: str, int8_io: bool = False) -> bytes:
    """Full-integer int8 of the network only: the ops of the Keras model `model_name` run int8, the
    post-processing after it (a detector's box decoding, score thresholds and padded NMS) stays float.

    Quantizing the whole detector graph puts box coordinates, class offsets and the NMS loop's tensors into
    int8 (measured: a LiteRT abort inside the padded-NMS graph, and boxes off by a whole quantization step of a
    [0, image size] range). The converter has no "stop here" flag; its selective quantization (the quantization
    debugger's `denylisted_nodes`, TensorFlow's documented route) keeps every op outside the model's name scope
    float. `int8_io`: int8 input and float outputs as int8 (mlir_quantize's `fully_quantize`).
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(source)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        # The debugger calibrates once (its first debug model keeps the control flow and NMS float), then
        # re-quantizes the calibrated model with every non-network op denylisted.
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=_FLOAT_CONTROL_OPS))
        names = _tensor_names(debugger.calibrated_model)
        denylist = [name for name in names if name and not network_op(name, model_name)]
        if len(denylist) == len(names):
            raise ExportError(f"no op of the model {model_name!r} found in the TFLite graph to quantize")
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denylist,
                                                                         fully_quantize=int8_io)
        return debugger.get_nondebug_quantized_model()
    except ExportError:
        raise
    except Exception as error:  # converter errors are long; the first line names the op
        raise ExportError(f"TFLite int8 conversion failed: {str(error).splitlines()[0]}") from error


def _tensor_names(content: bytes) -> list:
    """Every tensor name of a TFLite model, in all its subgraphs (a WHILE / IF body is a subgraph of its own:
    the NMS loop's ops live there)."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.schema_py_generated import Model

    interpreter = Interpreter(model_content=content)
    count = Model.GetRootAs(content, 0).SubgraphsLength()
    return [t["name"] for index in range(count) for t in interpreter.get_tensor_details(index) if t["name"]]


_FLOAT_CONTROL_OPS = ["WHILE", "IF", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5"]


def _onnx_int8(compute_fn, adapter, staging, options, dense_names, model_name):
    """Static QDQ int8 (per-channel weights) of the float ONNX graph, calibrated on the representative rows."""
    import tf2onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    float_path = os.path.join(staging, FILE_NAMES["onnx"])
    scratch = None
    if not os.path.isfile(float_path):
        float_path = scratch = os.path.join(staging, ".float-for-int8.onnx")
        try:
            tf2onnx.convert.from_function(compute_fn, input_signature=list(adapter.dense_inputs.values()), opset=17,
                                          output_path=float_path)
        except Exception as error:
            raise ExportError(f"ONNX conversion failed: {str(error).splitlines()[0]}") from error
    import onnxruntime

    input_names = [i.name for i in onnxruntime.InferenceSession(
        float_path, providers=["CPUExecutionProvider"]).get_inputs()]
    rows = representative_rows(options, dense_names)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(rows())

        def get_next(self):
            row = next(self.rows, None)
            return None if row is None else dict(zip(input_names, row))

    out = os.path.join(staging, FILE_NAMES["onnx-int8"])
    prepared = os.path.join(staging, ".prepared-for-int8.onnx")
    try:  # shape inference + graph optimisation first, as onnxruntime recommends before static quantization
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
        source = prepared
    except Exception as error:  # noqa: BLE001 - optional step: quantize the graph as converted
        logger.info("onnx pre-processing skipped: %s", error)
        source = float_path
    nodes = None
    if adapter.task == "object_detection":  # as convert_int8_network_only: box decoding and NMS stay float
        import onnx

        nodes = [n.name for n in onnx.load(source).graph.node if network_op(n.name, model_name)]
        if not nodes:
            raise ExportError(f"no node of the model {model_name!r} found in the ONNX graph to quantize")
    try:
        quantize_static(source, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_quantize=nodes)
    except Exception as error:
        raise ExportError(f"ONNX int8 quantization failed: {str(error).splitlines()[0]}") from error
    finally:
        if os.path.exists(prepared):
            os.remove(prepared)
    float_size = os.path.getsize(float_path)
    if scratch:
        os.remove(scratch)
    return FILE_NAMES["onnx-int8"], float_size
