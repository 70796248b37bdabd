"""The `toolkit` command: `toolkit <task> <train|evaluate|export|predict> ...`, plus serve, inspect, ...

One grammar for every task. Each task's `train` flags are generated from its Config dataclass, so the
CLI and the Python API can never drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import re
import sys

# Tasks: CLI name -> module stem. `apps.specs.<stem>` holds the task's Config and CLI facts (no TensorFlow:
# `--help` is built from it); `apps.<stem>` exposes `APP` (an `apps.base.App`), imported only to run a verb.
TASKS = {
    "image-classifier": "image_classifier",
    "object-detector": "object_detector",
    "image-segmenter": "image_segmenter",
    "text-classifier": "text_classifier",
    "text-embedder": "text_embedder",
    "vae": "vae",
    "anomaly-detector": "anomaly_detector",
    "text-generator": "text_generator",
    "question-answerer": "question_answerer",
    "array-classifier": "array_classifier",
}
# One line each for `toolkit --help` (which must not import TensorFlow).
TASK_HELP = {
    "image-classifier": "image classification with transfer learning (folders, arrays, TFDS)",
    "object-detector": "object detection: YOLO or SSD, COCO / VOC / YOLO annotations, NMS in the export",
    "image-segmenter": "semantic segmentation with U-Net (image + mask folders)",
    "text-classifier": "text classification: TF-IDF MLP, RNN/LSTM/GRU, CNN, TCN, Transformer, BERT",
    "text-embedder": "sentence embeddings and cosine search with a BERT checkpoint",
    "vae": "variational autoencoder: ELBO, samples, latent tools, few-label classification",
    "anomaly-detector": "anomaly detection by reconstruction error or -ELBO: threshold at a target FPR, ROC/PR-AUC",
    "text-generator": "decoder-only Transformer language model on .txt: perplexity, temperature sampling, generate",
    "question-answerer": "extractive QA: BERT start/end heads on (question, context, answer) rows, exact match and F1",
    "array-classifier": "sequences (T, C) with Conv1D, volumes (D, H, W, C) with Conv3D, from .npz / .npy files",
}

# Other commands: name -> module exposing `add_arguments(parser)` and `main(args) -> int`, plus `HELP`.
COMMANDS: dict = {"serve": "apps.serve", "predict": "apps.predict_cli"}
COMMANDS.update({"inspect": "apps.inspect_cli", "style-transfer": "apps.style_transfer_cli"})
COMMANDS["runs"] = "apps.runs_cli"
COMMANDS["weights"] = "apps.weights_cli"


def _add_config_flags(parser, config_cls, ignored=()):
    group = parser.add_argument_group("training options")
    for field in dataclasses.fields(config_cls):
        if field.name in ignored:
            continue
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata.get("help", "") + f" (default: {field.default!r})"
        kwargs = {"dest": field.name, "default": argparse.SUPPRESS, "help": help_text}
        if field.metadata.get("choices"):
            kwargs["choices"] = field.metadata["choices"]
        if isinstance(field.default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            group.add_argument(flag, type=type(field.default), **kwargs)


def _export_table(spec) -> str:
    from toolkit.export.formats import support_table

    return "export targets and formats (yes: supported; a 'no' pair is refused before any work):\n" + \
        support_table(spec.kinds())


def task_spec(name: str):
    """The `TaskSpec` of a CLI task name (light: no TensorFlow). Only names in the fixed `TASKS` table are
    imported (an unknown name is a KeyError argparse has already refused), never a name from data."""
    return importlib.import_module(f"apps.specs.{TASKS[name]}").SPEC


def task_app(name: str):
    """The `App` of a CLI task name (imports TensorFlow)."""
    return importlib.import_module(f"apps.{TASKS[name]}").APP


def _task_parser(sub, name):
    app = task_spec(name)
    task = sub.add_parser(name, help=app.description, description=app.description)
    verbs = task.add_subparsers(dest="verb", required=True, metavar="{" + ",".join(  # + task verbs (generate)
        ("train", "evaluate", "export", "predict", "lr-find", "tune", *getattr(app, "extra_verbs", ()))) + "}")
    table = _export_table(app)

    train = verbs.add_parser("train", help="train, evaluate on held-out data, optionally export", epilog=table,
                             formatter_class=_HelpFormatter)
    train.add_argument("--data", required=True, help="training data: a folder, 'tfds:NAME', ...")
    train.add_argument("--test-data", help="held-out test data (default: the validation split)")
    train.add_argument("--config", metavar="FILE", help="options from a JSON file (a run's config.json, tune's "
                                                        "best.json); flags given here win")
    train.add_argument("--export", metavar="DIR", help="export the trained model to DIR/<version>/")
    train.add_argument("--target", default="cpu", choices=("cpu", "gpu", "tpu"), help="export target")
    train.add_argument("--formats", default="saved_model", help="comma list of saved_model, tflite, onnx and the quantized tflite-dynamic, tflite-fp16, tflite-int8, onnx-int8")
    _add_guard_flags(train)  # the same guard as `export` (train calibrates on its in-memory training data)
    _add_config_flags(train, app.config_cls, app.ignored_options)

    evaluate = verbs.add_parser("evaluate", help="metrics of an exported model or run directory on data")
    evaluate.add_argument("model", help="export folder (NAME/ or NAME/<version>/), a .tflite / .onnx file of an "
                                        "export, or a run directory")
    evaluate.add_argument("--data", required=True, help="labelled evaluation data")
    evaluate.add_argument("--json", action="store_true", help="print metrics as JSON")
    evaluate.add_argument("--encoding", default=None,
                          help="text apps: encoding of the evaluation files, e.g. cp1252 (default: the training data's)")
    evaluate.add_argument("--score-threshold", type=float, default=None,
                          help="object-detector: NMS score threshold mAP is scored at (default: the run's "
                               "eval_score_threshold, 0.01, COCO-style; the serving threshold is separate)")

    export = verbs.add_parser("export", help="export a run directory's model as a SavedModel", epilog=table,
                              formatter_class=_HelpFormatter)
    export.add_argument("run_dir", help="a run directory written by train (holds model.keras)")
    export.add_argument("--output", required=True, metavar="DIR", help="model folder; writes DIR/<version>/")
    export.add_argument("--target", default="cpu", choices=("cpu", "gpu", "tpu"))
    export.add_argument("--formats", default="saved_model", help="comma list of saved_model, tflite, onnx and the quantized tflite-dynamic, tflite-fp16, tflite-int8, onnx-int8")
    export.add_argument("--batch-size", type=int, default=8, help="static batch of the tpu target")
    export.add_argument("--score-threshold", type=float, default=None,
                        help="object-detector: NMS score threshold of the exported model (default: the run's)")
    export.add_argument("--lora-adapter", default=None, metavar="FILE",
                        help="text-classifier, bert --fine-tuning lora runs: export this run's base with another "
                             "lora run's adapter.npz (same checkpoint) merged in instead of its own; export to the "
                             "served model's folder and the server swaps to it as the next version")
    export.add_argument("--allow-unfinished", action="store_true",
                        help="export a run that did not finish (crashed, diverged) from its last saved model")
    edge = _add_guard_flags(export)
    edge.add_argument("--data", default=None, help="training data to calibrate on (default: the run's recorded data)")
    edge.add_argument("--test-data", default=None,
                      help="held-out data for the guard (default: the run's test data, else its validation split)")

    from apps import lr_find, tune

    lr_find.add_parser(verbs, app, _add_config_flags)
    tune.add_parser(verbs, app, _add_config_flags)
    if hasattr(app, "add_verbs"):  # a task's own verbs (text-generator generate), from its light spec
        app.add_verbs(verbs)

    predict = verbs.add_parser("predict", help="predict raw inputs with an exported model or run directory")
    predict.add_argument("model", help="export folder, a .tflite / .onnx file of an export, or a run directory")
    predict.add_argument("inputs", nargs="+", help="input files (images, ...) or text")
    predict.add_argument("--json", action="store_true",
                         help="print predictions as JSON (each names its input; classifiers give every class's score)")
    predict.add_argument("--output", metavar="DIR", default="predictions",
                         help="folder for the pictures the detector (boxes drawn), segmenter (overlay, mask) and VAE "
                              "(reconstruction) write; 'none' writes none (default: predictions)")
    predict.add_argument("--top-k", type=int, default=None,
                         help="classifiers: also list the k best labels; text-embedder: neighbours shown")
    predict.add_argument("--score-threshold", type=float, default=None,
                         help="object-detector: show detections scoring at least this (at or above the export's "
                              "own NMS threshold, which its metadata records)")
    return app


def _config_file(path, known: set) -> dict:
    """Options from a JSON file (keys outside the task's Config, like a run's "app", are ignored)."""
    if not path:
        return {}
    try:
        with open(path) as f:
            values = json.load(f)
    except OSError as error:
        raise FileNotFoundError(f"--config {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"--config {path} is not JSON: {error}") from error
    if not isinstance(values, dict):
        raise ValueError(f"--config {path} must hold a JSON object of options")
    return {k: v for k, v in values.items() if k in known}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help, and the export table (epilog) kept as laid out."""


def _resolve(app, path):
    import os

    if os.path.isfile(os.path.join(path, "model.keras")):
        return app.load_run(path)
    return path


def _add_guard_flags(parser):
    """`--max-quantization-drop`, `--calibration-size`, `--int8-io` (export and train --export); returns the group."""
    import textwrap

    edge = parser.add_argument_group(
        "quantized formats (tflite-dynamic, tflite-fp16, tflite-int8, onnx-int8)", textwrap.fill(  # raw formatter
        "tflite-dynamic: int8 weights, float activations; tflite-fp16: float16 weights; tflite-int8: int8 weights "
        "and activations calibrated on training examples (NMS and other ops without an int8 kernel stay float); "
        "onnx-int8: onnxruntime static QDQ int8. The accuracy guard: each quantized file is scored on the held-out "
        "data through its own runtime (LiteRT, onnxruntime) with the app's metric next to the float model, and is "
        "not published when the metric dropped by more than --max-quantization-drop points (the float formats "
        "still are); the figures go into assets.extra/toolkit.json and the summary printed here", 78))
    edge.add_argument("--max-quantization-drop", type=float, default=None, metavar="POINTS",
                      help="largest allowed drop of the held-out metric, in points (default: 1 point of accuracy, "
                           "2 of mAP@.5, 2 of mIoU)")
    edge.add_argument("--calibration-size", type=int, default=200,
                      help="training examples the int8 formats calibrate on")
    edge.add_argument("--int8-io", action="store_true",
                      help="tflite-int8 with int8 input and output tensors (integer-only accelerators; default: "
                           "float I/O)")
    return edge


def _run_task(app, args) -> int:
    if args.verb in getattr(app, "extra_verbs", ()):
        return app.run_verb(args)
    if args.verb in ("lr-find", "tune"):
        from apps import lr_find, tune

        known = {f.name for f in dataclasses.fields(app.config_cls)}
        return (lr_find if args.verb == "lr-find" else tune).run(
            app, args, {k: v for k, v in vars(args).items() if k in known})
    if args.verb == "train":
        known = {f.name for f in dataclasses.fields(app.config_cls)}
        overrides = {**_config_file(args.config, known), **{k: v for k, v in vars(args).items() if k in known}}
        if args.export:  # an unknown or unsupported (target, format) pair fails before training, not after
            from toolkit.export.formats import check_export_options

            check_export_options(app.kind(app.make_config(**overrides)), args.target, args.formats)
            if args.calibration_size < 1:
                raise ValueError(f"--calibration-size must be >= 1. Received: {args.calibration_size}")
        run = app.train(args.data, test_data=args.test_data, **overrides)
        print(f"\n== {app.name}: held-out metrics ({run.metrics.get('evaluated_on', 'n/a')}) ==")
        print(_metrics_text(app, run.metrics))
        print(f"run directory: {run.run_dir}")
        for name, path in run.plots.items():
            print(f"plot {name}: {path}")
        from apps.run_dirs import is_chief

        if args.export and is_chief():  # in multi-worker training only the chief exports
            path = run.export(args.export, target=args.target, formats=tuple(args.formats.split(",")),
                              max_quantization_drop=args.max_quantization_drop,
                              calibration_size=args.calibration_size, int8_io=args.int8_io)
            _print_quantization(path)
            print(f"exported: {path}")
        return 0
    if args.verb == "evaluate":
        options = {k: v for k, v in (("score_threshold", args.score_threshold), ("encoding", args.encoding))
                   if v is not None}
        metrics = app.evaluate(_resolve(app, args.model), args.data, **options)
        print(json.dumps(metrics, indent=2) if args.json else _metrics_text(app, metrics))
        return 0
    if args.verb == "export":
        from toolkit.export.formats import parse_formats

        parse_formats(args.formats)  # unknown names fail before the model is loaded
        run = app.load_run(args.run_dir, allow_unfinished=args.allow_unfinished)
        path = run.export(args.output, target=args.target, formats=tuple(args.formats.split(",")),
                          batch_size=args.batch_size, score_threshold=args.score_threshold,
                          max_quantization_drop=args.max_quantization_drop, calibration_size=args.calibration_size,
                          int8_io=args.int8_io, data=args.data, test_data=args.test_data,
                          **({"lora_adapter": args.lora_adapter} if args.lora_adapter else {}))
        _print_quantization(path)
        print(f"exported: {path}")
        return 0
    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1. Received: {args.top_k}")
    inputs, skipped = app.readable_inputs(args.inputs)  # one unreadable file is reported, not fatal
    for source, reason in skipped:
        print(f"toolkit: skipped {source}: {reason}", file=sys.stderr)
    if not inputs:
        raise ValueError(f"none of the {len(args.inputs)} inputs could be read")
    output = None if args.output.lower() == "none" else args.output
    predictions = app.predict(_resolve(app, args.model), inputs, output_dir=output, top_k=args.top_k,
                              score_threshold=args.score_threshold)
    if args.json:
        print(json.dumps(predictions, indent=2))
    else:
        for prediction in predictions:
            print(f"{prediction.pop('input')}: {_one_line(prediction)}")
    return 0


def _print_quantization(path: str) -> None:
    """The guard's figures of an export's quantized files (nothing when it has none)."""
    from apps.quantization import summary_lines
    from toolkit.export import read_metadata

    for line in summary_lines(read_metadata(path)):
        print(line)


def cli_words(message: str, app=None) -> str:
    """A library error in the words the user typed: `image_size=(H, W)` -> `--image-size HxW`, and each
    `field=value` of the app's Config -> `--field value` (messages that already name flags are left alone).

    Examples:
    >>> cli_words("images differ in size; pass image_size=(H, W) to resize them")
    'images differ in size; pass --image-size HxW to resize them'
    """
    if re.search(r"(^|\s|\()--[a-z]", message):
        return message
    message = re.sub(r"\bimage_size=\(H, ?W\)", "--image-size HxW", message)
    names = sorted((f.name for f in dataclasses.fields(app.config_cls)), key=len, reverse=True) if app else []
    for name in names:
        message = re.sub(rf"(?<![\w.])({name})=(['\"]?)([^\s,;)'\"]*)\2",
                         lambda m: f"--{m.group(1).replace('_', '-')} {m.group(3)}".rstrip(), message)
    return message


def _metrics_text(app, metrics: dict) -> str:
    text = app.summary(metrics)
    return f"{text}\nwarning: {metrics['warning']}" if metrics.get("warning") and "warning" not in text else text


def _one_line(prediction: dict) -> str:
    shown = {k: v for k, v in prediction.items() if k != "scores"}  # every class's score: --json
    return "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())


def _command_of(argv: list) -> str | None:
    """The COMMAND word of `toolkit [--log-level L] COMMAND ...`."""
    skip = {argv.index("--log-level") + 1} if "--log-level" in argv else set()
    return next((a for i, a in enumerate(argv) if not a.startswith("-") and i not in skip), None)


def build_parser(argv=None):
    parser = argparse.ArgumentParser(
        prog="toolkit",
        description="Train, evaluate, export and serve Keras models: toolkit <task> <verb> [options].",
    )
    parser.add_argument("--log-level", default="warning", choices=("error", "warning", "info", "debug"),
                        help="Python and TensorFlow log level; below info, TensorFlow's start-up lines (oneDNN, "
                             "CUDA probes) are hidden")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Build only the task named on the command line (its spec: the App and TensorFlow load when a verb runs).
    wanted = _command_of(argv or [])
    apps = {}
    for name in TASKS:
        if wanted == name:
            apps[name] = _task_parser(sub, name)
        else:
            sub.add_parser(name, help=TASK_HELP.get(name, f"{name} task") + f" (toolkit {name} --help)")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
    return parser, apps


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from apps import logs

    wanted = _command_of(argv)
    asks_help = bool({"-h", "--help"} & set(argv))
    try:  # before anything imports TensorFlow (a task's App does at import; commands when they run); --help never does
        if (wanted in TASKS or (wanted in COMMANDS and wanted != "runs")) and not asks_help:
            logs.configure(logs.log_level_of(argv))
    except ValueError as error:
        print(f"toolkit: error: {error}", file=sys.stderr)
        return 2
    parser, apps = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        if args.command in apps:
            return _run_task(task_app(args.command), args)
        return importlib.import_module(COMMANDS[args.command]).main(args)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as error:
        print(f"toolkit: error: {cli_words(str(error), apps.get(args.command))}", file=sys.stderr)
        return 2
    except Exception as error:  # the toolkit's own errors (export, strategy, divergence): a message, no traceback
        if not type(error).__module__.startswith("toolkit."):
            raise
        what = "export failed: " if type(error).__name__ == "ExportError" else ""
        print(f"toolkit: error: {what}{error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
