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
  POST /v1/models/NAME[/versions/N]:classify   {"examples": [{"feature": value, ...}], "context": {...}} for
  POST /v1/models/NAME[/versions/N]:regress    signatures of method tensorflow/serving/classify | regress (inputs
                                               become tf.Example protos; our classifier exports have `classify`)
  .../labels/LABEL instead of .../versions/N   the version a --model-config-file version label names
  GET  /v1/models                              list of served models (extension)
  GET  /monitoring/prometheus/metrics          Prometheus metrics (also /metrics)
  GET  /                                       web page: pick a model, upload an image or type text
  Errors are {"error": "..."} with 400 (bad input), 401 (token), 404 (unknown model/version), 413 (too large).
gRPC (default 127.0.0.1:8500): tensorflow.serving.PredictionService (Predict, Classify, Regress,
  MultiInference, GetModelMetadata) and ModelService (GetModelStatus), from the tensorflow-serving-api protos.
Input shapes: as TF Serving, tensors reach the graph as sent (the signature's static dims are not enforced; the
  graph's own error is a 400), except that a graph with convolutions keeps its signatures' ranks.

Versions (TF Serving's availability-preserving policy): the base path is polled every --poll-interval
seconds; a new version is loaded, must answer a smoke call and runs its assets.extra/tf_serving_warmup_requests
(our exports write them) before it takes traffic, and only then is the version it replaces unloaded; deleting
the served version keeps it answering until the next one is loaded (no failed requests). A version that fails
to load is reported as END with its error code and message, the previous version keeps serving, and the load
is retried --max-num-load-retries times --load-retry-interval-ms apart, and again whenever its folder changes
(a half-written copy loads once complete). Unloaded versions stay in the status as END. Child folders not
named by a plain ASCII integer are ignored (one warning each).

Several models, version policies and labels: --model-config-file FILE reads TF Serving's ModelServerConfig
text proto, e.g.
  model_config_list { config { name: "fashion" base_path: "savedmodels/fashion" model_platform: "tensorflow"
      model_version_policy { specific { versions: 1 versions: 2 } }   # or latest { num_versions: 2 } or all {}
      version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } } }

Batching (TF Serving's knobs; --batching-parameters-file reads TF Serving's BatchingParameters text proto,
flags given explicitly override it): concurrent requests to one model signature are merged into one call of
up to --max-batch-size rows, padded to one of --allowed-batch-sizes (default: powers of two); under concurrent
load a batch waits up to --batch-timeout-micros for batch-mates (a lone client is never delayed);
--num-batch-threads batches run at once; beyond --max-enqueued-batches queued batches a request gets 503.
TF Serving's --enable_batching is off by default; here --batching auto turns it on for dynamic-batch
exports (cpu/gpu) and off for static-batch tpu exports: at 32 clients on a small CNN it never served fewer
requests/s than unbatched calls in our runs (1.07x to 3.05x on a shared 2-core machine; BENCHMARKS.md,
serving), and a lone client is not delayed; use --batching off to match TF Serving's default. A request that fails inside a merged call is retried alone, so it never fails its batch-mates.

Limits (each answered with a status naming its flag): body size (413, --max-body-mb), JSON nesting (400,
--max-json-depth), decoded image pixels read from PNG/JPEG/GIF/BMP/WebP headers before decoding (413,
--max-image-pixels), inference time (504, --rest-api-timeout-in-ms; gRPC honours the client's deadline with
DEADLINE_EXCEEDED), full batching queue (503 / gRPC UNAVAILABLE), connections that do not send their headers
or body in time (408, --header-timeout, --body-timeout) or idle between requests (--idle-timeout), request
heads (431, --max-header-kb), concurrent connections (503, --max-connections).

Security: binds 127.0.0.1 unless --host says otherwise; use --auth-token (bearer) when you expose it.
Requests whose Host header is not localhost, 127.0.0.1, ::1, the bound address or one of --allowed-hosts get
403 (DNS rebinding), as do browser requests whose Origin is not one of those (cross-site posts). Bodies are
read as JSON when sent as application/json, with no Content-Type, or as application/x-www-form-urlencoded
(what `curl -d` sends, as in TF Serving's examples); other types (text/plain, multipart/form-data) get 415.
Error messages never show the server's absolute paths.
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
    models.add_argument("--model-config-file", metavar="FILE",
                        help="TF Serving's ModelServerConfig text proto: several models, each with its base_path, "
                             "model_version_policy (latest/all/specific) and version_labels; instead of "
                             "--model-base-path / --model-name")
    models.add_argument("--max-num-load-retries", type=int, default=5, metavar="N",
                        help="retries of a version whose load failed (TF Serving's flag; default: 5); a version is "
                             "also retried whenever its folder's files change")
    models.add_argument("--load-retry-interval-ms", type=float, default=60000, metavar="MS",
                        help="wait between load retries (TF Serving's load_retry_interval_micros; default: 60000)")
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
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-json-depth", type=int, default=100,
                        help="deepest JSON nesting accepted, 400 beyond (default: 100, at most 1000)")
    limits.add_argument("--max-image-pixels", type=int, default=16 * 1024 * 1024,
                        help="largest width x height (x frames) of one encoded image input, read from its header "
                             "before decoding; 413 beyond (default: 16777216 = 4096x4096)")
    limits.add_argument("--rest-api-timeout-in-ms", type=int, default=30000, metavar="MS",
                        help="REST inference deadline, 504 beyond; 0: none (TF Serving's flag; default: 30000)")
    limits.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="time a connection gets to send a request's headers, 408 and closed beyond (default: 10)")
    limits.add_argument("--body-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="time a request gets to send its body after its headers (default: 30)")
    limits.add_argument("--idle-timeout", type=float, default=5.0, metavar="SECONDS",
                        help="keep-alive REST connections (and gRPC connections, at least 1 s) idle this long are closed (default: 5)")
    limits.add_argument("--max-header-kb", type=int, default=64, help="largest request head in KiB, 431 beyond (default: 64)")
    limits.add_argument("--max-connections", type=int, default=1000,
                        help="concurrent REST connections or requests (503 beyond) and gRPC calls "
                             "(RESOURCE_EXHAUSTED beyond) (default: 1000)")
    limits.add_argument("--allowed-hosts", default="", metavar="NAMES",
                        help="comma-separated Host / Origin names accepted besides localhost, 127.0.0.1, ::1 and the "
                             "bound address ('*': any; '.example.com': a domain and its subdomains); binding "
                             "0.0.0.0 without it accepts any Host")
    batch = parser.add_argument_group("batching")
    batch.add_argument("--batching", choices=("auto", "on", "off"), default="auto",
                       help="auto: on for dynamic-batch exports, off for static-batch tpu exports (default: auto)")
    batch.add_argument("--enable-batching", dest="batching", action="store_const", const="on",
                       help="TF Serving's flag: same as --batching on")
    batch.add_argument("--batching-parameters-file", metavar="FILE",
                       help="TF Serving's BatchingParameters text proto (max_batch_size { value: 32 } ...)")
    batch.add_argument("--max-batch-size", type=int, default=None, help="most rows per merged model call (default: 32)")
    batch.add_argument("--batch-timeout-micros", type=int, default=None,
                       help="longest a batch waits for batch-mates under concurrent load (default: 2000)")
    batch.add_argument("--max-wait-ms", type=float, default=None, help="the same in milliseconds (older flag)")
    batch.add_argument("--num-batch-threads", type=int, default=None, help="batches computed at once (default: 1)")
    batch.add_argument("--allowed-batch-sizes", default=None, metavar="N,N,...",
                       help="sizes calls are padded to, increasing, the last = --max-batch-size "
                            "(default: powers of two up to it)")
    batch.add_argument("--max-enqueued-batches", type=int, default=None,
                       help="queued batches per model signature before requests get 503 (default: 64)")
    batch.add_argument("--workers", type=int, default=4,
                       help="threads per model signature for unbatched calls (default: 4)")
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
    configs = None
    if args.model_config_file:
        if models or args.model_base_path:
            raise ValueError("--model-config-file replaces --model-base-path and --model-name/--model-path: give one")
        from toolkit.serving.model_config import read_model_config_file

        configs = read_model_config_file(args.model_config_file)
    if not models and not args.model_base_path and not configs:
        raise ValueError("give --model-base-path DIR (or --model-name NAME --model-path DIR, or --model-config-file FILE)")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.auth_token:
        print(f"toolkit serve: warning: listening on {args.host} without --auth-token", file=sys.stderr)

    from toolkit.serving.limits import Limits
    from toolkit.serving.repository import ModelRepository
    from toolkit.serving.server import Server

    batching = batching_options(args)
    limits = Limits(max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_json_depth=args.max_json_depth,
                    max_image_pixels=args.max_image_pixels, rest_timeout_ms=args.rest_api_timeout_in_ms,
                    header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout,
                    idle_timeout_s=args.idle_timeout, max_header_bytes=args.max_header_kb * 1024,
                    max_connections=args.max_connections,
                    allowed_hosts=tuple(h for h in args.allowed_hosts.split(",") if h.strip()))
    repository = ModelRepository(args.model_base_path, models, poll_interval_s=args.poll_interval,
                                 version_policy=args.version_policy, batching=args.batching,
                                 max_batch_size=batching.max_batch_size,
                                 max_wait_ms=batching.batch_timeout_micros / 1000.0, model_configs=configs,
                                 max_num_load_retries=args.max_num_load_retries,
                                 load_retry_interval_s=args.load_retry_interval_ms / 1000.0)
    server = Server(repository, host=args.host, rest_port=args.rest_port,
                    grpc_port=None if args.grpc_port < 0 else args.grpc_port, auth_token=args.auth_token,
                    grace_s=args.grace, limits=limits, batching=batching, workers=args.workers)

    def ready(s):
        grpc = f", gRPC on {s.host}:{s.grpc_port}" if s.grpc_port is not None else ""
        print(f"serving {', '.join(repository.names()) or '(no models yet)'}: REST on {s.url}{grpc}", flush=True)

    server.serve_forever(ready=ready)
    print("server stopped", flush=True)
    return 0


def batching_options(args):
    """`BatchingOptions` from --batching-parameters-file, then the batching flags given explicitly."""
    from toolkit.serving.batcher import BatchingOptions

    values = {}
    if args.max_batch_size is not None:
        values["max_batch_size"] = args.max_batch_size
    if args.max_wait_ms is not None:
        values["batch_timeout_micros"] = int(args.max_wait_ms * 1000)
    if args.batch_timeout_micros is not None:
        values["batch_timeout_micros"] = args.batch_timeout_micros
    if args.num_batch_threads is not None:
        values["num_batch_threads"] = args.num_batch_threads
    if args.max_enqueued_batches is not None:
        values["max_enqueued_batches"] = args.max_enqueued_batches
    if args.allowed_batch_sizes:
        try:
            values["allowed_batch_sizes"] = tuple(int(v) for v in args.allowed_batch_sizes.split(","))
        except ValueError:
            raise ValueError(f"--allowed-batch-sizes takes integers separated by commas, got {args.allowed_batch_sizes!r}") from None
    if args.batching_parameters_file:
        with open(args.batching_parameters_file) as f:
            options = BatchingOptions.from_text(f.read())
        import dataclasses

        return dataclasses.replace(options, **values)
    return BatchingOptions(**values)
