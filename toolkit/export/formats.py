"""Which (target, format) pairs each kind of model exports to, checked before any work starts.

Like Ultralytics' export-format table: one table, shown by `--help`, and a pair that is known not to work is
refused up front with the reason, instead of failing with a converter traceback after training. A model kind
is the app name, or `app/model` for apps with several model families (`text-classifier/gru`).

Examples:
>>> check_export_options("image-classifier", "cpu", "saved_model,onnx")
('saved_model', 'onnx')
>>> check_export_options("image-classifier", "cpu", "saved_model,pdf")
Traceback (most recent call last):
...
ValueError: unknown export format(s) ['pdf']; choose from saved_model, tflite, onnx, tflite-dynamic, tflite-fp16, tflite-int8, onnx-int8
"""

from __future__ import annotations

# Light on purpose (no TensorFlow import): `toolkit <task> --help` prints the table below.
FLOAT_FORMATS = ("saved_model", "tflite", "onnx")
# Quantized edge files, one format name each (not a `quantize=` option): each is its own file, runtime and row of
# the table below, one export can write several side by side, and fp16 has no ONNX twin. Every one is scored on
# held-out data through its own runtime and published only within `max_quantization_drop` of the float model.
QUANTIZED_FORMATS = ("tflite-dynamic", "tflite-fp16", "tflite-int8", "onnx-int8")
FORMATS = FLOAT_FORMATS + QUANTIZED_FORMATS
TARGETS = ("cpu", "gpu", "tpu")
# The file each extra format writes in the version folder.
FILE_NAMES = {"tflite": "model.tflite", "onnx": "model.onnx", "tflite-dynamic": "model-dynamic.tflite",
              "tflite-fp16": "model-fp16.tflite", "tflite-int8": "model-int8.tflite", "onnx-int8": "model-int8.onnx"}

_RECURRENT_TFLITE = ("the TFLite converter needs a static TensorList element shape, which a Keras recurrent layer "
                     "has only with a static batch; export tflite with --target tpu (static batch) or use --model "
                     "cnn / tcn / tfidf-mlp")
_ERFC_ONNX = ("tf2onnx writes the exact GELU as an Erfc node, which ONNX does not define (onnxruntime refuses the "
              "graph); export tflite or a SavedModel")
_QUANTIZED_TPU = ("quantized files are for CPU / edge runtimes (LiteRT, onnxruntime); a tpu export is a static-batch "
                  "bf16 graph for Cloud TPU: export them with --target cpu")
_QUANTIZED_VAE = ("the VAE's held-out metric (nats) needs its log_weights signature, which a TFLite / ONNX file does not "
                  "carry, so the accuracy guard cannot score a quantized file: export tflite / onnx (float)")
_QUANTIZED_ANOMALY = ("the quantization accuracy guard has no anomaly metric yet (apps/quantization.py GUARDS: ROC-AUC "
                      "would need its own max drop), so a quantized file could not be checked: export tflite / onnx "
                      "(float) or a SavedModel")
_QUANTIZED_TEXT = ("the text apps tokenize strings in-graph, which a quantized TFLite / ONNX file cannot hold, and "
                   "their held-out scoring runs through that tokenizer: export tflite / onnx (float) or a SavedModel")
_GENERATOR_EDGE = ("the text generator's decode loop (a tf.while_loop with in-graph sampling and string lookups) does "
                   "not convert: TFLite has no BitwiseAnd kernel (its seeded sampling noise) and tf2onnx fails on the "
                   "loop's graph inputs (both measured); export a SavedModel")
_CONV3D_TFLITE = ("TFLite has no 3D pooling kernel: the converter refuses the Conv3D classifier's tf.MaxPool3D (a TF "
                  "Select op; measured); export onnx / onnx-int8 or a SavedModel")
# (kind, target, format) -> why that pair is refused (each measured). A kind without a row supports every pair.
UNSUPPORTED = {
    **{(f"text-classifier/{kind}", target, "tflite"): _RECURRENT_TFLITE
       for kind in ("rnn", "lstm", "gru") for target in ("cpu", "gpu")},
    **{("text-classifier/transformer", target, "onnx"): _ERFC_ONNX for target in TARGETS},
    **{(kind, target, fmt): _QUANTIZED_TEXT for kind in ("text-classifier", "text-embedder", "question-answerer")
       for target in ("cpu", "gpu") for fmt in QUANTIZED_FORMATS},
    **{("vae", target, fmt): _QUANTIZED_VAE for target in ("cpu", "gpu") for fmt in QUANTIZED_FORMATS},
    **{("text-generator", target, fmt): _GENERATOR_EDGE for target in TARGETS for fmt in FORMATS if fmt != "saved_model"},
    **{("anomaly-detector", target, fmt): _QUANTIZED_ANOMALY for target in ("cpu", "gpu")
       for fmt in QUANTIZED_FORMATS},
    **{("array-classifier/conv3d", target, fmt): _CONV3D_TFLITE for target in TARGETS
       for fmt in ("tflite", "tflite-dynamic", "tflite-fp16", "tflite-int8")},
}
# (target, format) -> why, for every kind.
UNSUPPORTED_EVERY_KIND = {("tpu", fmt): _QUANTIZED_TPU for fmt in QUANTIZED_FORMATS}


def parse_formats(formats) -> tuple:
    """`"saved_model,tflite"` or a sequence -> a tuple of known format names (unknown ones are an error)."""
    names = [f.strip() for f in formats.split(",")] if isinstance(formats, str) else [str(f) for f in formats]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {', '.join(FORMATS)}")
    return tuple(names) or ("saved_model",)


def unsupported_reason(kind: str, target: str, fmt: str) -> str | None:
    """Why `kind` cannot export `fmt` for `target`, or None when the pair works."""
    return (UNSUPPORTED.get((kind, target, fmt)) or UNSUPPORTED.get((kind.split("/")[0], target, fmt))
            or UNSUPPORTED_EVERY_KIND.get((target, fmt)))


def check_export_options(kind: str, target: str, formats) -> tuple:
    """Validates a target and formats for a model kind; returns the formats as a tuple.

    Raises:
        ValueError: an unknown target or format (listing the valid ones), or a pair in `UNSUPPORTED` (with why).
    """
    if target not in TARGETS:
        raise ValueError(f"unknown export target {target!r}; choose from {', '.join(TARGETS)}")
    names = parse_formats(formats)
    for fmt in names:
        reason = unsupported_reason(kind, target, fmt)
        if reason:
            raise ValueError(f"{kind} cannot export {fmt} for target {target}: {reason}")
    return names


def support_table(kinds) -> str:
    """A plain-text table of kinds x (target, extra format) pairs (`yes` / `no`), for `--help` (a SavedModel
    is written for every target). Pairs refused for every kind (quantized files on tpu) are left out as columns."""
    pairs = [(t, f) for t in TARGETS for f in FORMATS if f != "saved_model" and (t, f) not in UNSUPPORTED_EVERY_KIND]
    header = ["model"] + [f"{t}:{f}" for t, f in pairs]
    rows = [[kind] + ["no" if unsupported_reason(kind, t, f) else "yes" for t, f in pairs] for kind in kinds]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])
