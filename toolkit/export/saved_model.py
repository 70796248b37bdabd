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
    options = None
    if target == "tpu":
        archive.add_endpoint("tpu_func", compute_fn)
        options = tf.saved_model.SaveOptions(function_aliases={"tpu_func": compute_fn})
    return archive, options, compute_fn


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
