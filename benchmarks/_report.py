"""Writes one benchmark's section of BENCHMARKS.md (between markers), leaving other sections alone."""

from __future__ import annotations

import datetime
import fcntl
import os
import platform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS_MD = os.path.join(ROOT, "BENCHMARKS.md")


def machine() -> str:
    import tensorflow as tf

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"TensorFlow {tf.__version__}, {datetime.date.today().isoformat()}")


def write_section(name: str, markdown: str, path: str = BENCHMARKS_MD) -> None:
    """Replaces the `<!-- BEGIN name -->...<!-- END name -->` block of BENCHMARKS.md (appends if absent)."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    with open(path if os.path.exists(path) else _create(path), "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # several benchmarks may finish at once
        text = f.read()
        if begin in text and end in text:
            text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        f.seek(0)
        f.write(text)
        f.truncate()


def _create(path):
    with open(path, "w") as f:
        f.write("# Benchmarks\n")
    return path


def table(header: list, rows: list) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
