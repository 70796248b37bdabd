"""A light REST load generator for benchmarks/serving.py: keep-alive HTTP/1.1 clients on one asyncio loop,
in a process of its own.

Why not `http.client` threads: profiling the 32-client run (py-spy on the server) showed the server's event
loop idle ~40% of the time while 32 Python client threads, contending for one GIL in the benchmark process,
could not send faster; the benchmark measured the clients. Tools such as `wrk` or `ab` are not installed
here, so this sends pre-built request bytes and reads each response by its Content-Length (tens of
microseconds of client work per request), as such tools do.

    python -m benchmarks.loadgen --port 8501 --body body.json --clients 32 --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time

import numpy as np


async def _client(port: int, request: bytes, stop_at: float, latencies: list, failures: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                failures.append((status, body[:200].decode("latin-1")))
    finally:
        writer.close()


async def _run(port: int, body: bytes, clients: int, seconds: float, path: str) -> dict:
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies, failures = [], []
    started = time.perf_counter()
    await asyncio.gather(*[_client(port, request, started + seconds, latencies, failures) for _ in range(clients)])
    elapsed = time.perf_counter() - started
    return {"rps": len(latencies) / elapsed, "p50": float(np.percentile(latencies, 50)) * 1e3,
            "p99": float(np.percentile(latencies, 99)) * 1e3, "n": len(latencies), "failed": len(failures),
            "failures": failures[:5]}


def run_load(port: int, body: bytes, clients: int, seconds: float, path: str = "/v1/models/fashion:predict") -> dict:
    """Runs the load generator in a child process; its result dict (rps, p50/p99 ms, n, failed, failures)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(body)
        f.flush()
        out = subprocess.run([sys.executable, "-m", "benchmarks.loadgen", "--port", str(port), "--body", f.name,
                              "--clients", str(clients), "--seconds", str(seconds), "--path", path],
                             capture_output=True, text=True, timeout=seconds + 120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", required=True, help="file holding the JSON request body")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--path", default="/v1/models/fashion:predict")
    args = parser.parse_args(argv)
    with open(args.body, "rb") as f:
        body = f.read()
    print(json.dumps(asyncio.run(_run(args.port, body, args.clients, args.seconds, args.path))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
