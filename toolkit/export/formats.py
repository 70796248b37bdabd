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
ValueError: unknown export format(s) ['pdf']; choose from saved_model, tflite, onnx
"""

from __future__ import annotations

# Light on purpose (no TensorFlow import): `toolkit <task> --help` prints the table below.
FORMATS = ("saved_model", "tflite", "onnx")
TARGETS = ("cpu", "gpu", "tpu")

_RECURRENT_TFLITE = ("the TFLite converter needs a static TensorList element shape, which a Keras recurrent layer "
                     "has only with a static batch; export tflite with --target tpu (static batch) or use --model "
                     "cnn / tcn / tfidf-mlp")
_ERFC_ONNX = ("tf2onnx writes the exact GELU as an Erfc node, which ONNX does not define (onnxruntime refuses the "
              "graph); export tflite or a SavedModel")
# (kind, target, format) -> why that pair is refused (each measured). A kind without a row supports every pair.
UNSUPPORTED = {
    **{(f"text-classifier/{kind}", target, "tflite"): _RECURRENT_TFLITE
       for kind in ("rnn", "lstm", "gru") for target in ("cpu", "gpu")},
    **{("text-classifier/transformer", target, "onnx"): _ERFC_ONNX for target in TARGETS},
}


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
    return UNSUPPORTED.get((kind, target, fmt)) or UNSUPPORTED.get((kind.split("/")[0], target, fmt))


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
    is written for every target)."""
    pairs = [(t, f) for t in TARGETS for f in FORMATS if f != "saved_model"]
    header = ["model"] + [f"{t}:{f}" for t, f in pairs]
    rows = [[kind] + ["no" if unsupported_reason(kind, t, f) else "yes" for t, f in pairs] for kind in kinds]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])
