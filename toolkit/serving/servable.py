"""One loaded model version: its signatures (from the SavedModel's own SignatureDefs), metadata and calls."""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from toolkit.serving.codec import RequestError

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """A signature input: dtype name (`"float32"`, `"string"`, ...) and shape (None = any size)."""

    dtype: str
    shape: tuple

    @property
    def numpy_dtype(self):
        return object if self.dtype == "string" else np.dtype(self.dtype)


def read_signature_defs(version_dir: str):
    """The `serve` MetaGraph's SignatureDefs of a SavedModel, without loading TensorFlow functions.

    Returns a `tensorflow.core.protobuf.meta_graph_pb2.SignatureDef` map, minus the internal init op.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    file = os.path.join(version_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    with open(file, "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags or len(proto.meta_graphs) == 1:
            return {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}
    raise ValueError(f"{file}: no MetaGraph tagged 'serve'")


def _spec_of(tensor_info) -> InputSpec:
    from tensorflow.python.framework import dtypes

    dtype = dtypes.as_dtype(tensor_info.dtype).name
    if tensor_info.tensor_shape.unknown_rank:
        return InputSpec(dtype, ())
    shape = tuple(None if d.size < 0 else int(d.size) for d in tensor_info.tensor_shape.dim)
    return InputSpec(dtype, shape)


# Ops whose oneDNN CPU kernel CHECK-fails (aborts the whole process) on an input of another rank than the
# traced one, instead of returning an error (measured, TF 2.21: MklConvOp in GetInputSizeInMklOrder). A
# model holding one keeps its signatures' ranks and static dimensions; other models' inputs go to the graph.
RANK_CHECKED_OPS = frozenset({"Conv2D", "Conv3D", "Conv", "DepthwiseConv2dNative", "_FusedConv2D",
                              "Conv2DBackpropInput", "Conv3DBackpropInputV2", "_MklConv2D", "QuantizedConv2D"})


def read_op_types(version_dir: str) -> set:
    """Every op type in a SavedModel's graphs and function library (read from saved_model.pb)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    types = set()
    for meta_graph in proto.meta_graphs:
        types.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            types.update(node.op for node in function.node_def)
    return types


def _fits(array: np.ndarray, spec: InputSpec) -> bool:
    """Whether `array` has the spec's rank and trailing dimensions (the batch dimension may differ)."""
    if not spec.shape and array.ndim:
        return False
    return array.ndim == len(spec.shape) and array.ndim >= 1 and all(
        w is None or w == g for w, g in zip(spec.shape[1:], array.shape[1:]))


def describe_error(error) -> str:
    """A TensorFlow op error -> its one useful line (plus the op), without the graph-execution preamble.

    Examples:
    >>> class E(Exception): message = "Graph execution error:\\n\\nDetected at node a/DecodeImage defined at:\\nBad bytes.\\n\\t [[x]]"
    >>> describe_error(E())
    'cannot decode the image bytes: Bad bytes. (in op a/DecodeImage)'
    """
    text = (getattr(error, "message", None) or str(error)).strip()
    node = re.search(r"Detected at node (\S+)", text)
    useful = [line.strip() for line in text.splitlines()
              if line.strip() and not line[0].isspace() and not line.startswith(("Graph execution error", "Detected at node",
                                                                                   "<stack traces", "File ", "[["))]
    message = " ".join(useful)[:500] or type(error).__name__
    if node:
        message += f" (in op {node.group(1)})"
        if "Decode" in node.group(1):
            message = "cannot decode the image bytes: " + message
    return message


class Servable:
    """A loaded SavedModel version.

    Args:
        path: the version folder (`<base>/<name>/<version>/`).

    Attributes:
        metadata: `assets.extra/toolkit.json` (labels, task, ...), `{}` for foreign SavedModels.
        signature_defs: name -> SignatureDef proto (what TF Serving reports as metadata).
        batch_size: the static batch of a tpu export (None for dynamic-batch exports).
    """

    def __init__(self, path: str):
        from toolkit.export import load  # imports the modules the export `requires` (tensorflow_text, ...)

        self.path = path
        self.signature_defs = read_signature_defs(path)
        self.predictor = load(path)
        self.metadata = self.predictor.metadata
        self.batch_size = self.predictor.batch_size
        self.inputs = {name: {k: _spec_of(v) for k, v in sd.inputs.items()} for name, sd in self.signature_defs.items()}
        self.outputs = {name: sorted(sd.outputs) for name, sd in self.signature_defs.items()}
        self.methods = {name: sd.method_name for name, sd in self.signature_defs.items()}
        self.rank_bound = bool(read_op_types(path) & RANK_CHECKED_OPS)
        missing = sorted(set(self.signature_defs) - set(self.predictor.signatures))
        if missing:
            raise ValueError(f"signatures {missing} are declared but not loadable")

    @property
    def task(self) -> str:
        return self.metadata.get("task", "generic")

    def specs(self, signature: str | None) -> dict:
        """`{input name: InputSpec}` of a signature; RequestError (-> 400) naming the known ones if unknown."""
        name = signature or DEFAULT_SIGNATURE
        if name not in self.inputs:
            raise RequestError(f"signature_name '{name}' not found; this model has {sorted(self.inputs)}")
        return self.inputs[name]

    def run(self, signature: str | None, arrays: dict) -> dict:
        """Calls a signature on dtype-checked numpy inputs; returns `{output name: numpy array}`.

        As in TF Serving, the signature's static shape is not enforced here: inputs whose rank and
        trailing dimensions fit it take the checked path (with the static batch of a tpu export padded);
        any other shape goes to the graph as it is (`[3]` for an `x: [-1, 1]` input, a scalar, columns of
        different lengths), and the graph decides: its own error (InvalidArgumentError) becomes a 400.
        """
        name = signature or DEFAULT_SIGNATURE
        specs = self.specs(name)
        if all(_fits(arrays[k], spec) for k, spec in specs.items()):
            outputs = self.predictor(arrays, signature=name)
        else:
            if self.rank_bound:
                for key, spec in specs.items():
                    if spec.shape and not _fits(arrays[key], spec):
                        shown = ", ".join("-1" if d is None else str(d) for d in spec.shape)
                        raise RequestError(
                            f"input '{key}': a tensor of shape {list(arrays[key].shape)} for the signature's "
                            f"[{shown}]; this model's graph has convolutions, whose CPU (oneDNN) kernels abort "
                            "instead of failing cleanly on another rank or on a spatial size they were not built for "
                            "(a 1-pixel-high image into a max-pool), so its inputs keep the signature's rank and "
                            "static dimensions")
            outputs = self._call_unchecked(name, arrays)
        return {k: np.asarray(v) for k, v in outputs.items()}

    def _call_unchecked(self, name: str, arrays: dict) -> dict:
        """The signature's graph run on tensors of any shape. A restored TF2 signature checks its call
        arguments against the traced input shapes (a TF1 one does not); `_call_flat` runs the same graph
        without that Python-side check, which is what TF Serving's Session::Run does with a feed."""
        import tensorflow as tf

        function = self.predictor.signatures[name]
        specs = function.structured_input_signature[1]
        flat = [tf.constant(arrays[key], dtype=spec.dtype) for key, spec in
                zip(tf.nest.flatten({k: k for k in specs}), tf.nest.flatten(specs))]
        outputs = function._call_flat(flat, function.captured_inputs)  # noqa: SLF001 - see the docstring
        return {k: v.numpy() for k, v in outputs.items()}

    def sample_inputs(self, signature: str, rows: int = 1) -> dict:
        """Valid inputs of `rows` examples for a signature (zeros; a blank PNG for image bytes)."""
        sample = {}
        for key, spec in self.inputs[signature].items():
            value = self._sample_string() if spec.dtype == "string" else 0
            sample[key] = np.full([rows, *[d or 1 for d in spec.shape[1:]]], value, dtype=spec.numpy_dtype)
        return sample

    def smoke_inputs(self) -> tuple[str, dict]:
        """A tiny valid request for the smoke call a new version must pass before it serves."""
        order = [n for n in ("serving_dense", DEFAULT_SIGNATURE) if n in self.inputs] + sorted(self.inputs)
        numeric = [n for n in order if all(s.dtype != "string" for s in self.inputs[n].values())]
        name = numeric[0] if numeric else order[0]
        return name, self.sample_inputs(name, self.batch_size or 1)

    def warm_up(self, batch_sizes) -> None:
        """Runs every signature once per batch size, so first requests do not pay for new kernel shapes."""
        for name in self.inputs:
            for rows in batch_sizes:
                try:
                    self.run(name, self.sample_inputs(name, rows))
                except Exception:  # noqa: BLE001 - warm-up is best effort (e.g. text inputs a sample cannot fit)
                    break

    def _sample_string(self):
        resize = (self.metadata.get("preprocessing") or {}).get("resize")
        if resize:
            from toolkit.export import encode_png

            channels = (self.metadata.get("preprocessing") or {}).get("decode_channels", 3)
            return encode_png(np.zeros([*resize, channels], "uint8"))
        return b"hello"

    def smoke_test(self) -> None:
        """Runs one tiny request; raises if the version cannot answer it."""
        signature, sample = self.smoke_inputs()
        outputs = self.run(signature, sample)
        rows = len(next(iter(sample.values())))
        bad = [k for k, v in outputs.items() if v.ndim and v.shape[0] != rows]
        if not outputs or bad:
            raise ValueError(f"smoke call of '{signature}' returned unexpected outputs {bad or outputs}")

    def describe(self) -> dict:
        """A JSON-able summary for the model list and the web page (which reads `task`, `labels`, the
        signatures, `box_format` for detectors, `palette` for segmenters, `corpus_size` for embedders and
        `latent_dim` for VAEs; `None` where the export does not record it)."""
        md = self.metadata
        return {
            "task": self.task,
            "labels": md.get("labels"),
            "target": md.get("target"),
            "batch_size": self.batch_size,
            "signatures": {
                name: {"inputs": {k: {"dtype": s.dtype, "shape": [-1 if d is None else d for d in s.shape]}
                                  for k, s in specs.items()},
                       "outputs": self.outputs[name]}
                for name, specs in self.inputs.items()
            },
            "input": md.get("input"),
            "preprocessing": md.get("preprocessing"),
            "box_format": md.get("box_format"),
            "palette": md.get("palette"),
            "corpus_size": md.get("corpus_size"),
            "latent_dim": md.get("latent_dim"),
        }
