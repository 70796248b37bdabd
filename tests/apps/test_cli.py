"""The `toolkit` command's own behaviour: quiet TensorFlow start-up by default, `--log-level` to bring it back."""

import os
import subprocess
import sys

NOISE = ("oneDNN custom operations", "cuda drivers", "cuInit", "absl::InitializeLog")


def _toolkit(*args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "apps.cli", *args], capture_output=True, text=True, timeout=240,
                          env=env, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def test_tensorflow_start_up_noise_is_hidden_unless_asked_for():
    quiet = _toolkit("vae", "train", "--help")
    assert quiet.returncode == 0 and "--latent-dim" in quiet.stdout
    assert not [line for line in quiet.stderr.splitlines() if any(n in line for n in NOISE)], quiet.stderr
    loud = _toolkit("--log-level", "info", "vae", "train", "--help")
    assert loud.returncode == 0 and any(n in loud.stderr for n in NOISE)
    bad = _toolkit("--log-level", "loud", "vae", "--help")
    assert bad.returncode == 2 and "--log-level must be one of error, warning, info, debug" in bad.stderr
