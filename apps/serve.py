"""`toolkit serve`: serve exported SavedModels like TensorFlow Serving (REST + gRPC, batching, web page).

Top-level imports stay light (argparse only): TensorFlow loads when the command runs, not for `--help`.
"""

from __future__ import annotations

import argparse
import os

HELP = "serve exported models: TF Serving REST + gRPC API, batching, version polling, web page at /"

DESCRIPTION = """\
Serve the SavedModels under a model base path exactly like TensorFlow Serving, so TF Serving clients work
unchanged: every folder <base>/<name>/<version>/ (what `toolkit <task> export` and toolkit.export.export
write) is a model; the newest version serves by default, older ones stay addressable with --version-policy all.

REST (default http://127.0.0.1:8501):
  GET  /v1/models/NAME[/versions/N]            version status: START|LOADING|AVAILABLE|UNLOADING|END + error
  GET  /v1/models/NAME[/versions/N]/metadata   signature defs (+ metadata.toolkit: labels, task, ...)
  POST /v1/models/NAME[/versions/N]:predict    {"instances": [...]} (row) or {"inputs": ...} (columnar),
                                               optional "signature_name"; bytes as {"b64": "..."}
  GET  /v1/models                              list of served models (extension)
  GET  /monitoring/prometheus/metrics          Prometheus metrics (also /metrics)
  GET  /                                       web page: pick a model, upload an image or type text
  Errors are {"error": "..."} with 400 (bad input), 401 (token), 404 (unknown model/version), 413 (too large).
gRPC (default 127.0.0.1:8500): tensorflow.serving.PredictionService (Predict, GetModelMetadata) and
  ModelService (GetModelStatus), from the tensorflow-serving-api protos.

Versions: the base path is polled every --poll-interval seconds; a new version is loaded and must answer a
smoke call before it takes traffic (no failed requests during the swap); a version that fails to load is
reported as END with its error in the status and the previous version keeps serving; versions deleted
from disk are unloaded.

Batching: concurrent requests to one model signature are merged into one call of up to --max-batch-size
rows; under concurrent load a batch waits up to --max-wait-ms for batch-mates (a lone client is never
delayed). --batching auto turns it on for dynamic-batch exports (cpu/gpu) and off for static-batch tpu
exports. A request that fails inside a merged call is retried alone, so it never fails its batch-mates.

Security: binds 127.0.0.1 unless --host says otherwise; use --auth-token (bearer) when you expose it.
Only SavedModels are loaded (no pickles). Text models need tensorflow-text, imported automatically when
an export lists it in its metadata "requires".

examples:
  toolkit serve --model-base-path savedmodels
  toolkit serve --model-name fashion --model-path savedmodels/fashion --rest-port 8080 --grpc-port 0
  curl -s localhost:8501/v1/models/fashion
  curl -s -X POST localhost:8501/v1/models/fashion:predict \\
       -d "{\\"instances\\": [{\\"b64\\": \\"$(base64 -w0 shoe.png)\\"}]}"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    models = parser.add_argument_group("models")
    models.add_argument("--model-base-path", metavar="DIR",
                        help="folder of model folders <DIR>/<name>/<version>/ (e.g. savedmodels)")
    models.add_argument("--model-name", help="serve one model under this name (with --model-path)")
    models.add_argument("--model-path", metavar="DIR", help="the one model's folder (holds <version>/ folders)")
    models.add_argument("--version-policy", choices=("latest", "all"), default="latest",
                        help="serve only the newest loadable version, or every version (default: latest)")
    models.add_argument("--poll-interval", type=float, default=2.0, metavar="SECONDS",
                        help="seconds between scans for new/removed versions; 0 scans once (default: 2)")
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default 127.0.0.1, loopback only; 0.0.0.0 exposes it: set --auth-token)")
    net.add_argument("--rest-port", "--port", type=int, default=8501, help="REST port, 0 picks a free one (default: 8501)")
    net.add_argument("--grpc-port", type=int, default=8500, help="gRPC port, 0 picks a free one, -1 disables (default: 8500)")
    net.add_argument("--auth-token", default=os.environ.get("TOOLKIT_SERVE_TOKEN"),
                     help="require 'Authorization: Bearer TOKEN' on the API, metrics and gRPC "
                          "(default: $TOOLKIT_SERVE_TOKEN, else none)")
    net.add_argument("--max-body-mb", type=float, default=16.0, help="largest REST request body in MiB, 413 beyond (default: 16)")
    net.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                     help="on SIGINT/SIGTERM, seconds in-flight requests get to finish (default: 10)")
    batch = parser.add_argument_group("batching")
    batch.add_argument("--batching", choices=("auto", "on", "off"), default="auto",
                       help="auto: on for dynamic-batch exports, off for static-batch tpu exports (default: auto)")
    batch.add_argument("--max-batch-size", type=int, default=32, help="most rows per merged model call (default: 32)")
    batch.add_argument("--max-wait-ms", type=float, default=2.0,
                       help="longest a batch waits for batch-mates under concurrent load (default: 2)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def main(args) -> int:
    import logging
    import sys

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    models = None
    if args.model_name or args.model_path:
        if not (args.model_name and args.model_path):
            raise ValueError("--model-name and --model-path go together")
        models = {args.model_name: args.model_path}
    if not models and not args.model_base_path:
        raise ValueError("give --model-base-path DIR (or --model-name NAME --model-path DIR)")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.auth_token:
        print(f"toolkit serve: warning: listening on {args.host} without --auth-token", file=sys.stderr)

    from toolkit.serving.repository import ModelRepository
    from toolkit.serving.server import Server

    repository = ModelRepository(args.model_base_path, models, poll_interval_s=args.poll_interval,
                                 version_policy=args.version_policy, batching=args.batching,
                                 max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms)
    server = Server(repository, host=args.host, rest_port=args.rest_port,
                    grpc_port=None if args.grpc_port < 0 else args.grpc_port, auth_token=args.auth_token,
                    max_body_bytes=int(args.max_body_mb * 1024 * 1024), grace_s=args.grace)

    def ready(s):
        grpc = f", gRPC on {s.host}:{s.grpc_port}" if s.grpc_port is not None else ""
        print(f"serving {', '.join(repository.names()) or '(no models yet)'}: REST on {s.url}{grpc}", flush=True)

    server.serve_forever(ready=ready)
    print("server stopped", flush=True)
    return 0
