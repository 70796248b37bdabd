"""Serving benchmark: requests/s and p50/p99 latency at 1, 8 and 32 concurrent loopback clients, batching on vs
off in the same run, with the in-process SavedModel call as the floor.

Targets (issue 3): batching-on throughput at 32 clients >= 3x batching-off; p50 at 1 client (batching on)
within 3 ms of the in-process call.

    .venv/bin/python -m benchmarks.serving [--seconds 6] [--no-write]

The server runs as a real `toolkit serve` process; the clients are threads with keep-alive `http.client`
connections in this process (the lightest Python client), so both share the machine's cores.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONCURRENCY = (1, 8, 32)


MODELS = {  # name -> (width, classes): the tests' tiny classifier and the image-classifier app's default CNN
    "tiny CNN (width 4)": (4, 3),
    "app default CNN (width 32)": (32, 10),
}


def export_model(directory: str, width: int, classes: int) -> tuple[str, bytes]:
    import keras

    from toolkit.export import encode_png, export, image_classification_adapter
    from toolkit.models.transfer import build_image_classifier

    keras.utils.set_random_seed(0)
    model = build_image_classifier((28, 28, 1), classes, width=width)
    images = np.random.default_rng(0).integers(0, 255, (4, 28, 28, 1))
    path = export(model, os.path.join(directory, "fashion"), adapter=image_classification_adapter(
        model, [f"class{i}" for i in range(classes)], images))
    return path, encode_png(images[0])


def in_process(path: str, png: bytes, seconds: float) -> list:
    """Latencies (s) of the raw signature called directly on one image: the floor."""
    import tensorflow as tf

    function = tf.saved_model.load(path).signatures["serving_default"]
    for _ in range(20):
        function(images=tf.constant([png]))
    latencies, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        function(images=tf.constant([png]))
        latencies.append(time.perf_counter() - start)
    return latencies


def start_server(base: str, batching: str):
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.cli", "serve", "--model-base-path", base, "--rest-port", "0", "--grpc-port", "-1",
         "--batching", batching, "--max-batch-size", "32", "--max-wait-ms", "2", "--poll-interval", "0",
         "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    for line in iter(process.stdout.readline, ""):
        if line.startswith("serving "):
            url = line.split("REST on ")[1].split(",")[0].strip()
            return process, int(url.rsplit(":", 1)[1])
    raise RuntimeError(f"server did not start (exit {process.wait()})")


def load(port: int, body: bytes, clients: int, seconds: float) -> dict:
    """`clients` threads, each sending requests back to back for `seconds`; bounded by time."""
    latencies, failures = [], []
    barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        headers = {"Content-Type": "application/json"}
        barrier.wait()
        while time.perf_counter() < stop_at[0]:
            start = time.perf_counter()
            connection.request("POST", "/v1/models/fashion:predict", body, headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                failures.append(response.status)
        connection.close()
        latencies.extend(mine)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - started
    return {"rps": len(latencies) / elapsed, "p50": float(np.percentile(latencies, 50)) * 1e3,
            "p99": float(np.percentile(latencies, 99)) * 1e3, "n": len(latencies), "failed": len(failures)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per measurement")
    parser.add_argument("--no-write", action="store_true", help="print only; do not update BENCHMARKS.md")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    runs = {}
    for model_name, (width, classes) in MODELS.items():
        with tempfile.TemporaryDirectory() as tmp:
            path, png = export_model(tmp, width, classes)
            floor = in_process(path, png, args.seconds)
            body = json.dumps({"instances": [{"b64": base64.b64encode(png).decode()}]}).encode()
            results = {}
            for batching in ("on", "off"):
                process, port = start_server(tmp, batching)
                try:
                    load(port, body, 8, 2.0)  # warm up
                    for clients in CONCURRENCY:
                        results[(batching, clients)] = load(port, body, clients, args.seconds)
                        print(model_name, batching, clients, results[(batching, clients)], flush=True)
                finally:
                    process.send_signal(signal.SIGTERM)
                    process.wait(60)
        floor_p50, floor_p99 = (float(np.percentile(floor, q)) * 1e3 for q in (50, 99))
        ratio = results[("on", 32)]["rps"] / results[("off", 32)]["rps"]
        gap = results[("on", 1)]["p50"] - floor_p50
        print(f"{model_name}: in-process p50 {floor_p50:.2f} ms; 32-client ratio {ratio:.2f}x; "
              f"1-client p50 gap {gap:.2f} ms", flush=True)
        runs[model_name] = (results, floor_p50, floor_p99, len(floor), ratio, gap)
    load_after = os.getloadavg()[0]
    if not args.no_write:
        write(runs, load_before, load_after, args.seconds)
    return 0


def write(runs, load_before, load_after, seconds):
    from benchmarks._report import machine, table, write_section

    rows, verdicts = [], []
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    for model_name, (results, floor_p50, floor_p99, floor_n, ratio, gap) in runs.items():
        rows.append([model_name, "in-process signature call (floor)", 1, 1e3 / floor_p50, floor_p50, floor_p99, floor_n, 0])
        for (batching, clients), r in results.items():
            rows.append([model_name, f"REST, batching {batching}", clients, r["rps"], r["p50"], r["p99"], r["n"], r["failed"]])
        verdicts.append(f"- {model_name}: batching-on / batching-off throughput at 32 clients **{ratio:.2f}x** "
                        f"(target >= 3x: {verdict(ratio >= 3)}); 1-client p50 with batching on minus the in-process "
                        f"call **{gap:.2f} ms** (target <= 3 ms: {verdict(gap <= 3)}).")
    markdown = f"""## Serving (toolkit serve, REST on loopback)

Command: `.venv/bin/python -m benchmarks.serving --seconds {seconds:g}` · {machine()}

Each request is one 28x28 PNG as `{{"b64": ...}}` through `serving_default` (decode + resize + CNN + labels in
the graph) of a cpu export of `build_image_classifier((28, 28, 1), K, width=W)`. Server: a `toolkit serve`
process (`--max-batch-size 32 --max-wait-ms 2`, batches padded to powers of two); clients: threads with
keep-alive `http.client` connections in the benchmark process, each sending back to back for {seconds:g} s.
The floor's requests/s is 1 / its p50 (a direct call of the loaded signature on one image, one thread).

{table(["model", "path", "clients", "requests/s", "p50 ms", "p99 ms", "requests", "failed"], rows)}

{chr(10).join(verdicts)}

Honesty notes: the 2-core machine was shared with other agents' jobs during this run (1-minute load average
{load_before:.1f} before, {load_after:.1f} after; 2.0 is a fully busy machine), and the load generator runs on the
same 2 cores as the server, so absolute numbers are pessimistic and noisy (repeated runs moved single cells by
2x); on and off ran back to back in one run. Batching can only win what batched compute saves: measured
in-process on this machine, the width-32 CNN costs ~4.9 ms/image at batch 1 and ~2.2 ms/image at batch 32
(~2.2x), so 3x is out of reach for it on 2 cores whatever the server does; the tiny model saves ~11x per image,
and there the per-request HTTP/JSON work in Python (one event loop, sharing the cores with the clients) is what
caps throughput. At 1 client, batching on has in some runs cost a few ms more than batching off (a hand-off to
the batch thread under a loaded scheduler; in-process the two paths measured the same, ~2 ms): not pinned down.
"""
    write_section("serving", markdown)


if __name__ == "__main__":
    sys.exit(main())
