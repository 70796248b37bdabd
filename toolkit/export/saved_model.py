"""SavedModel signatures for the cpu, gpu and tpu targets, built from a `ServingAdapter`.

Signatures (TF Serving names them by these keys):
- `serving_default`: raw inputs (encoded bytes, strings) -> named outputs, preprocessing inside.
- `serving_dense`: dense tensors (what the model consumes) -> the same outputs.

cpu/gpu: dynamic batch, float32 I/O, no device placement in the graph (device-agnostic).
tpu: static batch (extra signatures too); the compute (model + numeric postprocessing) is a separate `jit_compile=True`
tf.function on dense tensors with no string ops, saved under the `tpu_func` function alias that
Cloud TPU's inference converter looks for. Per DESIGN.md, `ExportArchive.add_endpoint(jit_compile=True)`
silently drops XLA on the TF backend, so the compiled function is built here and passed in prebuilt.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from toolkit.export.adapter import RESERVED_SIGNATURES, ServingAdapter, named_function, with_batch
from toolkit.export.formats import TARGETS  # noqa: F401  (defined there, light; re-exported)



def build_signatures(model, adapter: ServingAdapter, target: str, batch_size: int | None):
    """Returns `(archive, save_options, compute_fn)` ready for `archive.write_out(path, options=...)`.

    `export` calls this, then reloads and parity-checks what was written; use `export` unless you need
    the bare archive.

    Examples:
    >>> from toolkit.export.adapter import dense_adapter
    >>> model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
    >>> archive, options, compute = build_signatures(model, dense_adapter(model), "tpu", batch_size=4)
    >>> archive.write_out("tiny_tpu", options=options, verbose=False)
    >>> reloaded = tf.saved_model.load("tiny_tpu")
    >>> sorted(reloaded.signatures), function_has_xla("tiny_tpu")
    (['serving_default', 'serving_dense', 'tpu_func'], True)
    >>> reloaded.signatures["serving_dense"](x=tf.ones((4, 3)))["outputs"].shape   # tpu: static batch
    TensorShape([4, 2])
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}. Received: target={target!r}")
    static = batch_size if target == "tpu" else None
    if target == "tpu" and not batch_size:
        raise ValueError("the tpu target needs a static batch size. Received: batch_size=None")
    dense_specs = with_batch(adapter.dense_inputs, static)
    raw_specs = with_batch(adapter.raw_inputs, static)
    dense_names = list(dense_specs)

    def compute(*tensors):
        return adapter.compute(model, dict(zip(dense_names, tensors)))

    compute_fn = tf.function(
        compute,
        input_signature=list(dense_specs.values()),
        jit_compile=(target == "tpu"),
        reduce_retracing=True,
    )
    if target == "tpu":
        # Verify TPU readiness here: the compute must compile with XLA (on CPU) and carry no string ops.
        compute_fn.get_concrete_function()
        _check_no_string_ops(compute_fn, dense_specs)

    def call_compute(dense):
        return compute_fn(*[dense[name] for name in dense_names])

    def serve_raw(raw):
        return adapter.run_raw(model, require_batch(raw, static), compute_fn=call_compute)

    def serve_dense(dense):
        return adapter.run_dense(model, require_batch(dense, static), compute_fn=call_compute)

    methods = {name: extra.method_name for name, extra in adapter.extra_signatures.items()
               if getattr(extra, "method_name", None)}
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        tf.function(named_function(serve_raw, list(raw_specs)), input_signature=list(raw_specs.values())),
    )
    archive.add_endpoint(
        "serving_dense",
        tf.function(named_function(serve_dense, dense_names), input_signature=list(dense_specs.values())),
    )
    for name, extra in adapter.extra_signatures.items():
        if name in RESERVED_SIGNATURES:
            raise ValueError(f"extra signature name {name!r} is reserved ({RESERVED_SIGNATURES})")
        specs = with_batch(extra.inputs, static) if static else {
            k: tf.TensorSpec(spec.shape, spec.dtype, name=k) for k, spec in extra.inputs.items()}
        archive.add_endpoint(
            name,
            tf.function(named_function(_bind(extra.function, model, static), list(specs)),
                        input_signature=list(specs.values())),
        )
    if methods:
        archive = _MethodNamedArchive(archive, methods)
    options = None
    if target == "tpu":
        archive.add_endpoint("tpu_func", compute_fn)
        options = tf.saved_model.SaveOptions(function_aliases={"tpu_func": compute_fn})
    return archive, options, compute_fn


class _MethodNamedArchive:
    """An ExportArchive (wrapped: `keras.export.ExportArchive` is a factory, not a class to subclass) that
    writes TF Serving method names (`tensorflow/serving/classify`, ...) on some signatures.
    `ExportArchive.write_out` goes through `tf.saved_model.save`, which marks every signature
    `tensorflow/serving/predict` and has no option for another method name, while TF Serving's Classify /
    Regress refuse a signature whose method name is not theirs. So the saved MetaGraphDef is rewritten in
    the (staging) folder right after it is written, before `export` reloads, parity-checks and publishes it."""

    def __init__(self, archive, methods: dict):
        self._archive, self._methods = archive, dict(methods)

    def __getattr__(self, name):
        return getattr(self._archive, name)

    def write_out(self, filepath, options=None, verbose=True):
        self._archive.write_out(filepath, options=options, verbose=verbose)
        set_method_names(filepath, self._methods)


def set_method_names(saved_model_dir: str, methods: dict) -> None:
    """Sets `signature_def[name].method_name` in `saved_model_dir/saved_model.pb` (every MetaGraph).

    The graph is untouched: only the SignatureDef's method name, which TF Serving reads to decide which
    API (Predict / Classify / Regress) may call the signature. Raises KeyError for an unknown signature.

    Examples:
    >>> class M(tf.Module):
    ...     @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    ...     def classify(self, inputs):
    ...         return {"scores": tf.ones([tf.shape(inputs)[0], 1])}
    >>> m = M(); tf.saved_model.save(m, "tiny_classify", signatures={"classify": m.classify})
    >>> set_method_names("tiny_classify", {"classify": "tensorflow/serving/classify"})
    >>> from toolkit.serving.servable import read_signature_defs
    >>> read_signature_defs("tiny_classify")["classify"].method_name
    'tensorflow/serving/classify'
    """
    import os

    from tensorflow.core.protobuf import saved_model_pb2

    if not methods:
        return
    file = os.path.join(saved_model_dir, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    with open(file, "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        for name, method in methods.items():
            if name not in meta_graph.signature_def:
                raise KeyError(f"signature {name!r} not in {file} (has {sorted(meta_graph.signature_def)})")
            meta_graph.signature_def[name].method_name = method
    with open(file, "wb") as f:
        f.write(proto.SerializeToString())


def _bind(function, model, batch=None):
    return lambda values: function(model, require_batch(values, batch))


def require_batch(tensors: dict, batch: int | None) -> dict:
    """tpu exports take exactly `batch` rows. A signature loaded in plain TF does not check the shapes it is
    called with, so a short batch would fail deep inside XLA (`Input to reshape is a tensor with 576 values`,
    `Trying to access element 7 in a list with 3 elements`). `EnsureShape` checks at run time and names the
    input: `Shape of tensor images [3] is not compatible with expected shape [8]` (an assert on `tf.shape`
    would not: grappler folds it to the declared, here misleading, shape)."""
    if not batch:
        return tensors
    return {name: tf.ensure_shape(t, t.shape) for name, t in tensors.items()}


def _check_no_string_ops(compute_fn, specs):
    graph = compute_fn.get_concrete_function(*specs.values()).graph
    bad = sorted({op.type for op in graph.get_operations() if any(t.dtype == tf.string for t in op.outputs)})
    if bad:
        raise ValueError(f"the tpu compute function must not use string ops; found {bad}")


def function_has_xla(saved_model_dir: str, alias: str = "tpu_func") -> bool:
    """Whether the SavedModel stores a function marked `_XlaMustCompile` (what jit_compile=True writes)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(f"{saved_model_dir}/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    for meta_graph in proto.meta_graphs:
        for function in meta_graph.graph_def.library.function:
            attr = function.attr.get("_XlaMustCompile")
            if attr is not None and attr.b:
                return True
    return False
