"""Quiet TensorFlow by default on the command line; `--log-level` brings its logs back.

TensorFlow 2.21 prints absl/oneDNN/CUDA lines from C++ while it is imported and when it first looks for
devices (`oneDNN custom operations are on`, `Could not find cuda drivers`, `failed call to cuInit`), and
`TF_CPP_MIN_LOG_LEVEL` no longer silences them (they are logged before absl is initialised). So the CLI
imports TensorFlow and lists devices with the process's stderr file descriptor pointed at a temporary file;
what was written there is replayed only if that import fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile

LEVELS = ("error", "warning", "info", "debug")


def log_level_of(argv: list) -> str:
    """The value of `--log-level LEVEL` / `--log-level=LEVEL` in `argv` (default: warning)."""
    for index, item in enumerate(argv):
        if item == "--log-level" and index + 1 < len(argv):
            return argv[index + 1]
        if item.startswith("--log-level="):
            return item.split("=", 1)[1]
    return "warning"


@contextlib.contextmanager
def native_stderr_to_file():
    """Points file descriptor 2 at a temporary file for the block; replays it to stderr if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def configure(level: str = "warning") -> None:
    """Python logging at `level`; TensorFlow's native start-up lines hidden unless level is info or debug."""
    if level not in LEVELS:
        raise ValueError(f"--log-level must be one of {', '.join(LEVELS)}. Received: {level!r}")
    logging.basicConfig(level=getattr(logging, level.upper()), format="%(levelname)s %(name)s: %(message)s")
    if level in ("info", "debug"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if level == "debug" else "1"
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    with native_stderr_to_file():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe (cuInit) logs here, not at import
    tf.get_logger().setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
