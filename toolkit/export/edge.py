"""An exported TFLite or ONNX file as a predictor with the SavedModel `Predictor`'s interface.

`EdgePredictor("savedmodels/fashion/3/model-int8.tflite")` runs the file through its own runtime (the LiteRT
interpreter with its default delegate, or onnxruntime on CPU), so `App.score` and `App.predict` measure what a
device would run. The file covers the dense signature; the raw one (encoded image bytes) decodes and resizes
in TensorFlow as the file's metadata describes, runs the file, then maps boxes / masks back to each input's size.
"""

from __future__ import annotations

import json
import os

import numpy as np

from toolkit.export.formats import FILE_NAMES

EDGE_SUFFIXES = (".tflite", ".onnx")
LABELS_FILE = "labels.txt"


def is_edge_file(path) -> bool:
    """Whether `path` names a TFLite or ONNX file (rather than a SavedModel folder)."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).endswith(EDGE_SUFFIXES)


def sidecar_path(path: str) -> str:
    """The JSON metadata beside an edge file: `model-int8.tflite` -> `model-int8.tflite.json`."""
    return os.fspath(path) + ".json"


def read_edge_metadata(path: str) -> dict:
    """The sidecar JSON of an edge file, else its version folder's `assets.extra/toolkit.json`."""
    for candidate in (sidecar_path(path), os.path.join(os.path.dirname(os.path.abspath(path)), "assets.extra",
                                                        "toolkit.json")):
        if os.path.isfile(candidate):
            with open(candidate) as f:
                return json.load(f)
    return {}


class EdgePredictor:
    """A `.tflite` / `.onnx` file as `predictor(inputs, signature) -> {output name: numpy array}`.

    Args:
        path: the file.
        metadata: its metadata (default: `read_edge_metadata(path)`): labels, preprocessing, app info.
        num_threads: LiteRT / onnxruntime threads (default: the runtime's).

    Integer inputs are quantized and integer float-outputs dequantized with the scale and zero point stored in
    the file, so a full-integer (`int8_io`) file takes and returns the same floats as a float one.
    """

    signatures = ("serving_default", "serving_dense")

    def __init__(self, path: str, metadata: dict | None = None, num_threads: int | None = None):
        self.path = os.fspath(path)
        if not is_edge_file(self.path):
            raise ValueError(f"not a .tflite or .onnx file: {self.path!r}")
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no such file: {self.path!r}")
        self.metadata = metadata if metadata is not None else read_edge_metadata(self.path)
        self.labels = self.metadata.get("labels")
        self.batch_size = None
        self.runtime = "litert" if self.path.endswith(".tflite") else "onnxruntime"
        self.num_threads = num_threads
        self._runners: dict = {}
        if self.runtime == "onnxruntime":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            if num_threads:
                options.intra_op_num_threads = num_threads
            self._session = onnxruntime.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])

    def input_specs(self, signature: str = "serving_default") -> dict:
        if signature not in self.signatures:
            raise KeyError(f"signature {signature!r} not found; available: {list(self.signatures)}")
        dense = list((self.metadata.get("signatures") or {}).get("serving_dense") or {"pixels": {}})
        raw = list((self.metadata.get("signatures") or {}).get("serving_default") or {"images": {}})
        return {name: None for name in (raw if signature == "serving_default" else dense)}

    def __call__(self, inputs=None, signature: str = "serving_default", chunk_size: int = 64, **named) -> dict:
        """Runs the raw (`serving_default`: encoded images) or dense (`serving_dense`) path on numpy inputs."""
        specs = self.input_specs(signature)
        if inputs is not None:
            named = dict(inputs) if isinstance(inputs, dict) else {next(iter(specs)): inputs}
        if signature == "serving_default":
            return self._raw(named, chunk_size)
        missing = set(specs) - set(named)
        if missing:
            raise ValueError(f"signature {signature!r} needs inputs {sorted(specs)}; missing {sorted(missing)}")
        arrays = {k: np.asarray(named[k], dtype="float32") for k in specs}
        total = len(next(iter(arrays.values())))
        pieces = [self.run_dense({k: v[i : i + chunk_size] for k, v in arrays.items()})
                  for i in range(0, total, chunk_size)]
        out = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]} if pieces else {}
        return self._add_labels(out)

    # ---- the file ---------------------------------------------------------------------------------------------
    def run_dense(self, arrays: dict) -> dict:
        """One call of the file on dense float inputs (any batch), dequantized outputs."""
        if self.runtime == "onnxruntime":
            feeds = {i.name: arrays[n] for i, n in zip(self._session.get_inputs(), arrays)}
            names = [o.name for o in self._session.get_outputs()]
            return dict(zip(names, self._session.run(names, feeds)))
        batch = len(next(iter(arrays.values())))
        runner, details = self._runner(batch, {k: v.shape for k, v in arrays.items()})
        feeds = {}
        for (name, value), detail in zip(arrays.items(), details["inputs"]):
            feeds[detail["signature_name"]] = _quantize(value, detail)
        outputs = runner(**feeds)
        return {name: _dequantize(np.asarray(value), details["outputs"].get(name)) for name, value in outputs.items()}

    def _runner(self, batch, shapes):
        """One interpreter per batch size (resizing pins buffers; evaluation uses at most two sizes)."""
        if batch not in self._runners:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_path=self.path, num_threads=self.num_threads)
            names = list(interpreter.get_signature_list()["serving_default"]["inputs"])
            probe = interpreter.get_signature_runner().get_input_details()  # signature name -> tensor detail
            inputs = []
            for (_, shape), name in zip(shapes.items(), names if len(names) > 1 else names[:1]):
                detail = {**probe[name], "signature_name": name}
                if list(detail["shape"]) != list(shape):
                    interpreter.resize_tensor_input(detail["index"], list(shape))
                inputs.append(detail)
            interpreter.allocate_tensors()  # before the signature runner used: it pins the interpreter's buffers
            runner = interpreter.get_signature_runner()
            self._runners[batch] = (runner, {"inputs": inputs, "outputs": runner.get_output_details(),
                                             "interpreter": interpreter})
        return self._runners[batch]

    # ---- raw inputs -------------------------------------------------------------------------------------------
    def _raw(self, named: dict, chunk_size: int) -> dict:
        import tensorflow as tf

        from toolkit.export.image import decode_images

        if "images" not in named:
            raise ValueError(f"{self.path}: the raw path takes encoded `images`; got {sorted(named)}")
        preprocessing = self.metadata.get("preprocessing") or {}
        size = preprocessing.get("resize") or list(self.metadata.get("info", {}).get("image_shape", [])[:2])
        channels = preprocessing.get("decode_channels") or self.metadata.get("info", {}).get("image_shape", [0, 0, 3])[2]
        if not size:
            raise ValueError(f"{self.path}: its metadata does not say the input size (preprocessing.resize)")
        encoded = named["images"]
        encoded = [encoded] if isinstance(encoded, (bytes, str)) else list(encoded)
        pixels, sizes = decode_images(tf.constant(np.array(encoded, dtype=object)), tuple(size), int(channels))
        out = self({"pixels": pixels.numpy()}, signature="serving_dense", chunk_size=chunk_size)
        task = self.metadata.get("task")
        if task == "object_detection":
            from toolkit.export.detection import rescale_boxes

            out["boxes"] = rescale_boxes(tf.constant(out["boxes"]), sizes, tuple(size)).numpy()
        elif task == "semantic_segmentation":
            from toolkit.export.segmentation import _masks_at_sizes

            masks, _ = _masks_at_sizes(tf.constant(out["probabilities"]), sizes, False)
            out = {"masks": masks.numpy(), "image_sizes": sizes.numpy()}
        return out

    def _add_labels(self, out: dict) -> dict:
        source = self.metadata.get("label_source", "classes")
        if self.labels and source in out:
            table = np.array([str(label) for label in self.labels] + [""], dtype=object)
            ids = np.asarray(out[source]).astype("int64")
            out["labels"] = table[np.where((ids >= 0) & (ids < len(self.labels)), ids, len(self.labels))]
        return out


def _quantize(value, detail):
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return value.astype(dtype)
    scale, zero = detail.get("quantization", (0.0, 0))
    if scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(value / scale + zero), info.min, info.max).astype(dtype)
    return value.astype(dtype)


def _dequantize(value, detail):
    if detail is None or value.dtype not in (np.int8, np.uint8, np.int16):
        return value
    scale, zero = detail.get("quantization", (0.0, 0))
    if not scale:
        return value
    return ((value.astype("float32") - zero) * scale).astype("float32")


def load_edge(path: str, num_threads: int | None = None) -> EdgePredictor:
    """Loads a `.tflite` / `.onnx` export file as an `EdgePredictor`."""
    return EdgePredictor(path, num_threads=num_threads)


def file_of(fmt: str) -> str:
    """The file name an extra format writes (`tflite-int8` -> `model-int8.tflite`)."""
    return FILE_NAMES[fmt]


# The facts of toolkit.json a lone edge file needs (copied into its sidecar).
_SIDECAR_KEYS = ("task", "app", "labels", "input", "preprocessing", "signatures", "info", "metrics", "versions",
                 "created", "class_names", "palette", "outputs", "nms")


def write_sidecars(version_dir: str, files: dict, adapter) -> None:
    """`labels.txt` and `<file>.json` beside each TFLite / ONNX file of a version folder.

    The maintained TFLite Metadata writer (tflite-support 0.4.4, last released 2023) pins protobuf<4, which
    cannot install beside TensorFlow 2.21 (protobuf>=6.31): so the labels travel as an associated file and the
    input normalisation, tensor quantization and app facts as a sidecar JSON a mobile app reads beside the model.
    """
    with open(os.path.join(version_dir, "assets.extra", "toolkit.json")) as f:
        document = json.load(f)
    if adapter.labels:
        with open(os.path.join(version_dir, LABELS_FILE), "w", encoding="utf-8") as f:
            f.write("".join(f"{label}\n" for label in adapter.labels))
    quantization = document.get("quantization") or {}
    for fmt, name in files.items():
        sidecar = {key: document[key] for key in _SIDECAR_KEYS if key in document}
        sidecar.update({
            "file": name, "format": fmt, "label_source": adapter.label_source,
            "associated_files": [{"name": LABELS_FILE, "type": "TENSOR_AXIS_LABELS",
                                  "tensor": adapter.label_source}] if adapter.labels else [],
            "normalization": {"mean": [0.0], "std": [1.0], "input_range": [0.0, 255.0],
                              "note": "pixels in [0, 255]; the model normalises inside"}
            if "pixels" in adapter.dense_inputs else None,
            "tensors": tensor_details(os.path.join(version_dir, name)),
        })
        if fmt in quantization.get("formats", {}):
            sidecar["quantization"] = {**{k: v for k, v in quantization.items() if k != "formats"},
                                       **quantization["formats"][fmt]}
        with open(sidecar_path(os.path.join(version_dir, name)), "w") as f:
            json.dump(sidecar, f, indent=2, default=str)


def tensor_details(path: str) -> dict:
    """{"inputs": [...], "outputs": [...]} names, dtypes, shapes (and int8 scale / zero point) of an edge file."""
    if path.endswith(".onnx"):
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return {side: [{"name": t.name, "dtype": t.type, "shape": [d if isinstance(d, int) else None for d in t.shape]}
                       for t in tensors] for side, tensors in (("inputs", session.get_inputs()),
                                                               ("outputs", session.get_outputs()))}
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner()

    def rows(details):
        return [{"name": name, "dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d["shape_signature"]],
                 **({"scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])}
                    if d["quantization"][0] else {})} for name, d in details.items()]

    return {"inputs": rows(runner.get_input_details()), "outputs": rows(runner.get_output_details())}
