"""What turns a model into a raw-input service: preprocessing, postprocessing and labels.

Each task (image classification, detection, segmentation, text) supplies one `ServingAdapter`; the
exporter turns it into SavedModel signatures, and the app's in-process `predict` runs the very same
functions eagerly, so exported and live predictions come from one code path.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from toolkit.export.samples import random_samples


@dataclasses.dataclass
class ExtraSignature:
    """A named SavedModel signature beyond `serving_default` / `serving_dense` (e.g. a VAE's `decode`).

    The exporter adds it as-is (its specs keep their own batch dimension on every target), checks its
    parity against the live model on `sample`, and records its inputs in the metadata.

    Args:
        inputs: dict name -> `tf.TensorSpec` of the signature's inputs.
        function: `fn(model, inputs: dict) -> dict` of tensors (the live and exported paths both call it).
        sample: dict name -> array/list, example inputs for the parity check (required to export).
        description: one line for `assets.extra/toolkit.json`.
        method_name: the SignatureDef's method name, e.g. `CLASSIFY_METHOD` for TF Serving's Classify API
            (default: predict).
    """

    inputs: dict
    function: Callable
    sample: dict | None = None
    description: str = ""
    method_name: str | None = None


CLASSIFY_METHOD = "tensorflow/serving/classify"  # TF Serving's classification method (Classify / :classify)
CLASSIFY_SIGNATURE = "classify"


def classification_signature(adapter: "ServingAdapter", feature: str) -> ExtraSignature:
    """TF Serving's classify signature for a classifier adapter with `labels`: `inputs` (serialized
    `tf.Example`s, the raw input as a bytes feature named `feature`) -> `classes` (every label name,
    tf.string `[B, K]`, in class-id order) and `scores` (float32 `[B, K]`, the same scores as
    `serving_default`). Its method name is `tensorflow/serving/classify`, so TF Serving's Classify clients
    (stock TF Serving or `toolkit serve`) get label names directly.

    Examples:
    >>> from toolkit.export import encode_png, image_classification_adapter
    >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")])
    >>> adapter = image_classification_adapter(model, ["cat", "dog"], np.zeros((2, 4, 4, 1), "uint8"))
    >>> example = tf.train.Example(features=tf.train.Features(feature={"images": tf.train.Feature(
    ...     bytes_list=tf.train.BytesList(value=[encode_png(np.zeros((4, 4, 1), "uint8"))]))}))
    >>> out = adapter.run_extra(model, "classify", {"inputs": [example.SerializeToString()]})
    >>> out["classes"].numpy().tolist(), out["scores"].shape
    ([[b'cat', b'dog']], TensorShape([1, 2]))
    """
    labels = [str(label) for label in adapter.labels]
    raw_name = next(iter(adapter.raw_inputs))
    spec = adapter.raw_inputs[raw_name]
    if len(adapter.raw_inputs) != 1 or spec.dtype != tf.string:
        raise ValueError(f"a classify signature needs one string raw input; the adapter has {sorted(adapter.raw_inputs)}")

    def classify(model, inputs):
        parsed = tf.io.parse_example(inputs["inputs"], {feature: tf.io.FixedLenFeature([], tf.string)})
        outputs = adapter.run_raw(model, {raw_name: parsed[feature]})
        scores = tf.cast(outputs["scores"], tf.float32)
        classes = tf.tile(tf.constant(labels)[None], [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}

    sample = None
    if adapter.sample_raw and raw_name in adapter.sample_raw:
        values = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in list(adapter.sample_raw[raw_name])]
        sample = {"inputs": [tf.train.Example(features=tf.train.Features(feature={
            feature: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))})).SerializeToString()
            for v in values]}
    return ExtraSignature(
        inputs={"inputs": tf.TensorSpec([None], tf.string, name="inputs")},
        function=classify,
        sample=sample,
        description=f"TF Serving Classify: serialized tf.Example with bytes feature '{feature}' -> classes "
                    "(label names), scores",
        method_name=CLASSIFY_METHOD,
    )


RESERVED_SIGNATURES = ("serving_default", "serving_dense", "tpu_func")


@dataclasses.dataclass
class ServingAdapter:
    """How raw inputs reach the model and model outputs become named, useful outputs.

    Args:
        task: str. task name recorded in the metadata (`"image_classification"`, ...).
        raw_inputs: dict name -> `tf.TensorSpec` (batch dim None) of the raw signature, e.g.
            `{"images": TensorSpec([None], tf.string)}`.
        dense_inputs: dict name -> `tf.TensorSpec` (batch dim None) of what the model consumes.
        preprocess: `fn(raw: dict) -> (dense: dict, context)`; may use string ops. `context` carries what
            `finalize` needs (original image sizes, ...), or None.
        postprocess: `fn(model_outputs) -> dict` of numeric tensors; XLA-compilable (no string ops), it
            runs inside the tpu target's compiled function.
        finalize: optional `fn(outputs: dict, context) -> dict` run after the compute (rescale boxes to
            the input size, resize masks, ...); `context` is None on the dense signature.
        labels: class names; when set, `outputs[label_source]` (int ids) is mapped to a `labels` output.
        label_source: which output holds the class ids.
        sample_raw: raw example inputs (dict name -> list/array) used for parity checks.
        metadata: extra JSON-able facts for `assets.extra/toolkit.json` (preprocessing, input sizes, ...).
        requires: python modules a loading process must import (e.g. `["tensorflow_text"]`).
        extra_signatures: optional dict name -> `ExtraSignature`, more named signatures for the export.
        for_target: optional `fn(target) -> ServingAdapter`, a variant for one export target (e.g. text
            padded to a fixed sequence length for tpu, per-batch padding for cpu/gpu); `export` applies it.
    """

    task: str
    raw_inputs: dict
    dense_inputs: dict
    preprocess: Callable
    postprocess: Callable
    finalize: Callable | None = None
    labels: list | None = None
    label_source: str = "classes"
    sample_raw: dict | None = None
    metadata: dict = dataclasses.field(default_factory=dict)
    requires: list = dataclasses.field(default_factory=list)
    extra_signatures: dict = dataclasses.field(default_factory=dict)
    for_target: Callable | None = None

    def call_model(self, model, dense: dict):
        """Feeds the dense inputs to the model (a single tensor when there is one input)."""
        if len(dense) == 1:
            return model(next(iter(dense.values())), training=False)
        return model(dense, training=False)

    def compute(self, model, dense: dict) -> dict:
        """Dense inputs -> numeric outputs (the part that runs on an accelerator)."""
        return self.postprocess(self.call_model(model, dense))

    def add_labels(self, outputs: dict) -> dict:
        if self.labels and self.label_source in outputs:
            table = tf.constant([str(label) for label in self.labels])
            ids = tf.cast(outputs[self.label_source], tf.int32)
            safe = tf.clip_by_value(ids, 0, len(self.labels) - 1)
            outputs = {**outputs, "labels": tf.where(ids >= 0, tf.gather(table, safe), tf.constant(""))}
        return outputs

    def run_raw(self, model, raw: dict, compute_fn: Callable | None = None) -> dict:
        """The full raw path: preprocess -> compute -> finalize -> labels."""
        dense, context = self.preprocess(raw)
        outputs = (compute_fn or (lambda d: self.compute(model, d)))(dense)
        if self.finalize is not None:
            outputs = self.finalize(outputs, context)
        return self.add_labels(outputs)

    def run_dense(self, model, dense: dict, compute_fn: Callable | None = None) -> dict:
        outputs = (compute_fn or (lambda d: self.compute(model, d)))(dense)
        if self.finalize is not None:
            outputs = self.finalize(outputs, None)
        return self.add_labels(outputs)

    def run_extra(self, model, name: str, inputs: dict) -> dict:
        """Runs the extra signature `name` on the live model (the exported signature runs the same function)."""
        if name not in self.extra_signatures:
            raise KeyError(f"signature {name!r} not found; extra signatures: {sorted(self.extra_signatures)}")
        extra = self.extra_signatures[name]
        tensors = {k: tf.convert_to_tensor(v, dtype=extra.inputs[k].dtype) for k, v in inputs.items()}
        return extra.function(model, tensors)


def with_classify_signature(adapter: ServingAdapter, feature: str) -> ServingAdapter:
    """Adds TF Serving's `classify` signature (serialized tf.Example with bytes feature `feature` ->
    `classes` label names, `scores`) when the adapter has labels and sample inputs for its parity check."""
    if adapter.labels and adapter.sample_raw:
        adapter.extra_signatures[CLASSIFY_SIGNATURE] = classification_signature(adapter, feature)
    return adapter


def named_function(fn: Callable, names: list) -> Callable:
    """Wraps `fn(dict)` as a function with one named positional argument per input.

    tf.function derives SavedModel signature input keys from argument names; this gives every
    signature the adapter's input names (`images`, `text`, ...) whatever they are.
    """

    def wrapper(*args, **kwargs):
        values = dict(zip(names, args))
        values.update(kwargs)
        return fn(values)

    wrapper.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    wrapper.__name__ = getattr(fn, "__name__", "serve")
    return wrapper


def with_batch(specs: dict, batch_size: int | None) -> dict:
    """Copies `specs` with the leading (batch) dimension set to `batch_size` (scalar specs stay scalars)."""
    return {
        name: tf.TensorSpec([batch_size, *spec.shape[1:]] if spec.shape.rank else spec.shape, spec.dtype, name=name)
        for name, spec in specs.items()
    }


def dense_adapter(model, labels=None) -> ServingAdapter:
    """The fallback for any Keras model: dense tensors in, the model's outputs out."""
    inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
    specs = {}
    for index, tensor in enumerate(inputs):
        name = getattr(tensor, "name", None) or f"input_{index}"
        name = name.split(":")[0].replace("/", "_")
        specs[name] = tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype or tf.float32, name=name)

    def postprocess(outputs):
        if isinstance(outputs, dict):
            return {k: tf.cast(v, tf.float32) if v.dtype.is_floating else v for k, v in outputs.items()}
        if isinstance(outputs, (list, tuple)):
            return {f"output_{i}": o for i, o in enumerate(outputs)}
        return {"outputs": outputs}

    rng = np.random.default_rng(0)  # one stream for all inputs
    sample = {n: random_samples(s.shape[1:], 2, kind="normal", dtype=s.dtype.as_numpy_dtype, seed=rng)
              for n, s in specs.items()}
    return ServingAdapter(
        task="generic",
        raw_inputs=specs,
        dense_inputs=specs,
        preprocess=lambda raw: (raw, None),
        postprocess=postprocess,
        labels=labels,
        sample_raw=sample,
    )


def to_numpy_dict(outputs: Any) -> dict:
    return {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in outputs.items()}
