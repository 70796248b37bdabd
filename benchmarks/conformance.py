"""What the fresh-process conformance matrix costs in CI: wall time of its fast cells, side by side with the
rest of the suite, on this machine (the CI budget: the whole suite under 20 minutes on 2 cores).

    python -m benchmarks.conformance            # writes the `conformance` section of BENCHMARKS.md

Runs `pytest -n 2 --dist loadfile` on tests/conformance and on the rest of tests/ (plus the toolkit doctests),
one after the other, and records the wall time, the cell counts and the load average beside them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

from benchmarks._report import ROOT, machine, table, write_section

COMMAND = "python -m benchmarks.conformance"


def _pytest(paths: list, extra: list) -> dict:
    start, load = time.monotonic(), os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadfile", "-p",
                           "no:cacheprovider", *extra, *paths], cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - start
    summary = next((line for line in reversed(done.stdout.splitlines()) if " in " in line and "passed" in line), "")
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|deselected)", summary)}
    return {"wall_s": wall, "load": load, "returncode": done.returncode, **counts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-rest", action="store_true", help="time only the conformance matrix")
    args = parser.parse_args(argv)
    rows = []
    matrix = _pytest(["tests/conformance"], [])
    rows.append(["conformance matrix (fast cells)", matrix.get("passed", 0), matrix.get("failed", 0),
                 round(matrix["wall_s"] / 60, 2), f"{matrix['load']:.2f}"])
    if not args.skip_rest:
        rest = _pytest(["tests", "toolkit"], ["--ignore", "tests/conformance"])
        rows.append(["rest of the suite + doctests", rest.get("passed", 0), rest.get("failed", 0),
                     round(rest["wall_s"] / 60, 2), f"{rest['load']:.2f}"])
    total = sum(r[3] for r in rows)
    markdown = f"""## Conformance matrix: the CI cost of crossing the process boundary

Command: `{COMMAND}` ({machine()}). Each step of a cell runs in a new process through the `toolkit` CLI
(train; evaluate the run and the export; export cpu and tpu; predict from both; a TensorFlow-only load with
`saved_model_cli`; `toolkit serve` answering REST and gRPC). Target: the whole suite under 20 minutes on 2 cores.

{table(["part", "passed", "failed", "wall minutes", "load average at start"], rows)}

Total: {total:.1f} minutes ({'met' if total <= 20 else 'missed'}). The slow cells (`-m slow`: the gpu target,
tflite/onnx conversions beyond the image classifier, the cells of the extra text families (rnn, lstm, gru, cnn,
tcn, transformer) beyond train / cpu export / TF-only load, and the refused pairs) are not in CI; run them with
`pytest -m slow tests/conformance`.
"""
    write_section("conformance", markdown)
    print(markdown)
    return 0 if all(r[2] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
