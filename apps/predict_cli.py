"""`toolkit predict URL_OR_DIR INPUT...`: predictions from a running server or an export folder.

Top-level imports stay light: a URL needs only httpx; a folder loads TensorFlow when the command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

HELP = "predict raw inputs (image files, .npy arrays, text) with a running server (URL) or an export folder"

DESCRIPTION = """\
Send raw inputs to a model and print one line per input (label and score when the model has them).

URL_OR_DIR is either
  a server URL:   http://127.0.0.1:8501/v1/models/NAME[/versions/N]  (or http://HOST:PORT with --model-name;
                  when the server has one model, it is used), talking TF Serving's REST API, or
  a folder:       an export, savedmodels/NAME (newest version) or savedmodels/NAME/<version>.
Each INPUT is a file (image bytes sent as {"b64": ...}; a .npy file is a numeric array: one example) or,
when no such file exists, a text string (for text models).

examples:
  toolkit predict http://127.0.0.1:8501/v1/models/fashion shoe.png shirt.jpg
  toolkit predict savedmodels/fashion shoe.png --json
  toolkit predict http://127.0.0.1:8501 --model-name reviews "great film" "dull plot"
"""

URL_PATTERN = re.compile(r"^(https?://[^/]+)(?:/v1/models/([^/:]+)(?:/versions/(\d+))?)?/?$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("target", metavar="URL_OR_DIR", help="server URL (http://...) or export folder")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image/.npy files, or text strings")
    parser.add_argument("--model-name", help="model to query when the URL names none")
    parser.add_argument("--version", type=int, help="a specific model version (default: the newest)")
    parser.add_argument("--signature-name", default="serving_default",
                        help="signature to call (default: serving_default, the raw-input one)")
    parser.add_argument("--token", default=os.environ.get("TOOLKIT_SERVE_TOKEN"),
                        help="bearer token for a server started with --auth-token (default: $TOOLKIT_SERVE_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print all outputs as JSON")
    parser.add_argument("--mc-samples", type=int, default=0, metavar="T",
                        help="MC dropout: call the export's mc_dropout signature (mean and variance of the class "
                             "probabilities over T passes with dropout on; T is fixed when the model is exported: "
                             "train with --mc-samples T)")


def _read_input(value: str, dtype: str):
    """One INPUT -> bytes / text / numeric list, per the signature input's dtype."""
    if os.path.isfile(value):
        if value.endswith(".npy"):
            import numpy as np

            return np.load(value, allow_pickle=False).tolist()
        with open(value, "rb") as f:
            return f.read()
    if dtype != "string":
        raise ValueError(f"input {value!r}: no such file, and this signature takes {dtype} arrays (give .npy files)")
    return value


def _from_server(args) -> list:
    from toolkit.serving.client import Client

    match = URL_PATTERN.match(args.target)
    if not match:
        raise ValueError(f"not a server URL: {args.target!r} (expected http://HOST:PORT[/v1/models/NAME[/versions/N]])")
    base, name, version = match.group(1), match.group(2) or args.model_name, match.group(3) or args.version
    if getattr(args, "mc_samples", 0):  # the server's copy of the export: its T was fixed at export
        args.signature_name = "mc_dropout"
    with Client(base, token=args.token) as client:
        if not name:
            names = [m["name"] for m in client.models()]
            if len(names) != 1:
                raise ValueError(f"the server has models {names}; name one with --model-name or in the URL")
            name = names[0]
        signatures = client.metadata(name, version)["metadata"]["signature_def"]["signature_def"]
        if args.signature_name not in signatures:
            raise ValueError(f"signature {args.signature_name!r} not found; model {name!r} has {sorted(signatures)}")
        inputs = signatures[args.signature_name]["inputs"]
        if len(inputs) != 1:
            raise ValueError(f"signature {args.signature_name!r} takes several inputs {sorted(inputs)}; use the Python Client")
        dtype = "string" if next(iter(inputs.values()))["dtype"] == "DT_STRING" else "number"
        from toolkit.serving.client import b64

        instances = []
        for value in args.inputs:
            data = _read_input(value, dtype)
            instances.append(b64(data) if isinstance(data, bytes) else data)
        predictions = client.predict(name, instances=instances, version=version,
                                     signature_name=None if args.signature_name == "serving_default" else args.signature_name)
    return [p if isinstance(p, dict) else {"outputs": p} for p in predictions]


def _from_folder(args) -> list:
    import numpy as np

    from toolkit.export import load

    path = args.target if args.version is None else os.path.join(args.target, str(args.version))
    predictor = load(path)
    if getattr(args, "mc_samples", 0):
        exported = predictor.metadata.get("mc_dropout_samples")
        if "mc_dropout" not in predictor.signatures or exported != args.mc_samples:
            raise ValueError(f"--mc-samples {args.mc_samples}: this export's mc_dropout signature runs "
                             f"{exported or 'no'} passes (T is fixed at export: train with --mc-samples T)")
        args.signature_name = "mc_dropout"
    specs = predictor.input_specs(args.signature_name)
    if len(specs) != 1:
        raise ValueError(f"signature {args.signature_name!r} takes several inputs {sorted(specs)}; use the Python API")
    name, spec = next(iter(specs.items()))
    dtype = "string" if spec.dtype.name == "string" else "number"
    values = [_read_input(v, dtype) for v in args.inputs]
    raw = [v.encode() if isinstance(v, str) else v for v in values] if dtype == "string" else np.asarray(values)
    outputs = predictor({name: raw}, signature=args.signature_name)
    rows = len(args.inputs)
    return [{k: _plain(v[i]) for k, v in outputs.items() if v.ndim and len(v) == rows} for i in range(rows)]


def _plain(value):
    import numpy as np

    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value] if value.dtype == object else value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def _summary(prediction: dict, labels=None) -> str:
    label, scores = prediction.get("labels"), prediction.get("scores", prediction.get("mean"))
    if isinstance(label, str) and isinstance(scores, list) and scores and not isinstance(scores[0], list):
        if isinstance(prediction.get("variance"), list):  # MC dropout: the best class's mean and variance
            best = scores.index(max(scores))
            return f"{label}  mean={scores[best]:.4f}  variance={prediction['variance'][best]:.3g}"
        return f"{label}  score={max(scores):.4f}"
    text = json.dumps(prediction)
    return text if len(text) < 300 else text[:297] + "..."


def main(args) -> int:
    if re.match(r"^https?://", args.target):
        import httpx

        from toolkit.serving.client import ServingError

        try:
            predictions = _from_server(args)
        except (ServingError, httpx.HTTPError) as error:
            print(f"toolkit predict: error: {args.target}: {error}", file=sys.stderr)
            return 2
    elif os.path.isdir(args.target):
        predictions = _from_folder(args)
    else:
        raise FileNotFoundError(f"{args.target!r} is neither a server URL (http://...) nor an export folder")
    if args.json:
        print(json.dumps([{"input": i, **p} for i, p in zip(args.inputs, predictions)], indent=2))
    else:
        for source, prediction in zip(args.inputs, predictions):
            print(f"{source}: {_summary(prediction)}")
    return 0
